"""A store's sessions and their data quality: what ``gazelab sessions`` lists.

Per trial (image phase only) the data loss and the fixation precision of
:func:`gazelab.gaze.quality.trial_quality`: ``rate_hz × duration`` samples are
expected, where the image phase runs from the trial's ``image`` event to the next
phase event of the session (the next trial's ``blank1``, ``paused``, ``done`` or
``quit``). Accuracy belongs to the validation runs
(:meth:`SessionStore.validation_qualities`). Per session: the mean of the
validation runs' accuracy and precision, and the data loss over all trials'
expected samples.

A recording stores its per-trial quality when it ends; ``gazelab sessions`` and the
BIDS sidecar read those rows (:func:`session_trial_quality`) and measure only sessions
without them (an imported recording, one that stopped early). Angles use the pixel's
size in x and in y (:func:`quality_geometry`), never one mean pitch.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

import numpy as np

from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.quality import TrialQuality, display_with_pitch, trial_quality
from gazelab.settings import QualitySettings, Settings

PHASE_EVENTS = frozenset({"blank1", "cross", "blank2", "image", "paused", "done", "quit"})
"""Event kinds that start a protocol phase (annotation.protocol.Phase values)."""


@dataclass(frozen=True)
class SessionSummary:
    """One row of ``gazelab sessions``. Quality values are NaN where not measured."""

    session_id: int
    participant: str
    date_utc: str
    tracker: str
    trials_done: int
    trials_total: int
    validations: int
    accuracy_deg: float
    rms_s2s_deg: float
    std_deg: float
    loss_pct: float
    validations_failed: int = 0  # runs that failed their thresholds (overridden or not)
    gaps: int = 0  # recording gaps: the app stopped and the session was resumed, ...
    gap_s: float = 0.0  # their total length, seconds (not counted as data loss)


def image_windows(store: SessionStore, session_id: int) -> dict[int, tuple[float, float]]:
    """Trial index -> ``(start, end)`` local seconds of its image phase.

    A trial shown again after a stop is a new viewing: its last image phase counts (the
    cut-short one's samples are marked, :meth:`SessionStore.mark_interrupted_viewing`).
    A phase that a stop ended (the next record is the next run's ``app_open``, or there
    is none) ends NaN: at its last sample, so the dead time is a recording gap, not loss.
    """
    events = [e for e in store.events(session_id) if e["kind"] in PHASE_EVENTS | {"app_open"}]
    out: dict[int, tuple[float, float]] = {}
    for k, ev in enumerate(events):
        ti = ev["trial_index"]
        if ev["kind"] != "image" or ti is None:
            continue
        after = events[k + 1] if k + 1 < len(events) else None
        end = math.nan if after is None or after["kind"] == "app_open" else after["local_s"]
        out[int(ti)] = (float(ev["local_s"]), float(end))
    return out


def quality_geometry(store: SessionStore, session_id: int, settings: Settings) -> DisplayGeometry:
    """The display that a session's angles are measured on: the settings' display, its
    pixels the size in x and in y that the session recorded (an imported recording's
    ``mm_per_px``, :class:`~gazelab.analysis.placement.SessionPlacements`), else the
    settings' own ``width_mm / width_px`` and ``height_mm / height_px``. Never one mean
    pitch: on 0.25 × 0.35 mm pixels a gaze 1° below a target is 1° off, not 0.86°."""
    from gazelab.analysis.placement import SessionPlacements

    mm = SessionPlacements.read(store, session_id, settings).mm_per_px
    return display_with_pitch(settings.display, mm)


def compute_trial_quality(
    store: SessionStore,
    session_id: int,
    settings: Settings | None = None,
    *,
    save: bool = True,
    samples: Mapping[int, dict[str, np.ndarray]] | None = None,
) -> list[TrialQuality]:
    """Per-trial data quality of a session from its stored samples (one read of the
    session, or ``samples`` when the caller has read them: its image-phase samples by
    trial, :meth:`SessionStore.samples_by_trial`); stored with the session when ``save``.
    ``settings`` default to the session's own (nominal rate, display geometry, I-VT
    threshold)."""
    rec = store.session(session_id)
    s = settings or Settings.from_toml(rec.settings_toml, source=f"session {session_id}")
    rate = float(s.tracker.rate_hz)
    geometry = quality_geometry(store, session_id, s)
    windows = image_windows(store, session_id)
    by_trial = samples if samples is not None else store.samples_by_trial(session_id, phase="image")
    out: list[TrialQuality] = []
    for ti in sorted(set(windows) | set(by_trial)):
        table = by_trial.get(ti)
        t = table["local_s"] if table is not None else np.zeros(0)
        start, end = windows.get(ti, (math.nan, math.nan))
        if not math.isfinite(start):
            start = float(t[0]) if t.size else math.nan
        if not math.isfinite(end):
            end = float(t[-1]) + 1.0 / rate if t.size else start
        if not math.isfinite(start):
            continue
        empty = np.zeros(0)
        out.append(
            trial_quality(
                ti,
                table["x"] if table is not None else empty,
                table["y"] if table is not None else empty,
                table["valid"] if table is not None else np.zeros(0, bool),
                t,
                geometry,
                rate_hz=rate,
                duration_s=max(0.0, end - start),
                velocity_deg_s=s.fixations.velocity_deg_s,
            )
        )
    if save and out:
        store.set_trial_quality(session_id, out)
    return out


def session_loss_pct(trials: Sequence[TrialQuality]) -> float:
    """Missing share of all the trials' expected samples, percent (NaN without trials)."""
    expected = sum(q.n_expected for q in trials)
    if expected == 0:
        return math.nan
    missing = sum(max(0, q.n_expected - q.n_samples) for q in trials)
    return 100.0 * missing / expected


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def session_trial_quality(
    store: SessionStore,
    session_id: int,
    settings: Settings | None = None,
    *,
    samples: Mapping[int, dict[str, np.ndarray]] | None = None,
) -> list[TrialQuality]:
    """A session's per-trial data quality as ``gazelab sessions``, the BIDS sidecar and
    ``compare``'s quality limits use it: the rows stored with the session (written when
    its recording ended) when they cover every trial shown (each ``image`` phase), read
    without touching the samples; otherwise measured from the samples
    (:func:`compute_trial_quality` on ``samples`` when the caller has read them, else one
    read of the session; not saved), a stored row still winning over the measured one for
    its trial (a recording that stopped before storing its last trials). A trial shown
    without any sample is measured too (100 % loss), never taken as fine."""
    stored = {q.trial_index: q for q in store.trial_quality(session_id)}
    if stored and set(image_windows(store, session_id)) <= set(stored):
        return [stored[k] for k in sorted(stored)]
    measured = {q.trial_index: q for q in compute_trial_quality(
        store, session_id, settings, save=False, samples=samples)}  # fmt: skip
    measured.update(stored)
    return [measured[k] for k in sorted(measured)]


def summarize_session(
    store: SessionStore, session_id: int, *, save: bool = False
) -> SessionSummary:
    """Participant, date, tracker, progress and data quality of one session.

    The per-trial quality is the stored one where the session has it
    (:func:`session_trial_quality`); ``save`` measures it from the samples again and
    stores it."""
    rec = store.session(session_id)
    s = Settings.from_toml(rec.settings_toml, source=f"session {session_id} in {store.path}")
    trials = (compute_trial_quality(store, session_id, s, save=True) if save
              else session_trial_quality(store, session_id, s))  # fmt: skip
    validations = store.validation_qualities(session_id)  # one read for both uses below
    runs = [r["quality"] for r in validations]
    gaps = store.gaps(session_id)
    return SessionSummary(
        session_id=rec.id,
        participant=rec.participant,
        date_utc=rec.created_utc,
        tracker=s.tracker.kind,
        trials_done=len(store.final_labels(session_id)),
        trials_total=len(rec.stimulus_order),
        validations=len(runs),
        accuracy_deg=_mean([v.mean_accuracy_deg for v in runs]),
        rms_s2s_deg=_mean([v.rms_s2s_deg for v in runs]),
        std_deg=_mean([v.std_deg for v in runs]),
        loss_pct=session_loss_pct(trials),
        validations_failed=sum(not r["passed"] for r in validations),
        gaps=len(gaps),
        gap_s=sum((g["end_local_s"] or g["start_local_s"]) - g["start_local_s"] for g in gaps),
    )


def list_sessions(store: SessionStore) -> list[SessionSummary]:
    """Every session of the store, by id."""
    return [summarize_session(store, r.id) for r in store.sessions()]


COLUMNS = tuple(f.name for f in fields(SessionSummary))


def _fmt(value: object, digits: int = 2) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def sessions_csv(rows: Sequence[SessionSummary]) -> str:
    """CSV text, one row per session, NaN as empty cells, full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            "" if isinstance(v, float) and not math.isfinite(v) else v for v in astuple(row)
        )
    return buf.getvalue()


def sessions_table(rows: Sequence[SessionSummary]) -> str:
    """A plain-text table for the terminal (accuracy and precision in °, loss in %)."""
    head = ("session", "participant", "date (UTC)", "tracker", "progress", "valid.",
            "accuracy°", "RMS-S2S°", "STD°", "loss %", "gaps")  # fmt: skip
    body = [
        (
            str(r.session_id),
            r.participant,
            r.date_utc[:16].replace("T", " "),
            r.tracker,
            f"{r.trials_done}/{r.trials_total}",
            str(r.validations)
            + (f" ({r.validations_failed} failed)" if r.validations_failed else ""),
            _fmt(r.accuracy_deg),
            _fmt(r.rms_s2s_deg, 3),
            _fmt(r.std_deg, 3),
            _fmt(r.loss_pct, 1),
            f"{r.gaps} ({r.gap_s:.0f} s)" if r.gaps else "0",
        )
        for r in rows
    ]
    widths = [max([len(h), *(len(b[i]) for b in body)]) for i, h in enumerate(head)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in (head, *body)]  # fmt: skip
    if not body:
        lines.append("(no sessions)")
    return "\n".join(lines) + "\n"


def quality_exclusions(
    store: SessionStore,
    session_id: int,
    settings: Settings,
    quality: QualitySettings,
    *,
    samples: Mapping[int, dict[str, np.ndarray]] | None = None,
) -> dict[int, str]:
    """Trials of a session to leave out, trial index -> why.

    A session whose validation accuracy (mean over its validation runs; the tracker's
    own validation figures for stores without them) exceeds ``max_accuracy_deg``
    loses every trial, as does one with no validation at all while that limit is set;
    a trial whose data loss exceeds ``max_trial_loss_pct`` is left out on its own. The
    data loss is :func:`session_trial_quality`'s: the one stored with the session
    (:meth:`SessionStore.trial_quality`, written when the recording ends) when it covers
    every trial shown; trials without a stored value (a recording that stopped before,
    a trial with no sample at all) are measured from ``samples`` (the caller's read of
    the session's image-phase samples by trial) or, without them, from one read of it.
    """
    trials = [t["trial_index"] for t in store.trials(session_id)]
    if quality.max_accuracy_deg > 0:
        runs = [r["quality"].mean_accuracy_deg for r in store.validation_qualities(session_id)]
        if not runs:
            runs = [c["deg"] for c in store.calibrations(session_id)
                    if c["kind"] == "validation" and c["deg"] is not None]  # fmt: skip
        finite = [float(a) for a in runs if math.isfinite(a)]
        if not finite:
            return dict.fromkeys(trials, "no validation accuracy recorded for the session")
        acc = float(np.mean(finite))
        if acc > quality.max_accuracy_deg:
            why = f"session validation accuracy {acc:.2f}° > {quality.max_accuracy_deg:.2f}°"
            return dict.fromkeys(trials, why)
    out: dict[int, str] = {}
    if quality.max_trial_loss_pct < 100.0:
        for q in session_trial_quality(store, session_id, settings, samples=samples):
            if q.loss_pct > quality.max_trial_loss_pct:
                out[q.trial_index] = (
                    f"data loss {q.loss_pct:.1f}% > {quality.max_trial_loss_pct:.1f}%"
                )
    return out


EXCLUSION_COLUMNS = ("session", "annotator", "trial_index", "image_id", "reason")


def exclusions_csv(excluded: Sequence[dict[str, Any]]) -> str:
    """Left-out trials (rows with :data:`EXCLUSION_COLUMNS`) as CSV; header only when none."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, EXCLUSION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(excluded)
    return buf.getvalue()


def exclusions_markdown(excluded: Sequence[dict[str, Any]], kept: Sequence[str]) -> str:
    """A report section: the trials and participants left out by the quality limits, and
    why; ``kept`` are the annotators that still have trials."""
    if not excluded:
        return "## Data quality exclusions\n\nNo trial was left out.\n"
    by: dict[str, list[dict[str, Any]]] = {}
    for e in excluded:
        by.setdefault(str(e["annotator"]), []).append(e)
    whole = [a for a in by if a not in kept]
    lines = ["## Data quality exclusions", "",
             f"{len(excluded)} trials left out; participants left out entirely: "
             f"{', '.join(whole) or 'none'}.", "",
             "| annotator | trials left out | reasons |", "|---|---|---|"]  # fmt: skip
    for a, rows in by.items():
        reasons = "; ".join(sorted({str(e["reason"]) for e in rows}))
        lines.append(f"| {a} | {len(rows)} | {reasons} |")
    return "\n".join(lines) + "\n"
