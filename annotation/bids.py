"""Export a session to a BIDS-like folder (gaze as ``*_gaze.tsv.gz``, ``*_events.tsv``).

Layout, following the BIDS eye-tracking extension's conventions::

    OUT/sub-<pseudonym>/ses-<id>/beh/
        sub-<p>_ses-<id>_task-cklabel_gaze.tsv.gz    one row per sample, header row
        sub-<p>_ses-<id>_task-cklabel_gaze.json      columns, units, geometry, settings
        sub-<p>_ses-<id>_task-cklabel_events.tsv     onset/duration in s from session start
        sub-<p>_ses-<id>_task-cklabel_events.json

Times are seconds from the session's start on the session clock; screen
coordinates are pixels, origin top-left.

Crash safety (as the mask export): every file is written under a temporary
name (``.NAME.PID.tmp``) and renamed only when all four are complete, so a kill
or a full disk never leaves a truncated file under a final name; then
``OUT/gazelab_export.json`` records the session as ``complete`` with its files'
SHA-256 — it is written last, so a session missing there (or ``complete: false``)
was interrupted: export it again. Temporaries of killed exports are removed at
the start of the next one.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from gazelab.analysis.placement import SessionPlacements
from gazelab.annotation.sessions import session_loss_pct, session_trial_quality
from gazelab.annotation.store import SessionRecord, SessionStore
from gazelab.errors import GazelabError
from gazelab.fileio import atomic_path, atomic_write, clean_stale_temporaries
from gazelab.gaze.quality import pixel_pitch_xy
from gazelab.gaze.trackers.base import SAMPLE_FIELDS
from gazelab.gaze.trackers.registry import TrackerKind, trackers
from gazelab.settings import Settings

TASK = "cklabel"
STIM_COLUMNS = ("stim_x", "stim_y", "stim_w", "stim_h")
"""events.tsv columns: each trial's image rectangle on screen, px (``x, y`` its top-left
corner, ``w, h`` its size); ``n/a`` outside trials and where it is not known."""
MARKER = "gazelab_export.json"  # OUT/…: which sessions finished exporting (written last)


class BidsExportError(GazelabError, RuntimeError):
    """The export could not be written (a full disk, no permission); it says where and what to do."""


_GAZE_COLUMNS: dict[str, tuple[str, str]] = {
    "t_s": ("s", "sample time on the session clock, from session start"),
    "tracker_time_ms": ("ms", "tracker clock (Eye Tribe 'time')"),
    "trial_index": ("", "trial (presentation order), -1 outside trials"),
    "phase": ("", "protocol phase: blank1, cross, blank2, image, calibration"),
    "x_px": ("px", "smoothed gaze x on screen, origin left"),
    "y_px": ("px", "smoothed gaze y on screen, origin top"),
    "raw_x_px": ("px", "raw gaze x"),
    "raw_y_px": ("px", "raw gaze y"),
    "fix": ("", "tracker fixation flag (1/0)"),
    "state": ("", "Eye Tribe state bits: 1 gaze, 2 eyes, 4 presence, 8 fail, 16 lost"),
    "valid": ("", "1 when tracked, not failed/lost and on screen"),
    "left_x_px": ("px", "left eye gaze x"),
    "left_y_px": ("px", "left eye gaze y"),
    "right_x_px": ("px", "right eye gaze x"),
    "right_y_px": ("px", "right eye gaze y"),
    "left_pupil_size": ("a.u.", "left pupil size, tracker units"),
    "right_pupil_size": ("a.u.", "right pupil size, tracker units"),
    "left_pupil_cx": ("norm", "left pupil centre x in the camera image, 0..1"),
    "left_pupil_cy": ("norm", "left pupil centre y, 0..1"),
    "right_pupil_cx": ("norm", "right pupil centre x, 0..1"),
    "right_pupil_cy": ("norm", "right pupil centre y, 0..1"),
}
_FIELD_TO_COLUMN = {
    "time_ms": "tracker_time_ms",
    "x": "x_px",
    "y": "y_px",
    "raw_x": "raw_x_px",
    "raw_y": "raw_y_px",
    "fix": "fix",
    "state": "state",
    "valid": "valid",
    "left_x": "left_x_px",
    "left_y": "left_y_px",
    "right_x": "right_x_px",
    "right_y": "right_y_px",
    "left_psize": "left_pupil_size",
    "right_psize": "right_pupil_size",
    "left_pcx": "left_pupil_cx",
    "left_pcy": "left_pupil_cy",
    "right_pcx": "right_pupil_cx",
    "right_pcy": "right_pupil_cy",
}


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text) or "x"


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else repr(round(value, 6))
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def export_session(store: SessionStore, session_id: int, out_dir: str | Path) -> dict[str, Path]:
    """Write one session's gaze and events in the BIDS-like layout; returns the written paths.

    Atomic per session (see the module docstring); an interrupted export is finished by
    running it again. A full disk or a folder that cannot be written is a
    :class:`BidsExportError` naming the folder."""
    out = Path(out_dir)
    try:
        return _export_session(store, session_id, out)
    except OSError as exc:
        raise BidsExportError(
            f"cannot write the export of session {session_id} to {out}: "
            f"{exc.strerror or exc}; {_os_advice(exc, out)}, then run the export again"
        ) from exc


def _os_advice(exc: OSError, out: Path) -> str:
    """What to do about a failed write, by its cause (a missing folder is not a full disk)."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return (f"a folder on the way to {out} cannot be made or is a file: give "
                "another --out")  # fmt: skip
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "fix the folder's permissions (or give another --out)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space"
    return "check the output folder (free space, permissions)"


def read_marker(out_dir: str | Path) -> dict[str, Any]:
    """``OUT/gazelab_export.json`` as a dict (``{"sessions": {}}`` when absent)."""
    path = Path(out_dir) / MARKER
    if not path.exists():
        return {"sessions": {}}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BidsExportError(
            f"{path} is unreadable ({exc}); delete it and run the export again"
        ) from exc
    return (
        info
        if isinstance(info, dict) and isinstance(info.get("sessions"), dict)
        else {"sessions": {}}
    )


def _mark(out: Path, session_id: int, entry: dict[str, Any]) -> None:
    info = read_marker(out)
    info["sessions"][str(session_id)] = entry
    atomic_write(out / MARKER, json.dumps(info, indent=2, sort_keys=True) + "\n")


def _export_session(store: SessionStore, session_id: int, out: Path) -> dict[str, Path]:
    rec = store.session(session_id)
    settings = Settings.from_toml(rec.settings_toml, source=f"session {session_id} in {store.path}")
    stem = f"sub-{_label(rec.participant)}_ses-{rec.id:02d}_task-{TASK}"
    folder = out / f"sub-{_label(rec.participant)}" / f"ses-{rec.id:02d}" / "beh"
    folder.mkdir(parents=True, exist_ok=True)
    for f in (out, folder):  # temporaries left by an export that was killed
        clean_stale_temporaries(f)
    earlier = read_marker(out)["sessions"].get(str(session_id))
    if isinstance(earlier, dict) and earlier.get("session_uuid") not in (None, rec.uuid):
        raise BidsExportError(
            f"{out} holds the export of another session {session_id} (from another store:"
            f" uuid {earlier['session_uuid']}, this one is {rec.uuid}); export each store"
            " into its own folder"
        )
    _mark(out, session_id, {"complete": False, "session_uuid": rec.uuid})
    t0 = rec.start_local_s
    final = {
        "gaze": folder / f"{stem}_gaze.tsv.gz",
        "gaze_json": folder / f"{stem}_gaze.json",
        "events": folder / f"{stem}_events.tsv",
        "events_json": folder / f"{stem}_events.json",
    }
    # all four written under temporary names; only when all are complete does each get
    # its name (flushed to disk first); a failure removes the four temporaries
    with contextlib.ExitStack() as stack:
        tmp = {k: stack.enter_context(atomic_path(p)) for k, p in final.items()}
        counts = _write_files(store, rec, settings, t0, tmp)
    _mark(out, session_id, {
        "complete": True,
        "session_uuid": rec.uuid,
        **counts,
        "files": {p.relative_to(out).as_posix(): _sha256(p) for p in final.values()},
    })  # fmt: skip
    return final


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _finite(value: float) -> float | None:
    """A number for JSON: NaN (not measured) becomes null."""
    return round(float(value), 6) if math.isfinite(value) else None


def _quality_fields(store: SessionStore, rec: SessionRecord, settings: Settings) -> dict[str, Any]:
    """The data-quality entries of the gaze sidecar.

    BIDS eye-tracking (BEP020) names where they exist: ``AverageCalibrationError`` and
    ``MaximalCalibrationError`` (degrees) of the validation that opened the recording
    (the last one of kind ``calibration-validation``, else the first run), and
    ``CalibrationCount``. Precision and data loss have no BIDS name: they are under
    ``DataQuality`` with their definitions (gaze/quality.py). The trials' values are those
    stored with the session when it has them (:func:`session_trial_quality`).
    """
    runs = store.validation_qualities(rec.id)
    opening = [r for r in runs if r["kind"] == "calibration-validation"] or runs[:1]
    trials = session_trial_quality(store, rec.id, settings)
    fields: dict[str, Any] = {
        "CalibrationCount": sum(c["kind"] == "calibration" for c in store.calibrations(rec.id)),
    }
    if opening:
        q = opening[-1]["quality"]
        fields["AverageCalibrationError"] = _finite(q.mean_accuracy_deg)
        fields["MaximalCalibrationError"] = _finite(q.max_accuracy_deg)
        fields["CalibrationUnit"] = "deg"
    fields["DataQuality"] = {
        "Definitions": {
            "AccuracyDeg": "angular distance from the target to the mean valid gaze position",
            "PrecisionRMSS2SDeg": "RMS of angular distances between successive valid samples"
            " (trials: fixation steps at or below the I-VT velocity threshold)",
            "PrecisionSTDDeg": "sqrt(var_x + var_y) of gaze angles (trials: pooled over"
            " fixation runs)",
            "DataLossPercent": "missing or invalid samples, percent of nominal rate x duration",
            "Reference": "Holmqvist, Nystrom & Mulvey (2012), ETRA",
        },
        "Validations": [
            {
                "Kind": r["kind"],
                "OnsetSeconds": _finite(r["local_s"] - rec.start_local_s),
                "Passed": r["passed"],
                "Overridden": r["overridden"],
                "Problems": r["problems"],
                "AccuracyDeg": _finite(r["quality"].mean_accuracy_deg),
                "MaxAccuracyDeg": _finite(r["quality"].max_accuracy_deg),
                "PrecisionRMSS2SDeg": _finite(r["quality"].rms_s2s_deg),
                "PrecisionSTDDeg": _finite(r["quality"].std_deg),
                "DataLossPercent": _finite(r["quality"].loss_pct),
                "Targets": [
                    {
                        "TargetPixels": list(p.target_px),
                        "OffsetPixels": [_finite(v) for v in p.offset_px],
                        "AccuracyDeg": _finite(p.accuracy_deg),
                        "PrecisionRMSS2SDeg": _finite(p.rms_s2s_deg),
                        "PrecisionSTDDeg": _finite(p.std_deg),
                        "DataLossPercent": _finite(p.loss_pct),
                    }
                    for p in r["quality"].points
                ],
            }
            for r in runs
        ],
        "DataLossPercent": _finite(session_loss_pct(trials)),
        "Trials": [
            {
                "trial_index": t.trial_index,
                "DurationSeconds": _finite(t.duration_s),
                "ExpectedSamples": t.n_expected,
                "ValidSamples": t.n_samples,
                "DataLossPercent": _finite(t.loss_pct),
                "PrecisionRMSS2SDeg": _finite(t.rms_s2s_deg),
                "PrecisionSTDDeg": _finite(t.std_deg),
            }
            for t in trials
        ],
    }
    return fields


def _rect_cells(rect: tuple[float, float, float, float] | None) -> list[str]:
    """The ``stim_*`` cells: every digit of the rectangle (``repr``), so a re-import reads
    the very numbers; ``n/a`` where the trial's rectangle is not known."""
    if rect is None:
        return ["n/a"] * len(STIM_COLUMNS)
    return [repr(float(v)) for v in rect]


def _trial_rects(
    store: SessionStore, rec: SessionRecord, places: SessionPlacements
) -> dict[int, tuple[float, float, float, float]]:
    """Trial index -> where its image was on screen, ``(x, y, w, h)`` px
    (:meth:`SessionPlacements.for_trial`, the one reader of a trial's placement).

    The image's own shape is needed only where the rectangle follows from it (the
    settings' centred square of a session recorded before placements were stored, a
    position without a size): it is the recorded one (``image_shape`` of ``annotate``'s
    event), else the image decoded from the session's image source; a trial whose image
    cannot be read there is left without a rectangle (``n/a``)."""
    source: list[Any] = []  # the image set, opened on first need ([None] when it cannot be)

    def decoded_shape(image_id: str) -> tuple[int, int] | None:
        if not source:
            try:
                from gazelab.models.datasets.registry import open_image_set

                source.append(open_image_set(rec.image_source) if rec.image_source else None)
            except (GazelabError, OSError, ValueError):
                source.append(None)
        images = source[0]
        if images is None or image_id not in images:
            return None
        try:
            pixels = images.image(image_id)
        except (GazelabError, OSError, ValueError):
            return None
        return (int(pixels.shape[0]), int(pixels.shape[1]))

    out: dict[int, tuple[float, float, float, float]] = {}
    for tr in store.trials(rec.id):
        ti, image_id = int(tr["trial_index"]), str(tr["image_id"])
        payload = places.by_trial.get(ti) or {}
        shape: tuple[int, int] | None = None
        recorded = payload.get("image_shape")
        if isinstance(recorded, list) and len(recorded) == 2:
            shape = (int(recorded[0]), int(recorded[1]))
        elif payload.get("square_px") is None and _stated(payload.get("image_rect_px")):
            shape = (1, 1)  # the rectangle is all there is (checked there); no image size used
        else:
            shape = decoded_shape(image_id)
        if shape is not None and shape[0] > 0 and shape[1] > 0:
            out[ti] = places.for_trial(ti, shape).rect_px
    return out


def _stated(rect: Any) -> bool:
    """A recorded rectangle that states all it is (position and size, or something that is
    not a rectangle at all: :meth:`SessionPlacements.for_trial` refuses it by name), as
    opposed to none, or a position without a size (the image's own size completes it)."""
    if rect is None:
        return False
    if not isinstance(rect, dict):
        return True
    return all(rect.get(k) is not None for k in ("x", "y", "w", "h"))


def _write_files(
    store: SessionStore, rec: SessionRecord, settings: Settings, t0: float, paths: dict[str, Path]
) -> dict[str, int]:
    """The four files of one session, at ``paths`` (temporary names); returns row counts."""
    session_id = rec.id
    table = store.samples(session_id)
    columns = list(_GAZE_COLUMNS)
    with gzip.open(paths["gaze"], "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        n = len(table["local_s"])
        for i in range(n):
            row: dict[str, Any] = {
                "t_s": float(table["local_s"][i]) - t0,
                "trial_index": int(table["trial_index"][i]),
                "phase": table["phase"][i] or "n/a",
            }
            for field in SAMPLE_FIELDS:
                if field == "local_s":
                    continue
                v = table[field][i]
                row[_FIELD_TO_COLUMN[field]] = v.item() if hasattr(v, "item") else v
            writer.writerow([_cell(row[c]) for c in columns])

    g = settings.display
    places = SessionPlacements.read(store, session_id, settings)
    rects = _trial_rects(store, rec, places)
    known = trackers()
    tracker = known.get(settings.tracker.kind) or TrackerKind(
        settings.tracker.kind, known["none"].open, "none", "", manufacturer="unknown"
    )
    gaze_json = {
        "TaskName": TASK,
        "SamplingFrequency": settings.tracker.rate_hz,
        "Manufacturer": tracker.manufacturer,
        "ManufacturersModelName": tracker.model,
        "TrackerKind": tracker.name,
        "RecordedEye": "both",
        "ScreenSize": [g.width_mm / 1000.0, g.height_mm / 1000.0],
        "ScreenResolution": list(g.resolution_px),
        "ScreenDistance": g.distance_mm / 1000.0,
        "PixelPitchMillimetres": g.pixel_pitch_mm,
        "PixelPitchMillimetresXY": list(places.mm_per_px or pixel_pitch_xy(g)),
        "StimulusSquarePixels": settings.stimulus.square_px,
        "StimulusPlacement": {
            "Description": "where each trial's image was on screen: events.tsv columns "
            + ", ".join(STIM_COLUMNS)
            + " (px, top-left corner and size, origin top-left "
            "of the screen); PixelPitchMillimetresXY is one screen pixel's width and "
            "height in mm (pixels need not be square)",
            "Trials": len(rects),
        },
        "Columns": columns,
        **{c: {"Description": d, "Units": u} for c, (u, d) in _GAZE_COLUMNS.items()},
        "SessionUUID": rec.uuid,
        "SoftwareVersion": rec.software_version,
        "Calibrations": store.calibrations(session_id),
        **_quality_fields(store, rec, settings),
        "RecordingGaps": [
            {**gap, "start_s": gap["start_local_s"] - t0} for gap in store.gaps(session_id)
        ],
        "Settings": settings.to_dict(),
    }
    paths["gaze_json"].write_text(json.dumps(gaze_json, indent=2), encoding="utf-8")

    ev_cols = ["onset", "duration", "trial_type", "trial_index", "image_id", "value", "payload",
               *STIM_COLUMNS]  # fmt: skip
    trials = {t["trial_index"]: t for t in store.trials(session_id)}
    events = store.events(session_id)
    with paths["events"].open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(ev_cols)
        for k, ev in enumerate(events):
            nxt = next((e for e in events[k + 1 :] if e["trial_index"] == ev["trial_index"]), None)
            duration = (nxt["local_s"] - ev["local_s"]) if nxt else None
            ti = ev["trial_index"]
            image_id = trials[ti]["image_id"] if ti in trials else None
            value = ev["payload"].get("label") or ev["payload"].get("key")
            writer.writerow(
                [
                    _cell(ev["local_s"] - t0),
                    _cell(duration),
                    ev["kind"],
                    _cell(ti),
                    _cell(image_id),
                    _cell(value),
                    json.dumps(ev["payload"], sort_keys=True),
                    *_rect_cells(rects.get(ti) if ti is not None else None),
                ]
            )
    events_json = {
        "onset": {"Description": "event time from session start", "Units": "s"},
        "duration": {"Description": "time to the trial's next event", "Units": "s"},
        "trial_type": {
            "Description": "event kind: phase onsets (blank1, cross, blank2, image), "
            "keypress, label, calibration, tracker_gap, ..."
        },
        "trial_index": {"Description": "trial in presentation order"},
        "image_id": {"Description": "stimulus image id"},
        "value": {"Description": "label or key of label/keypress events"},
        "payload": {"Description": "all event fields as JSON"},
        "stim_x": {"Description": "left edge of the trial's image on screen", "Units": "px"},
        "stim_y": {"Description": "top edge of the trial's image on screen", "Units": "px"},
        "stim_w": {"Description": "width of the trial's image on screen", "Units": "px"},
        "stim_h": {"Description": "height of the trial's image on screen", "Units": "px"},
        "StimulusPresentation": {
            "ScreenResolution": list(g.resolution_px),
            "ScreenDistance": g.distance_mm / 1000.0,
            "PixelPitchMillimetresXY": list(places.mm_per_px or pixel_pitch_xy(g)),
        },
    }
    paths["events_json"].write_text(json.dumps(events_json, indent=2), encoding="utf-8")
    return {"samples": n, "events": len(events)}
