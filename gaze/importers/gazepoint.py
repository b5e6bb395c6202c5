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
from pathlib import Path
from typing import Any

from gazelab.gaze.importers.base import (
    Accumulator,
    ImportedRecording,
    ImportFormatError,
    ImportOptions,
    delimiter_of,
    fail,
    number,
    read_lines,
    register_importer,
    split_row,
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
    spans: dict[int, tuple[float, float, float, float]] = {}
    width = len(header)

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
