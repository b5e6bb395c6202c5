"""gazelab's own BIDS-like export (``gazelab export``) back into a store.

Reads ``*_gaze.tsv.gz`` (every sample field as exported, ``n/a`` for no value), its
``*_gaze.json`` sidecar (the session's settings) and ``*_events.tsv`` (events with their
JSON payload). The session clock starts at 0 (``t_s`` is the sample's ``local_s``), so
exporting the imported session writes the same gaze table again, byte for byte; every
stored value is the exported one exactly (``float`` of the exported text).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.importers.base import (
    MAX_LINE_BYTES,
    Column,
    ImportedRecording,
    ImportFormatError,
    ImportOptions,
    Irregular,
    fail,
    float_cells,
    number,
    read_lines,
    register_importer,
    split_row,
    table_blocks,
)

GAZE_SUFFIX = "_gaze.tsv.gz"


def _export_columns() -> dict[str, str]:
    from gazelab.annotation.bids import _FIELD_TO_COLUMN  # the export's own column names

    return dict(_FIELD_TO_COLUMN)


def gaze_files(folder: Path) -> list[Path]:
    """The ``*_gaze.tsv.gz`` files under an export folder, sorted."""
    return sorted(folder.rglob(f"*{GAZE_SUFFIX}"))


@register_importer("bids", "gazelab's own BIDS-like export (*_gaze.tsv.gz), bit for bit")
def parse_bids(path: Path, options: ImportOptions) -> list[ImportedRecording]:
    """One :class:`ImportedRecording` of an exported session (module docstring)."""
    from gazelab.settings import Settings, SettingsError

    if not path.name.endswith(GAZE_SUFFIX):
        raise ImportFormatError(f"{path}: not a gazelab export's {GAZE_SUFFIX} file")
    stem = path.name[: -len(GAZE_SUFFIX)]
    sidecar = path.with_name(stem + "_gaze.json")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        parsed = Settings.from_dict(meta["Settings"], source=str(sidecar))
        settings = parsed.to_toml()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImportFormatError(f"{sidecar}: missing or unreadable sidecar ({exc})") from None
    except SettingsError as exc:
        raise ImportFormatError(str(exc)) from None
    fields = _export_columns()
    want = ["t_s", "trial_index", "phase", *fields.values()]
    table = _fast_table(path, options.encoding, want)
    if table is None:  # anything irregular: the line-by-line reader names the problem
        table = _checked_table(path, options.encoding, want)
    values, phase = table
    arrays = {f: values[c] for f, c in fields.items()}
    arrays["local_s"] = values["t_s"]
    trials = values["trial_index"].astype(np.int64)
    screen = (int(parsed.display.resolution_px[0]), int(parsed.display.resolution_px[1]))
    events, event_trials, images = _events(path.with_name(stem + "_events.tsv"), screen)
    n_trials = max([int(trials.max()) + 1, *(k + 1 for k in images)])
    order = [images.get(k, "") for k in range(n_trials)]
    m = re.match(r"sub-([A-Za-z0-9]+)", stem)
    nan = np.full(trials.size, np.nan)
    return [ImportedRecording(
        participant=options.participant or (m.group(1) if m else stem),
        time_ms=arrays["time_ms"], x=arrays["x"], y=arrays["y"],
        valid=arrays["valid"] == 1, left_x=arrays["left_x"], left_y=arrays["left_y"],
        right_x=arrays["right_x"], right_y=arrays["right_y"],
        left_pupil=arrays["left_psize"], right_pupil=arrays["right_psize"],
        fix=arrays["fix"] == 1, trials=[], events=events,
        rate_hz=float(meta.get("SamplingFrequency") or math.nan),
        screen_px=None, eyes_recorded=(), eye=str(meta.get("RecordedEye", "")),
        source=str(path), columns={**arrays, "trial_index": trials, "phase": phase,
                                   "_nan": nan},
        settings_toml=settings, start_local_s=0.0, stimulus_order=order,
        event_trials=event_trials,
        metadata={"exported_session_uuid": meta.get("SessionUUID"), **_pitch(meta, sidecar)},
    )]  # fmt: skip


_REQUIRED = ("t_s", "trial_index")  # a value on every line
_BLOCK = 1 << 21
"""Bytes of the decompressed file parsed at a time by :func:`_fast_table` (bounded memory)."""

Table = tuple[dict[str, NDArray[np.float64]], list[str | None]]
"""Every numeric column of a gaze file by its name, and the ``phase`` column."""


def _checked_table(path: Path, encoding: str, want: list[str]) -> Table:
    """The gaze table read line by line, every value checked by :func:`number`: the reader
    whose errors name the file, line and problem."""
    lines = read_lines(path, encoding)
    first = next(lines, None)
    if first is None:
        raise ImportFormatError(f"{path}: empty file")
    header = split_row(first[1], "\t")
    missing = [c for c in want if c not in header]
    if missing:
        raise fail(path, 1, f"no column(s) {missing}; is this a gazelab export?")
    at = {c: header.index(c) for c in want}
    numeric = [c for c in want if c != "phase"]
    cols = {c: Column() for c in numeric}
    phase: list[str | None] = []
    previous = -math.inf
    for n, line in lines:
        row = line.split("\t")
        if len(row) != len(header):
            raise fail(path, n, f"{len(row)} fields, the header has {len(header)}; the line is cut")
        for c in numeric:
            v = number(row[at[c]], path, n, c, missing=c not in _REQUIRED)
            if c == "t_s":
                if v < previous:
                    raise fail(path, n, f"t_s {v!r} goes back from {previous!r}")
                previous = v
            cols[c].append(v)
        p = row[at["phase"]]
        phase.append(None if p == "n/a" else p)
    if not phase:
        raise ImportFormatError(f"{path}: holds no samples")
    return {c: col.numpy() for c, col in cols.items()}, phase


def _fast_table(path: Path, encoding: str, want: list[str]) -> Table | None:
    """The gaze table parsed a block at a time, a column at a time (about 3x faster than
    :func:`_checked_table`; :func:`~gazelab.gaze.importers.base.table_blocks`), or ``None``
    at the first thing that is not a well-formed export (a cut or long line, other bytes,
    a refused value, times going back): the caller then reads the file with
    :func:`_checked_table`, whose error names the line.

    Every value is ``float`` of its text, as :func:`_checked_table` reads it.
    """
    numeric = [c for c in want if c != "phase"]
    parts: dict[str, list[NDArray[np.float64]]] = {c: [] for c in numeric}
    phase: list[str | None] = []
    at: dict[str, int] = {}
    try:
        for head, _sep, cells, _rows in table_blocks(
            path, encoding, "\t", block=_BLOCK, max_line=MAX_LINE_BYTES
        ):
            if not at:
                header = split_row(head, "\t")
                if any(c not in header for c in want):
                    return None
                at = {c: header.index(c) for c in want}
                width = len(header)
            for c in numeric:
                values = float_cells(cells[at[c] :: width], () if c in _REQUIRED else ("n/a",),
                                     strip=False)  # fmt: skip
                if values is None:
                    return None
                parts[c].append(values)
            phase.extend(None if p == "n/a" else p for p in cells[at["phase"] :: width])
    except Irregular:
        return None
    if not phase:
        return None
    table = {c: np.concatenate(parts[c]) for c in numeric}
    if bool(np.any(np.diff(table["t_s"]) < 0)):
        return None
    return table, phase


def _events(
    path: Path, screen_px: tuple[int, int]
) -> tuple[list[tuple[float, str, dict[str, Any]]], list[int | None], dict[int, str]]:
    """Events (onset s, kind, payload), their trials, and each trial's image id. A trial's
    ``stim_*`` rectangle that cannot be on the ``screen_px`` screen
    (:func:`~gazelab.gaze.geometry.rect_problem`) is refused with its line."""
    from gazelab.annotation.bids import STIM_COLUMNS
    from gazelab.gaze.geometry import rect_problem

    events: list[tuple[float, str, dict[str, Any]]] = []
    trials: list[int | None] = []
    images: dict[int, str] = {}
    if not path.exists():
        return events, trials, images
    lines = read_lines(path)
    first = next(lines, None)
    if first is None:
        return events, trials, images
    header = first[1].split("\t")
    need = ("onset", "trial_type", "trial_index", "image_id", "payload")
    if any(c not in header for c in need):
        raise fail(path, 1, f"needs the columns {list(need)}")
    at = {c: header.index(c) for c in need}
    # optional stim_x/stim_y/stim_w/stim_h: the trial's image rectangle on screen, px
    stim = [header.index(c) for c in STIM_COLUMNS] if set(STIM_COLUMNS) <= set(header) else []
    rects: dict[int, tuple[float, dict[str, float]]] = {}
    placed: set[int] = set()
    for n, line in lines:
        row = split_row(line, "\t")
        if len(row) != len(header):
            raise fail(path, n, f"{len(row)} fields, the header has {len(header)}")
        onset = number(row[at["onset"]], path, n, "onset", missing=False)
        ti_text = row[at["trial_index"]]
        ti = None if ti_text == "n/a" else int(number(ti_text, path, n, "trial_index"))
        try:
            payload = json.loads(row[at["payload"]])
        except ValueError:
            raise fail(path, n, "payload is not JSON") from None
        events.append((onset, row[at["trial_type"]], payload))
        trials.append(ti)
        if ti is not None and row[at["image_id"]] != "n/a":
            images[ti] = row[at["image_id"]]
        if ti is not None and isinstance(payload, dict) and payload.get("image_rect_px"):
            placed.add(ti)
        if ti is not None and stim and ti not in rects:
            v = [number(row[i], path, n, header[i]) for i in stim]
            if any(map(math.isfinite, v)) and not all(map(math.isfinite, v)):
                raise fail(path, n, f"the image rectangle stim_x/stim_y/stim_w/stim_h"
                           f" {' '.join(row[i] for i in stim)} is partly n/a; give all"
                           " four or write n/a in all four")  # fmt: skip
            if all(map(math.isfinite, v)):
                why = rect_problem((v[0], v[1], v[2], v[3]), screen_px)
                if why is not None:
                    raise fail(path, n, f"the image rectangle stim_x/stim_y/stim_w/stim_h"
                               f" {' '.join(row[i] for i in stim)} px {why}; correct it or"
                               " write n/a in all four")  # fmt: skip
                rects[ti] = (onset, dict(zip("xywh", v, strict=True)))
    for ti, (onset, rect) in rects.items():  # a rectangle no event of its trial records
        if ti not in placed:
            events.append((onset, "stimulus_placement",
                           {"image_id": images.get(ti, ""), "image_rect_px": rect}))  # fmt: skip
            trials.append(ti)
    return events, trials, images


def _pitch(meta: dict[str, Any], sidecar: Path) -> dict[str, Any]:
    """``{"mm_per_px": [x, y]}`` from the sidecar's ``PixelPitchMillimetresXY`` (one screen
    pixel's width and height, mm), for the session's ``import`` event; ``{}`` without it.
    A value that is not two sizes (:func:`~gazelab.gaze.geometry.pitch_problem`) is
    refused."""
    from gazelab.gaze.geometry import pitch_problem

    if "PixelPitchMillimetresXY" not in meta:
        return {}
    xy = meta["PixelPitchMillimetresXY"]
    why = pitch_problem(xy)
    if why is not None:
        raise ImportFormatError(f"{sidecar}: PixelPitchMillimetresXY {json.dumps(xy)} {why}"
                                " (one screen pixel's width and height); correct it, or"
                                " delete the key to use the settings' screen size")  # fmt: skip
    return {"mm_per_px": [float(xy[0]), float(xy[1])]}
