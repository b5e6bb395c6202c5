"""Any CSV/TSV of gaze samples, read through a column mapping (:class:`CsvMapping`).

Covers pymovements-style tables and raw SDK dumps (the Tobii SDK's ``RelTimestamp``,
``LGazePos2dx`` ...). The mapping names the time column and its unit (s, ms, us, ns),
the gaze columns (one combined ``x``/``y``, or ``left_x`` ... ``right_y``) and their unit:
``px`` (screen pixels), ``norm`` (fractions of the screen, times ``--resolution``) or
``deg`` (visual angle from the screen centre, y downwards, converted with the display
geometry: ``x = W/2 + D tan(θx) / pitch_x``); an optional validity column (valid when its
value is one of ``valid_values``, or a number ≤ ``valid_max``); optional trial, image and
participant columns (runs of one trial/image are trials; one recording per participant).
An empty cell or ``NaN`` is a missing value; ``inf`` is an error.
"""

from __future__ import annotations

import math
from pathlib import Path

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

TIME_UNITS = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}
XY_UNITS = ("px", "norm", "deg")


@register_importer("csv", "any CSV/TSV with a column mapping (time unit, x/y as px|norm|deg)")
def parse_csv(path: Path, options: ImportOptions) -> list[ImportedRecording]:
    """The recordings of a delimited gaze table, one per participant (module docstring)."""
    m = options.csv
    if m.time_unit not in TIME_UNITS:
        raise ImportFormatError(f"time unit {m.time_unit!r}: choose one of {', '.join(TIME_UNITS)}")
    if m.xy_unit not in XY_UNITS:
        raise ImportFormatError(f"x/y unit {m.xy_unit!r}: choose one of {', '.join(XY_UNITS)}")
    screen = options.screen_px
    if m.xy_unit in ("norm", "deg") and screen is None:
        raise ImportFormatError(f"{path}: gaze in {m.xy_unit} needs the screen's size: "
                                "give --resolution WxH")  # fmt: skip
    if m.xy_unit == "deg" and (options.screen_mm is None or options.distance_mm is None):
        raise ImportFormatError(f"{path}: gaze in degrees needs --screen-mm W H and "
                                "--distance-cm D")  # fmt: skip
    lines = read_lines(path, options.encoding)
    first = next(lines, None)
    if first is None:
        raise ImportFormatError(f"{path}: empty file")
    sep = m.delimiter or delimiter_of(first[1])
    header = [h.strip().strip('"') for h in split_row(first[1], sep)]
    col = {h: i for i, h in reversed(list(enumerate(header)))}
    per_eye = bool(m.left_x or m.right_x)
    gaze_keys = ("left_x", "left_y", "right_x", "right_y") if per_eye else ("x", "y")
    keys = ("time", *gaze_keys, "validity", "left_validity", "right_validity", "trial",
            "image", "participant")  # fmt: skip
    wanted = {k: getattr(m, k) for k in keys if getattr(m, k)}
    for key, name in wanted.items():
        if name not in col:
            shown = ", ".join(header[:12]) + (" ..." if len(header) > 12 else "")
            raise fail(path, 1, f"no column {name!r} (the mapping's {key}); columns: {shown}")
    index = {k: col[v] for k, v in wanted.items()}
    scale_t = TIME_UNITS[m.time_unit]
    w, h = screen or (1, 1)
    sx, sy = (float(w), float(h)) if m.xy_unit == "norm" else (1.0, 1.0)

    def to_px(v: float, axis: int) -> float:
        if m.xy_unit != "deg" or not math.isfinite(v):
            return v * (sx if axis == 0 else sy)
        assert options.screen_mm is not None and options.distance_mm is not None
        pitch = options.screen_mm[axis] / (w if axis == 0 else h)
        return (w if axis == 0 else h) / 2.0 + options.distance_mm * math.tan(
            math.radians(v)
        ) / pitch

    def cell(row: list[str], key: str, line: int, axis: int) -> float:
        text = row[index[key]].strip()
        return to_px(math.nan if text.lower() == "nan" else number(text, path, line, header[index[key]]),
                     axis)  # fmt: skip

    def is_valid(row: list[str], key: str, line: int) -> bool:
        v = row[index[key]].strip()
        if m.valid_values:
            return v in m.valid_values
        return number(v, path, line, header[index[key]], missing=False) <= m.valid_max

    groups: dict[str, Accumulator] = {}
    width = len(header)
    for n, row in table_rows(lines, sep, width, path):
        who = row[index["participant"]].strip() if "participant" in index else ""
        acc = groups.get(who)
        if acc is None:
            acc = groups[who] = Accumulator(who, "")
        t = number(row[index["time"]], path, n, m.time, missing=False) * scale_t
        if per_eye:
            lx, ly, rx, ry = (cell(row, k, n, a) if k in index else math.nan
                              for k, a in zip(gaze_keys, (0, 1, 0, 1), strict=True))  # fmt: skip
            x, y = math.nan, math.nan
        else:
            x, y = cell(row, "x", n, 0), cell(row, "y", n, 1)
            lx = ly = rx = ry = math.nan
        if "left_validity" in index and not is_valid(row, "left_validity", n):
            lx = ly = math.nan
        if "right_validity" in index and not is_valid(row, "right_validity", n):
            rx = ry = math.nan
        ok = "validity" not in index or is_valid(row, "validity", n)
        if not ok:
            x = y = lx = ly = rx = ry = math.nan
        trial = row[index["trial"]].strip() if "trial" in index else ""
        image = row[index["image"]].strip() if "image" in index else ""
        key = f"{trial}\x1f{image}" if (trial or image) else ""
        acc.add(path, n, t, (x, y, ok and math.isfinite(x) and math.isfinite(y)),
                (lx, ly, rx, ry, math.nan, math.nan), 0, key, image or trial)  # fmt: skip
    eyes = tuple(e for e in ("left", "right") if getattr(m, f"{e}_x")) if per_eye else ()
    out = [acc.build(path, options, eyes, screen) for acc in groups.values() if len(acc.t.data)]
    if not out:
        raise ImportFormatError(f"{path}: holds no samples")
    return out
