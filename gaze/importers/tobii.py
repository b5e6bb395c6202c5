"""Tobii Pro Lab TSV data exports and Tobii Studio TSV/CSV exports.

Columns are found by name with units and spacing ignored (``GazePointX (ADCSpx)``,
``Gaze point X [DACS px]`` and ``Gaze point X`` are one column; screen coordinates are
preferred over media coordinates, ``MCS``):

- ``RecordingTimestamp`` / ``Recording timestamp`` (ms; µs when the header says so), or
  Tobii Studio 1-2's ``Timestamp`` (ms) in its "All-Data" exports;
- ``ParticipantName`` / ``Participant name`` and ``RecordingName`` / ``Recording name``:
  one recording per participant and recording (a file with many participants gives many);
- the gaze point (``GazePointX/Y``) and each eye's (``GazePointLeftX`` ...,
  ``GazePointXLeft`` ..., ``Gaze point left X`` ...) with its validity (Studio: codes
  0-4, valid ≤ 1; Pro Lab: ``Valid``);
  pupils (``PupilLeft``, ``Pupil diameter left``);
- the presented stimulus (``MediaName``, ``Presented Media name`` or ``Presented Stimulus
  name``), with its position and size on screen (``MediaPosX (ADCSpx)``, ``MediaWidth``,
  ``Presented Media position X (DACSpx)``, ``Presented Media width``; Studio 1-2's
  ``StimuliName``): each run of one stimulus is a trial, its rectangle recorded
  (``No media`` is no stimulus);
- the fixation filter's output (``GazeEventType`` / ``Eye movement type`` and
  ``FixationIndex`` / ``Eye movement type index``): a sample is in the tracker's fixation
  *k* when its type is ``Fixation`` and its index is *k*; without a type column (Tobii
  Studio 1-2's ``FixationIndex``, counted from 0) a sample is in the fixation its index
  names, none where the cell is empty;
- rows of other sensors (Pro Lab's ``Sensor`` column: gyroscope, accelerometer, ...) are
  not gaze samples; a row with only an event (``Event`` / ``StudioEvent``) is a message.

Tab-separated files may use a decimal comma (Tobii Studio in some locales).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.importers.base import (
    BLOCK_BYTES,
    MISSING_TOKENS,
    Accumulator,
    ImportedRecording,
    ImportFormatError,
    ImportOptions,
    Irregular,
    Rect,
    delimiter_of,
    fail,
    float_cells,
    key_runs,
    normalise,
    number,
    read_lines,
    register_importer,
    split_row,
    table_blocks,
    table_rows,
)

_NAMES: dict[str, tuple[str, ...]] = {
    "time": ("recordingtimestamp",),
    "participant": ("participantname",),
    "recording": ("recordingname",),
    "x": ("gazepointx",),
    "y": ("gazepointy",),
    "lx": ("gazepointleftx", "gazepointxleft"),
    "ly": ("gazepointlefty", "gazepointyleft"),
    "rx": ("gazepointrightx", "gazepointxright"),
    "ry": ("gazepointrighty", "gazepointyright"),
    "lv": ("validityleft",),
    "rv": ("validityright",),
    "lp": ("pupilleft", "pupildiameterleft"),
    "rp": ("pupilright", "pupildiameterright"),
    "media": ("medianame", "presentedmedianame", "presentedstimulusname", "stimuliname"),
    "mx": ("mediaposx", "presentedmediapositionx"),
    "my": ("mediaposy", "presentedmediapositiony"),
    "mw": ("mediawidth", "presentedmediawidth"),
    "mh": ("mediaheight", "presentedmediaheight"),
    "etype": ("gazeeventtype", "eyemovementtype"),
    "eindex": ("fixationindex", "eyemovementtypeindex"),
    "sensor": ("sensor",),
    "event": ("studioevent", "event"),
    "evalue": ("studioeventdata", "eventvalue"),
    "resolution": ("recordingresolution",),
}


_NO_MEDIA = "No media"
"""Tobii Studio's stimulus name for the time no stimulus was shown: not a trial."""


def _find(header: list[str]) -> dict[str, int]:
    """Column index of each known column present (screen coordinates before media ones);
    the time is Tobii Studio 1-2's ``Timestamp`` (ms) where no recording timestamp is."""
    norm = [normalise(h) for h in header]
    out: dict[str, int] = {}
    for key, names in _NAMES.items():
        hits = [i for i, h in enumerate(norm) if h in names]
        if hits:
            screen = [i for i in hits if "mcs" not in header[i].lower()]
            out[key] = (screen or hits)[0]
    if "time" not in out and "timestamp" in norm:
        out["time"] = norm.index("timestamp")
    return out


def _valid(token: str, path: Path, line: int) -> bool:
    t = token.strip()
    if not t:
        return False
    low = t.lower()
    if low in ("valid", "invalid"):
        return low == "valid"
    return number(t, path, line, "validity") <= 1.0


@dataclass
class _Layout:
    """Where each known column is (``at[key]`` is ``width`` for an absent one: the empty
    cell) and how its cells read."""

    sep: str
    width: int
    at: dict[str, int]
    what: dict[str, str]
    absent: set[str]
    has_eyes: tuple[str, ...]
    scale: float
    comma: bool
    index_only: bool = False  # a fixation index without an event type (Studio 1-2)


def _layout(path: Path, first: str) -> _Layout:
    sep = delimiter_of(first)
    header = [h.strip().strip('"') for h in split_row(first, sep)]
    col = _find(header)
    if "time" not in col:
        raise fail(path, 1, "no RecordingTimestamp / Recording timestamp column; "
                   "is this a Tobii export?")  # fmt: skip
    if "x" not in col and "lx" not in col:
        raise fail(path, 1, "no gaze point column (GazePointX / Gaze point X)")
    width = len(header)
    at = {k: col.get(k, width) for k in _NAMES}  # a missing column reads the empty cell
    return _Layout(
        sep=sep, width=width, at=at,
        what={k: header[i] if i < width else k for k, i in at.items()},
        absent={k for k, i in at.items() if i == width},
        has_eyes=("left", "right") if all(k in col for k in ("lx", "ly", "rx", "ry")) else (),
        scale=1e-3 if any(u in header[col["time"]] for u in ("μs", "µs", "[us]")) else 1.0,
        comma=sep == "\t",
        # Studio 1-2's FixationIndex numbers fixations only; Pro Lab's "Eye movement type
        # index" numbers saccades too, and without its type column says nothing
        index_only=(
            "eindex" in col and "etype" not in col
            and normalise(header[col["eindex"]]) == "fixationindex"
        ),
    )  # fmt: skip


Groups = tuple[dict[tuple[str, str], Accumulator], tuple[int, int] | None]
"""The samples of each participant and recording, and the screen's size (px) if given."""

_GAZE_CELLS = ("x", "y", "lx", "ly", "rx", "ry", "lv", "rv")


@register_importer("tobii", "Tobii Pro Lab / Tobii Studio TSV or CSV export (many participants)")
def parse_tobii(path: Path, options: ImportOptions) -> list[ImportedRecording]:
    """The recordings of a Tobii export, one per participant and recording (module docstring)."""
    lines = read_lines(path, options.encoding)
    first = next(lines, None)
    if first is None:
        raise ImportFormatError(f"{path}: empty file; is this a Tobii export?")
    lay = _layout(path, first[1])
    read = _fast_rows(path, options.encoding, lay)
    if read is None:  # anything irregular: the line-by-line reader names the problem
        read = _checked_rows(path, lines, lay)
    groups, screen = read
    out = [acc.build(path, options, lay.has_eyes, screen) for acc in groups.values()
           if len(acc.t.data)]  # fmt: skip
    if lay.index_only:  # the events name the file's fixation index (counted from 0)
        for rec in out:
            for _t, kind, payload in rec.events:
                if kind == "tracker_fixation":
                    payload["index"] -= 1
    if not out:
        raise ImportFormatError(f"{path}: holds no gaze samples; is this a Tobii export?")
    if options.participant and len(out) > 1:
        raise ImportFormatError(
            f"{path} holds {len(out)} participants/recordings; leave out --participant "
            "(each keeps the name in the file)"
        )
    return out


def _screen_of(cell: str, path: Path, n: int) -> tuple[int, int] | None:
    parts = cell.lower().replace("x", " ").split()
    if len(parts) == 2:
        return (int(number(parts[0], path, n, "resolution")),
                int(number(parts[1], path, n, "resolution")))  # fmt: skip
    return None


def _checked_rows(path: Path, lines: Iterator[tuple[int, str]], lay: _Layout) -> Groups:
    """The samples read line by line, every value checked: the reader whose errors name
    the file, line and problem."""
    groups: dict[tuple[str, str], Accumulator] = {}
    screen: tuple[int, int] | None = None
    at, what, absent, comma, scale = lay.at, lay.what, lay.absent, lay.comma, lay.scale
    i_x, i_y, i_lx, i_ly, i_rx, i_ry, i_lv, i_rv = (at[k] for k in _GAZE_CELLS)
    has_sensor, has_lv, has_rv = "sensor" not in absent, "lv" not in absent, "rv" not in absent
    has_rect = "mx" not in absent

    def num(row: list[str], key: str, line: int) -> float:
        if key in absent:
            return math.nan
        text = row[at[key]]
        return number(text.replace(",", ".") if comma else text, path, line, what[key])

    last_media, last_rect = "", None
    last_rect_cells: tuple[str, ...] = ()
    for n, row in table_rows(lines, lay.sep, lay.width, path):
        row.append("")
        key = (row[at["participant"]].strip(), row[at["recording"]].strip())
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = Accumulator(key[0], key[1])
        sensor = row[at["sensor"]].strip()
        if has_sensor and sensor not in ("Eye Tracker", ""):
            continue
        event = row[at["event"]].strip()
        if event and not any(row[i].strip() for i in (i_x, i_y, i_lx, i_ly, i_rx, i_ry, i_lv,
                                                        i_rv)):  # fmt: skip
            t_ev = num(row, "time", n) * scale
            acc.events.append((t_ev, "message", {"text": event,
                                                 "value": row[at["evalue"]].strip()}))  # fmt: skip
            continue
        t = num(row, "time", n)
        if not math.isfinite(t):
            raise fail(path, n, "no time stamp on a gaze row")
        t *= scale
        if screen is None and row[at["resolution"]].strip():
            screen = _screen_of(row[at["resolution"]], path, n)
        x, y = num(row, "x", n), num(row, "y", n)
        lx, ly, rx, ry = num(row, "lx", n), num(row, "ly", n), num(row, "rx", n), num(row, "ry", n)
        lp, rp = num(row, "lp", n), num(row, "rp", n)
        if has_lv and not _valid(row[i_lv], path, n):  # a lost eye's pupil too (Studio: -1)
            lx = ly = lp = math.nan
        if has_rv and not _valid(row[i_rv], path, n):
            rx = ry = rp = math.nan
        fix_index = 0
        if lay.index_only:  # the fixation each sample is in, counted from 0
            k = num(row, "eindex", n)
            fix_index = int(k) + 1 if math.isfinite(k) else 0
        elif row[at["etype"]].strip() == "Fixation":
            k = num(row, "eindex", n)
            fix_index = int(k) if math.isfinite(k) else 0
        media = row[at["media"]].strip()
        if media == _NO_MEDIA:
            media = ""
        rect = None
        if media and has_rect:
            cells = (row[at["mx"]], row[at["my"]], row[at["mw"]], row[at["mh"]])
            if media == last_media and cells == last_rect_cells:
                rect = last_rect
            else:
                mx, my, mw, mh = (num(row, k, n) for k in ("mx", "my", "mw", "mh"))
                if math.isfinite(mx) and math.isfinite(my):
                    rect = Rect(mx, my, mw, mh)
                last_media, last_rect, last_rect_cells = media, rect, cells
        acc.add(path, n, t, (x, y, math.isfinite(x) and math.isfinite(y)),
                (lx, ly, rx, ry, lp, rp), fix_index, media, media, rect)  # fmt: skip
    return groups, screen


_BLOCK = BLOCK_BYTES


def _fast_rows(path: Path, encoding: str, lay: _Layout) -> Groups | None:
    """The samples parsed a block at a time, a column at a time
    (:func:`~gazelab.gaze.importers.base.table_blocks`), exactly as :func:`_checked_rows`
    reads them, or ``None`` at anything irregular (a cut line, a refused value, a time
    going back ...): the caller then reads the file with :func:`_checked_rows`."""
    groups: dict[tuple[str, str], Accumulator] = {}
    screen: list[tuple[int, int] | None] = [None]
    try:
        for _head, _sep, cells, rows in table_blocks(path, encoding, lay.sep, crlf=True,
                                                     block=_BLOCK):  # fmt: skip
            if not _fast_block(path, lay, cells, rows, groups, screen):
                return None
    except Irregular:
        return None
    return groups, screen[0]


def _fast_block(
    path: Path, lay: _Layout, cells: list[str], rows: int,
    groups: dict[tuple[str, str], Accumulator], screen: list[tuple[int, int] | None],
) -> bool:  # fmt: skip
    """One block of :func:`_fast_rows` into ``groups``; ``False`` where irregular."""
    w, at, absent = lay.width, lay.at, lay.absent

    def column(key: str) -> list[str]:
        return [""] * rows if key in absent else cells[at[key] :: w]

    # the participant/recording of each row (groups made in the order the file names them)
    keyed = list(zip(column("participant"), column("recording"), strict=True))
    spans: list[tuple[int, int, tuple[str, str]]] = []
    i = 0
    for raw, group in groupby(keyed):
        m = sum(1 for _ in group)
        key = (raw[0].strip(), raw[1].strip())
        if key not in groups:
            groups[key] = Accumulator(key[0], key[1])
        spans.append((i, i + m, key))
        i += m
    # rows that are not gaze samples: other sensors' rows, messages
    drop: list[int] = []
    if "sensor" not in absent:
        sensors = column("sensor")
        other = {s for s in set(sensors) if s.strip() not in ("Eye Tracker", "")}
        if other:
            drop += [r for r, s in enumerate(sensors) if s in other]
    if "event" not in absent:
        events = column("event")
        if any(e.strip() for e in set(events)):
            gaze = [column(k) for k in _GAZE_CELLS if k not in absent]
            skip = set(drop)
            evalue, times = column("evalue"), column("time")
            for r, e in enumerate(events):
                if r in skip or not e.strip() or any(g[r].strip() for g in gaze):
                    continue
                t_ev = _one_number(times[r], lay, "time")
                if t_ev is None:
                    return False
                acc = groups[next(k for a, b, k in spans if a <= r < b)]
                acc.events.append((t_ev * lay.scale, "message",
                                   {"text": e.strip(), "value": evalue[r].strip()}))  # fmt: skip
                drop.append(r)
    if drop:
        gone = set(drop)
        kept = [r for r in range(rows) if r not in gone]
        cells = [c for r in kept for c in cells[r * w : (r + 1) * w]]
        keyed = [keyed[r] for r in kept]
        rows = len(kept)
        spans = []
        i = 0
        for raw, group in groupby(keyed):
            m = sum(1 for _ in group)
            spans.append((i, i + m, (raw[0].strip(), raw[1].strip())))
            i += m
        if not rows:
            return True

    def nums(key: str, missing: tuple[str, ...] = MISSING_TOKENS) -> NDArray[np.float64] | None:
        if key in absent:
            return np.full(rows, np.nan)
        return _numbers(cells[at[key] :: w], lay, missing)

    t = nums("time", ())
    x, y, lx, ly, rx, ry, lp, rp = (nums(k) for k in ("x", "y", "lx", "ly", "rx", "ry", "lp",
                                                       "rp"))  # fmt: skip
    if t is None or x is None or y is None or lx is None or ly is None or rx is None:
        return False
    if ry is None or lp is None or rp is None:
        return False
    t = t * lay.scale
    if screen[0] is None and "resolution" not in absent:
        for r, cell in enumerate(column("resolution")):
            if cell.strip():
                try:
                    screen[0] = _screen_of(cell, path, r)
                except ImportFormatError:
                    return False
                if screen[0] is not None:
                    break
    for eye, ex, ey, ep in (("lv", lx, ly, lp), ("rv", rx, ry, rp)):
        if eye in absent:
            continue
        validity = column(eye)
        table: dict[str, bool] = {}
        for u in set(validity):
            try:
                table[u] = _valid(u, path, 0)
            except ImportFormatError:
                return False
        ok = np.fromiter(map(table.__getitem__, validity), bool, rows)
        ex[~ok] = np.nan
        ey[~ok] = np.nan
        ep[~ok] = np.nan  # a lost eye's pupil too (Studio: -1)
    fix = np.zeros(rows, dtype=np.int64)
    types = column("etype")
    fixation = {u for u in set(types) if u.strip() == "Fixation"}
    if lay.index_only:  # the fixation each sample is in, counted from 0
        k = nums("eindex")
        if k is None:
            return False
        k = np.where(np.isfinite(k), k, -1.0)
        if bool(np.any(np.abs(k) >= 2.0**62)):
            return False
        fix = k.astype(np.int64) + 1
    elif fixation:
        isfix = np.fromiter((c in fixation for c in types), bool, rows)
        index = column("eindex")
        k = _numbers([index[r] for r in np.flatnonzero(isfix).tolist()], lay, MISSING_TOKENS)
        if k is None:
            return False
        k = np.where(np.isfinite(k), k, 0.0)
        if bool(np.any(np.abs(k) >= 2.0**63)):
            return False
        fix[isfix] = k.astype(np.int64)
    rect_at: NDArray[np.float64] | None = None
    if "mx" not in absent:
        parts = [nums(k) for k in ("mx", "my", "mw", "mh")]
        if any(p is None for p in parts):
            return False
        rect_at = np.stack(parts)  # type: ignore[arg-type]
    media = column("media")
    if any(m.strip() == _NO_MEDIA for m in set(media)):
        media = ["" if m.strip() == _NO_MEDIA else m for m in media]
    valid = np.isfinite(x) & np.isfinite(y)
    for a, b, key in spans:
        runs: list[tuple[int, int, str, str, Rect | None]] = []
        for ra, rb, name, image in key_runs(media[a:b]):
            rect = None
            if rect_at is not None:
                mx, my, mw, mh = (float(v) for v in rect_at[:, a + ra])
                if math.isfinite(mx) and math.isfinite(my):
                    rect = Rect(mx, my, mw, mh)
            runs.append((ra, rb, name, image, rect))
        eyes = (lx[a:b], ly[a:b], rx[a:b], ry[a:b], lp[a:b], rp[a:b])
        if not groups[key].extend(t[a:b], (x[a:b], y[a:b], valid[a:b]), eyes, fix[a:b], runs):
            return False
    return True


def _numbers(
    cells: list[str], lay: _Layout, missing: tuple[str, ...]
) -> NDArray[np.float64] | None:
    """A column's values as :func:`number` reads them (a decimal comma in a TSV too)."""
    values = float_cells(cells, missing)
    if values is None and lay.comma:
        values = float_cells([c.replace(",", ".") for c in cells], missing)
    return values


def _one_number(cell: str, lay: _Layout, what: str) -> float | None:
    try:
        return number(cell.replace(",", ".") if lay.comma else cell, "", 0, what)
    except ImportFormatError:
        return None
