"""Write parsed recordings into a store: one session per recording, one transaction per file.

:func:`import_file` parses the whole file first (a bad line stops it before anything is
written), refuses a file whose SHA-256 is already in the store, then writes every
recording of the file in one SQLite transaction — a failure or a kill part-way leaves
the store as it was. Each session gets:

- settings: the display (``--resolution`` or the file's screen, ``--screen-mm``,
  ``--distance-cm``) and the tracker's rate;
- samples on the tracker's clock (``time_ms`` as in the file; ``local_s`` = ``time_ms``
  / 1000, so the session clock is the tracker's), each tagged with its trial and phase
  (``image`` from the image's onset to the trial's end, ``trial`` before it);
- an ``import`` event (format, file, SHA-256, eyes recorded and used, rate, screen) and
  one ``import_trial`` event per trial (image id, the image's rectangle on screen as the
  file gives it, trial variables);
- the tracker's events (``tracker_fixation``, ``tracker_saccade``, ``tracker_blink``) and
  messages (``message``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gazelab.gaze.importers.base import (
    IMPORTERS,
    ImportedRecording,
    ImportFormatError,
    ImportOptions,
)

BATCH = 50_000
"""Samples handed to the store at a time (bounded memory while writing)."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def imported_hashes(store: Any) -> dict[str, int]:
    """SHA-256 of every file imported into ``store`` -> the first session it gave."""
    out: dict[str, int] = {}
    for rec in store.sessions():
        for ev in store.events(rec.id):
            if ev["kind"] == "import" and isinstance(ev["payload"].get("sha256"), str):
                out.setdefault(ev["payload"]["sha256"], rec.id)
    return out


@contextlib.contextmanager
def one_transaction(store: Any) -> Iterator[None]:
    """Every store write inside is one SQLite transaction (all or nothing)."""
    with store.transaction():
        yield


def settings_toml(rec: ImportedRecording, options: ImportOptions, fmt: str) -> str:
    """The session's settings: display geometry and the tracker's nominal rate."""
    if rec.settings_toml:
        return rec.settings_toml
    from gazelab.gaze.geometry import DisplayGeometry
    from gazelab.settings import Settings, TrackerSettings

    res = options.screen_px or rec.screen_px
    if res is None:
        raise ImportFormatError(
            f"{rec.source}: the file does not say the screen's size; give --resolution WxH"
        )
    distance = options.distance_mm or 700.0
    if options.screen_mm:
        display = DisplayGeometry(options.screen_mm[0], options.screen_mm[1], res, distance)
    else:
        display = DisplayGeometry.from_diagonal(27.0, res, distance)
    rate = int(round(rec.rate_hz)) if math.isfinite(rec.rate_hz) else 60
    tracker = TrackerSettings(kind="gazepoint" if fmt == "gazepoint" else "none",
                              rate_hz=min(max(rate, 1), 2000))  # fmt: skip
    return Settings(display=display, tracker=tracker).to_toml()


def _trial_tags(t: np.ndarray, rec: ImportedRecording) -> tuple[np.ndarray, list[str | None]]:
    """Trial index (-1 outside) and phase of every sample, from the recording's trials."""
    idx = np.full(t.size, -1, dtype=np.int64)
    image = np.zeros(t.size, dtype=bool)
    for k, tr in enumerate(rec.trials):
        a = int(np.searchsorted(t, tr.start_ms, side="left"))
        b = int(np.searchsorted(t, tr.end_ms, side="right"))
        idx[a:b] = k
        onset = tr.image_onset_ms if tr.image_onset_ms is not None else tr.start_ms
        c = int(np.searchsorted(t, onset, side="left"))
        image[max(a, c) : b] = True
    phase: list[str | None] = [
        None if i < 0 else ("image" if im else "trial")
        for i, im in zip(idx.tolist(), image.tolist(), strict=True)
    ]
    return idx, phase


def _write(store: Any, rec: ImportedRecording, sha: str, fmt: str, options: ImportOptions,
           image_source: str) -> int:  # fmt: skip
    from gazelab.gaze.trackers.base import SAMPLE_FIELDS, STATE_OK, STATE_TRACKING_LOST

    exact = bool(rec.columns)
    t = rec.time_ms
    if exact:
        local = rec.columns["local_s"]
        trial_idx = rec.columns["trial_index"]
        phases = rec.columns["phase"]
        order = rec.stimulus_order or []
        start = float(rec.start_local_s or 0.0)
    else:
        local = t / 1000.0
        trial_idx, phases = _trial_tags(t, rec)
        order = [tr.image_id for tr in rec.trials]
        start = float(local[0])
    from gazelab.settings import Settings

    toml = settings_toml(rec, options, fmt)
    display = Settings.from_toml(toml, source=rec.source).display
    session = store.create_session(
        rec.participant, settings_toml=toml, seed=0,
        image_source=image_source, stimulus_order=order, start_local_s=start,
    )  # fmt: skip
    sid = int(session.id)
    store.add_event(sid, "import", start, payload={
        "mm_per_px": [display.width_mm / display.resolution_px[0],
                      display.height_mm / display.resolution_px[1]],
        "screen_mm_given": options.screen_mm is not None or exact,
        "format": fmt, "file": Path(rec.source).name, "sha256": sha,
        "recording": rec.recording, "eye": rec.eye, "eyes_recorded": list(rec.eyes_recorded),
        "rate_hz": rec.rate_hz if math.isfinite(rec.rate_hz) else None,
        "screen_px": list(options.screen_px or rec.screen_px or ()),
        "samples": rec.n, **rec.metadata,
    })  # fmt: skip
    for k, tr in enumerate(rec.trials):
        onset = tr.image_onset_ms if tr.image_onset_ms is not None else tr.start_ms
        store.set_trial_onset(sid, k, onset / 1000.0, 0.0)
        store.add_event(sid, "import_trial", tr.start_ms / 1000.0, trial_index=k, payload={
            "image_id": tr.image_id, "start_ms": tr.start_ms, "end_ms": tr.end_ms,
            "image_onset_ms": tr.image_onset_ms,
            "image_rect_px": tr.rect.as_dict() if tr.rect else None,
            "variables": tr.variables, "label": tr.label,
        })  # fmt: skip
    if exact:
        cols = [rec.columns[f] for f in SAMPLE_FIELDS]
        by_cols = {f: rec.columns[f] for f in ("x", "y", "valid")}
    else:
        nan = np.full(t.size, np.nan)
        state = np.where(rec.valid, STATE_OK, STATE_TRACKING_LOST)
        by_field = {
            "time_ms": t, "local_s": local, "x": rec.x, "y": rec.y, "fix": rec.fix,
            "state": state, "valid": rec.valid, "raw_x": rec.x, "raw_y": rec.y,
            "left_x": rec.left_x, "left_y": rec.left_y, "right_x": rec.right_x,
            "right_y": rec.right_y, "left_psize": rec.left_pupil,
            "right_psize": rec.right_pupil,
        }  # fmt: skip
        cols = [by_field.get(f, nan) for f in SAMPLE_FIELDS]
        by_cols = {f: by_field[f] for f in ("x", "y", "valid")}
    for a in range(0, t.size, BATCH):
        b = min(a + BATCH, t.size)
        lists = _batch_columns(SAMPLE_FIELDS, cols, a, b)
        ti = [None if k < 0 else k for k in np.asarray(trial_idx[a:b]).tolist()]
        store.add_sample_columns(sid, ti, phases[a:b], lists)
    starts = np.array([tr.start_ms for tr in rec.trials])
    ends = np.array([tr.end_ms for tr in rec.trials])
    for j, (tm, kind, payload) in enumerate(rec.events):
        if rec.event_trials is not None:
            store.add_event(sid, kind, start + tm, trial_index=rec.event_trials[j],
                            payload=payload)  # fmt: skip
            continue
        k = int(np.searchsorted(starts, tm, side="right")) - 1
        inside = k >= 0 and tm <= ends[k]
        store.add_event(sid, kind, tm / 1000.0, trial_index=k if inside else None,
                        payload=payload)  # fmt: skip
    _store_trial_quality(store, sid, local, trial_idx, phases, by_cols)
    return sid


def _batch_columns(
    fields: tuple[str, ...], cols: list[Any], a: int, b: int
) -> list[list[Any] | None]:
    """Samples ``a:b`` of each field's column as plain Python values for
    :meth:`SessionStore.add_sample_columns`, chosen to bind fast: ``fix`` and ``valid`` as
    0/1 ``int`` (what SQLite stores for a ``bool``), ``state`` as ``int``, the others as
    ``float``; a float column that is NaN throughout as ``None`` (a ``NULL`` column: SQLite
    stores NaN as ``NULL``); one list for a column object given for several fields (bound
    once per row). The stored values are the same."""
    out: list[list[Any] | None] = []
    made: dict[tuple[int, str], list[Any] | None] = {}
    for f, c in zip(fields, cols, strict=True):
        kind = "bool" if f in ("fix", "valid") else "int" if f == "state" else "float"
        key = (id(c), kind)
        if key not in made:
            part = np.asarray(c[a:b])
            if kind == "bool":
                made[key] = part.astype(bool).astype(np.int64).tolist()
            elif kind == "int":
                made[key] = part.astype(np.int64).tolist()
            else:
                values = part.astype(np.float64)
                made[key] = None if bool(np.isnan(values).all()) else values.tolist()
        out.append(made[key])
    return out


def _image_samples_by_trial(
    local_s: np.ndarray, trial_index: np.ndarray, phase: Any, columns: dict[str, np.ndarray]
) -> dict[int, dict[str, np.ndarray]] | None:
    """The image-phase samples of each trial as the store reads them back
    (:meth:`SessionStore.samples_by_trial` with ``phase="image"``: time order, ties in
    the order written), from the arrays being written; ``None`` where a time is NaN
    (the store's order of NULL times is its own: read back instead).

    ``columns`` holds ``(N,)`` arrays ``x``, ``y`` (px, float64) and ``valid`` (bool).
    """
    ti = np.asarray(trial_index, dtype=np.int64)
    ph = np.asarray(phase, dtype=object)
    rows = np.flatnonzero((ph == "image") & (ti >= 0))
    t = np.asarray(local_s, dtype=np.float64)[rows]
    if np.isnan(t).any():
        return None
    if not rows.size:
        return {}
    rows = rows[np.lexsort((rows, t, ti[rows]))]  # by trial, then time, then as written
    trials = ti[rows]
    starts = np.flatnonzero(np.r_[True, trials[1:] != trials[:-1]])
    ends = np.r_[starts[1:], rows.size]
    t_all = np.asarray(local_s, dtype=np.float64)
    return {
        int(trials[a]): {
            "local_s": t_all[rows[a:b]],
            **{k: v[rows[a:b]] for k, v in columns.items()},
        }  # fmt: skip
        for a, b in zip(starts, ends, strict=True)
    }


def _store_trial_quality(
    store: Any, sid: int, local_s: Any, trial_index: Any, phase: Any, by_field: dict[str, Any]
) -> None:
    """Measure and store each trial's data quality (loss, precision) as a recording
    stores it when it ends, so that ``gazelab sessions``, the viewer and the BIDS
    sidecar read it instead of measuring the session again: the same values
    :func:`~gazelab.annotation.sessions.compute_trial_quality` gives on the stored
    samples, measured on the arrays in memory (one sort, then per trial)."""
    from gazelab.annotation.sessions import compute_trial_quality

    n = len(local_s)
    columns = {
        "x": np.asarray(by_field["x"], dtype=np.float64).reshape(n),
        "y": np.asarray(by_field["y"], dtype=np.float64).reshape(n),
        "valid": np.asarray(by_field["valid"]).astype(bool).reshape(n),
    }
    samples = _image_samples_by_trial(np.asarray(local_s), np.asarray(trial_index), phase, columns)
    compute_trial_quality(store, sid, save=True, samples=samples)


def _check_geometry(path: Path, rec: ImportedRecording, options: ImportOptions, fmt: str) -> None:
    """Refuse, before anything is written, a screen pixel size or an image rectangle that
    cannot be (the checks the placement reader applies when the maps are built)."""
    from gazelab.gaze.geometry import pitch_problem, rect_problem
    from gazelab.settings import Settings

    d = Settings.from_toml(settings_toml(rec, options, fmt), source=rec.source).display
    sw, sh = (int(v) for v in d.resolution_px)
    mm = [d.width_mm / sw, d.height_mm / sh]
    problem = pitch_problem(mm)
    if problem is not None:
        raise ImportFormatError(
            f"{path}: the screen's pixel size {mm[0]:.6g} x {mm[1]:.6g} mm ({d.width_mm:g} x "
            f"{d.height_mm:g} mm over {sw}x{sh} px) {problem}; give --screen-mm and "
            "--resolution of the screen the recording was made on; nothing imported"
        )
    for k, tr in enumerate(rec.trials):
        r = tr.rect
        if r is None or not (math.isfinite(r.w) and math.isfinite(r.h)):
            continue  # no rectangle, or a position only: the image at its own size
        problem = rect_problem((r.x, r.y, r.w, r.h), (sw, sh))
        if problem is not None:
            raise ImportFormatError(
                f"{path}: trial {k} ({tr.image_id}): the image rectangle x={r.x:g} y={r.y:g} "
                f"w={r.w:g} h={r.h:g} px {problem}; correct it in the file or give the "
                "screen's --resolution; nothing imported"
            )


def import_file(
    store: Any,
    fmt: str,
    path: Path,
    options: ImportOptions,
    image_source: str = "",
    known: dict[str, int] | None = None,
) -> list[int]:
    """Import one file: parse it, refuse it if already imported, write it atomically.

    Returns the new session ids (one per recording and participant in the file).
    ``known`` (SHA-256 -> session, from :func:`imported_hashes`) saves reading the store's
    events again for each of many files; the new file's hash is added to it.
    """
    if fmt not in IMPORTERS:
        raise ImportFormatError(f"unknown import format {fmt!r}; choose one of {sorted(IMPORTERS)}")
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    sha = file_sha256(path)
    done = imported_hashes(store) if known is None else known
    if sha in done:
        raise ImportFormatError(
            f"{path} was imported already (session {done[sha]}, same SHA-256 {sha[:12]}…); "
            "nothing imported"
        )
    recordings = IMPORTERS[fmt].parse(path, options)
    for rec in recordings:
        _check_geometry(path, rec, options, fmt)
    with one_transaction(store):
        ids = [_write(store, rec, sha, fmt, options, image_source) for rec in recordings]
    if known is not None and ids:
        known[sha] = ids[0]
    return ids
