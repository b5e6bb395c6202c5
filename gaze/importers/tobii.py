"""Tobii Pro Lab TSV data exports and Tobii Studio TSV/CSV exports.

Columns are found by name with units and spacing ignored (``GazePointX (ADCSpx)``,
``Gaze point X [DACS px]`` and ``Gaze point X`` are one column; screen coordinates are
preferred over media coordinates, ``MCS``):

- ``RecordingTimestamp`` / ``Recording timestamp`` (ms; µs when the header says so);
- ``ParticipantName`` / ``Participant name`` and ``RecordingName`` / ``Recording name``:
  one recording per participant and recording (a file with many participants gives many);
- the gaze point (``GazePointX/Y``) and each eye's (``GazePointLeftX`` ..., ``Gaze point
  left X`` ...) with its validity (Studio: codes 0-4, valid ≤ 1; Pro Lab: ``Valid``);
  pupils (``PupilLeft``, ``Pupil diameter left``);
- the presented stimulus (``MediaName``, ``Presented Media name`` or ``Presented Stimulus
  name``), with its position and size on screen (``MediaPosX (ADCSpx)``, ``MediaWidth``,
  ``Presented Media position X (DACSpx)``, ``Presented Media width``): each run of one
  stimulus is a trial, its rectangle recorded;
- the fixation filter's output (``GazeEventType`` / ``Eye movement type`` and
  ``FixationIndex`` / ``Eye movement type index``): a sample is in the tracker's fixation
  *k* when its type is ``Fixation`` and its index is *k*;
- rows of other sensors (Pro Lab's ``Sensor`` column: gyroscope, accelerometer, ...) are
  not gaze samples; a row with only an event (``Event`` / ``StudioEvent``) is a message.

Tab-separated files may use a decimal comma (Tobii Studio in some locales).
"""

from __future__ import annotations

import math
from pathlib import Path

from gazelab.gaze.importers.base import (
    Accumulator,
    ImportedRecording,
    ImportFormatError,
    ImportOptions,
    Rect,
    delimiter_of,
    fail,
    normalise,
    number,
    read_lines,
    register_importer,
    split_row,
    table_rows,
)

_NAMES: dict[str, tuple[str, ...]] = {
    "time": ("recordingtimestamp",),
    "participant": ("participantname",),
    "recording": ("recordingname",),
    "x": ("gazepointx",),
    "y": ("gazepointy",),
    "lx": ("gazepointleftx",),
    "ly": ("gazepointlefty",),
    "rx": ("gazepointrightx",),
    "ry": ("gazepointrighty",),
    "lv": ("validityleft",),
    "rv": ("validityright",),
    "lp": ("pupilleft", "pupildiameterleft"),
    "rp": ("pupilright", "pupildiameterright"),
    "media": ("medianame", "presentedmedianame", "presentedstimulusname"),
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


def _find(header: list[str]) -> dict[str, int]:
    """Column index of each known column present (screen coordinates before media ones)."""
    norm = [normalise(h) for h in header]
    out: dict[str, int] = {}
    for key, names in _NAMES.items():
        hits = [i for i, h in enumerate(norm) if h in names]
        if hits:
            screen = [i for i in hits if "mcs" not in header[i].lower()]
            out[key] = (screen or hits)[0]
    return out


def _valid(token: str, path: Path, line: int) -> bool:
    t = token.strip()
    if not t:
        return False
    low = t.lower()
    if low in ("valid", "invalid"):
        return low == "valid"
    return number(t, path, line, "validity") <= 1.0


@register_importer("tobii", "Tobii Pro Lab / Tobii Studio TSV or CSV export (many participants)")
def parse_tobii(path: Path, options: ImportOptions) -> list[ImportedRecording]:
    """The recordings of a Tobii export, one per participant and recording (module docstring)."""
    lines = read_lines(path, options.encoding)
    first = next(lines, None)
    if first is None:
        raise ImportFormatError(f"{path}: empty file; is this a Tobii export?")
    sep = delimiter_of(first[1])
    header = [h.strip().strip('"') for h in split_row(first[1], sep)]
    col = _find(header)
    for need in ("time",):
        if need not in col:
            raise fail(path, 1, "no RecordingTimestamp / Recording timestamp column; "
                       "is this a Tobii export?")  # fmt: skip
    if "x" not in col and "lx" not in col:
        raise fail(path, 1, "no gaze point column (GazePointX / Gaze point X)")
    has_eyes = ("left", "right") if all(k in col for k in ("lx", "ly", "rx", "ry")) else ()
    scale = 1e-3 if any(u in header[col["time"]] for u in ("μs", "µs", "[us]")) else 1.0
    comma = sep == "\t"
    groups: dict[tuple[str, str], Accumulator] = {}
    screen: tuple[int, int] | None = None
    width = len(header)

    at = {k: col.get(k, width) for k in _NAMES}  # a missing column reads the empty cell
    what = {k: header[i] if i < width else k for k, i in at.items()}
    i_t, i_x, i_y, i_lx, i_ly, i_rx, i_ry, i_lv, i_rv, i_lp, i_rp = (
        at[k] for k in ("time", "x", "y", "lx", "ly", "rx", "ry", "lv", "rv", "lp", "rp")
    )
    has_sensor, has_lv, has_rv, has_rect = "sensor" in col, "lv" in col, "rv" in col, "mx" in col

    absent = {k for k, i in at.items() if i == width}  # read as the empty cell: NaN

    def num(row: list[str], key: str, line: int) -> float:
        if key in absent:
            return math.nan
        text = row[at[key]]
        return number(text.replace(",", ".") if comma else text, path, line, what[key])

    last_media, last_rect = "", None
    last_rect_cells: tuple[str, ...] = ()
    for n, row in table_rows(lines, sep, width, path):
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
            parts = row[at["resolution"]].lower().replace("x", " ").split()
            if len(parts) == 2:
                screen = (int(number(parts[0], path, n, "resolution")),
                          int(number(parts[1], path, n, "resolution")))  # fmt: skip
        x, y = num(row, "x", n), num(row, "y", n)
        lx, ly, rx, ry = num(row, "lx", n), num(row, "ly", n), num(row, "rx", n), num(row, "ry", n)
        if has_lv and not _valid(row[i_lv], path, n):
            lx = ly = math.nan
        if has_rv and not _valid(row[i_rv], path, n):
            rx = ry = math.nan
        lp, rp = num(row, "lp", n), num(row, "rp", n)
        fix_index = 0
        if row[at["etype"]].strip() == "Fixation":
            k = num(row, "eindex", n)
            fix_index = int(k) if math.isfinite(k) else 0
        media = row[at["media"]].strip()
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
    out = [acc.build(path, options, has_eyes, screen) for acc in groups.values()
           if len(acc.t.data)]  # fmt: skip
    if not out:
        raise ImportFormatError(f"{path}: holds no gaze samples; is this a Tobii export?")
    if options.participant and len(out) > 1:
        raise ImportFormatError(
            f"{path} holds {len(out)} participants/recordings; leave out --participant "
            "(each keeps the name in the file)"
        )
    return out
