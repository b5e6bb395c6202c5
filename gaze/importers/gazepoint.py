"""Gazepoint Analysis CSV exports (``*_all_gaze.csv``) and Gazepoint Control logs.

- ``TIME`` (s; a header such as ``TIME(2023/03/01 10:00:00.000)`` too) → ms;
- each eye's point of gaze ``LPOGX``/``LPOGY``/``LPOGV`` and ``RPOGX``/``RPOGY``/``RPOGV``
  when present (then ``--eye`` chooses), else the best point of gaze
  ``BPOGX``/``BPOGY``/``BPOGV``; all fractions of the screen, times the screen size
  (``--resolution``, required);
- pupils ``LPMM``/``RPMM`` (mm) or ``LPD``/``RPD`` (px);
- the tracker's fixation filter: a sample is in the tracker's fixation ``FPOGID`` while
  ``FPOGV`` is 1; each fixation is kept as a ``tracker_fixation`` event from its start
  ``FPOGS`` for its duration ``FPOGD`` (s, the values of its last valid sample) at
  ``FPOGX``/``FPOGY`` — what Gazepoint Analysis exports as fixations;
- ``USER`` messages as ``message`` events; ``MEDIA_NAME`` (or ``MEDIA_ID``) runs as trials.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.importers.base import (
    BLOCK_BYTES,
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
    number,
    read_lines,
    register_importer,
    split_row,
    table_blocks,
    table_rows,
)


@register_importer("gazepoint", "Gazepoint Analysis CSV (TIME, FPOG*, BPOG*, L/RPOG*, USER)")
def parse_gazepoint(path: Path, options: ImportOptions) -> list[ImportedRecording]:
    """One :class:`ImportedRecording` of a Gazepoint CSV (see the module docstring)."""
    if options.screen_px is None:
        raise ImportFormatError(
            f"{path}: Gazepoint gives gaze as fractions of the screen; give the screen's "
            "size with --resolution WxH (e.g. 1920x1080)"
        )
    w, h = options.screen_px
    lines = read_lines(path, options.encoding)
    first = next(lines, None)
    if first is None:
        raise ImportFormatError(f"{path}: empty file; is this a Gazepoint export?")
    sep = delimiter_of(first[1])
    header = [c.strip().strip('"').upper() for c in split_row(first[1], sep)]
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    it = next((i for i, c in enumerate(header) if c.startswith("TIME") and "TICK" not in c), None)
    if it is None:
        raise fail(path, 1, "no TIME column; is this a Gazepoint export?")
    per_eye = all(c in col for c in ("LPOGX", "LPOGY", "LPOGV", "RPOGX", "RPOGY", "RPOGV"))
    if not per_eye and not all(c in col for c in ("BPOGX", "BPOGY", "BPOGV")):
        raise fail(path, 1, "no BPOGX/BPOGY/BPOGV (nor LPOG*/RPOG*) columns")
    pupils = ("LPMM", "RPMM") if "LPMM" in col else ("LPD", "RPD")
    media_col = "MEDIA_NAME" if "MEDIA_NAME" in col else "MEDIA_ID"
    acc = Accumulator(options.participant or path.stem, "")
    lay = _Layout(sep, len(header), it, per_eye, col, pupils, media_col, w, h)
    spans = _fast_rows(path, options.encoding, lay, acc)
    if spans is None:  # anything irregular: the line-by-line reader names the problem
        acc = Accumulator(options.participant or path.stem, "")
        spans = _checked_rows(path, lines, lay, acc)
    if not len(acc.t.data):
        raise ImportFormatError(f"{path}: holds no gaze samples; is this a Gazepoint export?")
    events: list[tuple[float, str, dict[str, Any]]] = []
    for fid_, (s, d, fx, fy) in spans.items():
        if math.isfinite(s) and math.isfinite(d):
            events.append((s * 1000.0, "tracker_fixation", {
                "index": fid_, "onset_ms": s * 1000.0, "offset_ms": (s + d) * 1000.0,
                "x": fx * w if math.isfinite(fx) else None,
                "y": fy * h if math.isfinite(fy) else None,
            }))  # fmt: skip
    eyes = ("left", "right") if per_eye else ()
    return [acc.build(path, options, eyes, (w, h), fixation_events=events)]


@dataclass(frozen=True)
class _Layout:
    """The file's separator and width, the TIME column, whether both eyes are given, each
    column's index by name, the pupil and media columns, and the screen (px)."""

    sep: str
    width: int
    it: int
    per_eye: bool
    col: dict[str, int]
    pupils: tuple[str, str]
    media_col: str
    w: int
    h: int


Spans = dict[int, tuple[float, float, float, float]]
"""Per tracker fixation id: start and duration (s) and position (fractions) of its last valid
sample."""


def _checked_rows(
    path: Path, lines: Iterator[tuple[int, str]], lay: _Layout, acc: Accumulator
) -> Spans:
    """The samples read line by line into ``acc``, every value checked: the reader whose
    errors name the file, line and problem."""
    sep, width, it, per_eye, col, pupils, media_col, w, h = (
        lay.sep, lay.width, lay.it, lay.per_eye, lay.col, lay.pupils, lay.media_col, lay.w, lay.h
    )  # fmt: skip
    spans: Spans = {}

    def num(row: list[str], i: int | None, name: str, line: int) -> float:
        return math.nan if i is None else number(row[i], path, line, name)

    # each column's index looked up once (None: not in the file, read as NaN)
    i_lv, i_rv, i_lx, i_ly, i_rx, i_ry = (col.get(k) for k in ("LPOGV", "RPOGV", "LPOGX",
                                                                "LPOGY", "RPOGX", "RPOGY"))  # fmt: skip
    i_bx, i_by, i_bv, i_fid, i_fv = (col.get(k) for k in ("BPOGX", "BPOGY", "BPOGV", "FPOGID",
                                                           "FPOGV"))  # fmt: skip
    i_fs, i_fd, i_fx, i_fy = (col.get(k) for k in ("FPOGS", "FPOGD", "FPOGX", "FPOGY"))
    i_lp, i_rp = col.get(pupils[0]), col.get(pupils[1])
    i_user, i_media = col.get("USER"), col.get(media_col)
    for n, row in table_rows(lines, sep, width, path):
        t = number(row[it], path, n, "TIME", missing=False) * 1000.0
        if per_eye:
            lv, rv = num(row, i_lv, "LPOGV", n) == 1, num(row, i_rv, "RPOGV", n) == 1
            lx = num(row, i_lx, "LPOGX", n) * w if lv else math.nan
            ly = num(row, i_ly, "LPOGY", n) * h if lv else math.nan
            rx = num(row, i_rx, "RPOGX", n) * w if rv else math.nan
            ry = num(row, i_ry, "RPOGY", n) * h if rv else math.nan
        else:
            lx = ly = rx = ry = math.nan
        bx, by = num(row, i_bx, "BPOGX", n) * w, num(row, i_by, "BPOGY", n) * h
        bv = num(row, i_bv, "BPOGV", n) == 1
        fid = num(row, i_fid, "FPOGID", n)
        fv = num(row, i_fv, "FPOGV", n) == 1
        fix_index = int(fid) + 1 if fv and math.isfinite(fid) else 0
        if fix_index:
            spans[int(fid)] = (num(row, i_fs, "FPOGS", n), num(row, i_fd, "FPOGD", n),
                               num(row, i_fx, "FPOGX", n), num(row, i_fy, "FPOGY", n))  # fmt: skip
        user = row[i_user].strip() if i_user is not None else ""
        if user:
            acc.events.append((t, "message", {"text": user}))
        media = row[i_media].strip() if i_media is not None else ""
        acc.add(path, n, t, (bx, by, bv), (lx, ly, rx, ry, num(row, i_lp, pupils[0], n),
                num(row, i_rp, pupils[1], n)), fix_index, media, media)  # fmt: skip
    return spans


_BLOCK = BLOCK_BYTES


def _fast_rows(path: Path, encoding: str, lay: _Layout, acc: Accumulator) -> Spans | None:
    """The samples parsed a block at a time, a column at a time
    (:func:`~gazelab.gaze.importers.base.table_blocks`) into ``acc``, exactly as
    :func:`_checked_rows` reads them, or ``None`` at anything irregular (a cut line, a
    refused value, a time going back ...): the caller then reads the file with
    :func:`_checked_rows` (into a fresh accumulator)."""
    ids: list[NDArray[np.int64]] = []
    last: list[NDArray[np.float64]] = []
    col, w, h = lay.col, lay.w, lay.h
    try:
        for _head, _sep, cells, rows in table_blocks(path, encoding, lay.sep, crlf=True,
                                                     block=_BLOCK):  # fmt: skip

            def nums(name: str, rows: int = rows, cells: list[str] = cells) -> NDArray[np.float64]:
                i = col.get(name)
                if i is None:
                    return np.full(rows, np.nan)
                values = float_cells(cells[i :: lay.width])
                if values is None:
                    raise Irregular
                return values

            t = float_cells(cells[lay.it :: lay.width], ())
            if t is None:
                return None
            t = t * 1000.0
            if lay.per_eye:
                lv, rv = nums("LPOGV") == 1, nums("RPOGV") == 1
                lx = np.where(lv, nums("LPOGX") * w, np.nan)
                ly = np.where(lv, nums("LPOGY") * h, np.nan)
                rx = np.where(rv, nums("RPOGX") * w, np.nan)
                ry = np.where(rv, nums("RPOGY") * h, np.nan)
            else:
                lx = ly = rx = ry = np.full(rows, np.nan)
            bx, by, bv = nums("BPOGX") * w, nums("BPOGY") * h, nums("BPOGV") == 1
            fid, fv = nums("FPOGID"), nums("FPOGV") == 1
            infix = fv & np.isfinite(fid)
            whole = np.where(infix, fid, 0.0)
            if bool(np.any(np.abs(whole) >= 2.0**62)):
                return None
            fid_int = whole.astype(np.int64)
            fix = np.where(infix, fid_int + 1, 0)
            if bool(np.any(infix & (fix == 0))):  # int(fid) + 1 == 0: not in a fixation
                infix &= fix != 0
            at = np.flatnonzero(infix)
            ids.append(fid_int[at])
            last.append(np.stack([nums(k)[at] for k in ("FPOGS", "FPOGD", "FPOGX", "FPOGY")]))
            if "USER" in col:
                users = cells[col["USER"] :: lay.width]
                said = {u for u in set(users) if u.strip()}
                if said:
                    for r, u in enumerate(users):
                        if u in said:
                            acc.events.append((float(t[r]), "message", {"text": u.strip()}))
            media = cells[col[lay.media_col] :: lay.width] if lay.media_col in col else [""] * rows
            runs: list[tuple[int, int, str, str, Rect | None]] = [
                (a, b, k, image, None) for a, b, k, image in key_runs(media)
            ]
            eyes = (lx, ly, rx, ry, nums(lay.pupils[0]), nums(lay.pupils[1]))
            if not acc.extend(t, (bx, by, bv), eyes, fix, runs):
                return None
    except Irregular:
        return None
    if not len(acc.t.data):
        return None
    return _last_of_each(np.concatenate(ids), np.concatenate(last, axis=1))


def _last_of_each(ids: NDArray[np.int64], values: NDArray[np.float64]) -> Spans:
    """Per id, in the order of first appearance, the ``(4, N)`` ``values`` of its last
    sample (what the line reader's dict of the latest values holds)."""
    if ids.size == 0:
        return {}
    unique, first = np.unique(ids, return_index=True)
    _, from_end = np.unique(ids[::-1], return_index=True)
    final = ids.size - 1 - from_end
    order = np.argsort(first, kind="stable")
    return {int(unique[k]): tuple(float(v) for v in values[:, final[k]])  # type: ignore[misc]
            for k in order.tolist()}  # fmt: skip
