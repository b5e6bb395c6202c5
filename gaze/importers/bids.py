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

from gazelab.gaze.importers.base import (
    Column,
    ImportedRecording,
    ImportFormatError,
    ImportOptions,
    fail,
    number,
    read_lines,
    register_importer,
    split_row,
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
        settings = Settings.from_dict(meta["Settings"], source=str(sidecar)).to_toml()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImportFormatError(f"{sidecar}: missing or unreadable sidecar ({exc})") from None
    except SettingsError as exc:
        raise ImportFormatError(str(exc)) from None
    fields = _export_columns()
    lines = read_lines(path, options.encoding)
    first = next(lines, None)
    if first is None:
        raise ImportFormatError(f"{path}: empty file")
    header = split_row(first[1], "\t")
    want = ["t_s", "trial_index", "phase", *fields.values()]
    missing = [c for c in want if c not in header]
    if missing:
        raise fail(path, 1, f"no column(s) {missing}; is this a gazelab export?")
    at = {c: header.index(c) for c in want}
    cols = {f: Column() for f in fields}
    local, trial = Column(), Column()
    phase: list[str | None] = []
    previous = -math.inf
    for n, line in lines:
        row = line.split("\t")
        if len(row) != len(header):
            raise fail(path, n, f"{len(row)} fields, the header has {len(header)}; the line is cut")
        t = number(row[at["t_s"]], path, n, "t_s", missing=False)
        if t < previous:
            raise fail(path, n, f"t_s {t!r} goes back from {previous!r}")
        previous = t
        local.append(t)
        trial.append(number(row[at["trial_index"]], path, n, "trial_index", missing=False))
        p = row[at["phase"]]
        phase.append(None if p == "n/a" else p)
        for f, c in fields.items():
            cols[f].append(number(row[at[c]], path, n, c))
    if not len(local.data):
        raise ImportFormatError(f"{path}: holds no samples")
    arrays = {f: c.numpy() for f, c in cols.items()}
    arrays["local_s"] = local.numpy()
    trials = trial.numpy().astype(np.int64)
    events, event_trials, images = _events(path.with_name(stem + "_events.tsv"))
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
        metadata={"exported_session_uuid": meta.get("SessionUUID")},
    )]  # fmt: skip


def _events(
    path: Path,
) -> tuple[list[tuple[float, str, dict[str, Any]]], list[int | None], dict[int, str]]:
    """Events (onset s, kind, payload), their trials, and each trial's image id."""
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
    return events, trials, images
