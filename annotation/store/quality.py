"""Data quality as stored: validation runs (per target and summary) and per-trial quality.

The measures themselves are defined and computed in :mod:`gazelab.gaze.quality`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from gazelab.annotation.store.connection import StoreConnection, StoreError
from gazelab.gaze.quality import PointQuality, TrialQuality, ValidationQuality

VALIDATION_KINDS: tuple[str, ...] = ("calibration-validation", "periodic", "final")
"""When a validation ran: right after calibration, every N trials, or at the end."""


class QualityMixin(StoreConnection):
    """Validation runs and per-trial data quality of a session."""

    def add_validation_quality(
        self,
        session_id: int,
        quality: ValidationQuality,
        *,
        kind: str,
        local_s: float,
        problems: Sequence[str] = (),
        overridden: bool = False,
    ) -> int:
        """Record one validation run (per target and summary); returns its id.

        ``kind`` is one of :data:`VALIDATION_KINDS`; ``problems`` the unmet thresholds
        (empty = passed); ``overridden`` that the experimenter started anyway.
        """
        if kind not in VALIDATION_KINDS:
            raise StoreError(f"validation kind {kind!r} must be one of {VALIDATION_KINDS}")
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO validation_quality(session_id, local_s, kind, mean_accuracy_deg,"
                " max_accuracy_deg, rms_s2s_deg, std_deg, loss_pct, passed, overridden, problems)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, float(local_s), kind, _num(quality.mean_accuracy_deg),
                 _num(quality.max_accuracy_deg), _num(quality.rms_s2s_deg),
                 _num(quality.std_deg), _num(quality.loss_pct), int(not problems),
                 int(overridden), json.dumps(list(problems))),
            )  # fmt: skip
            vid = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO validation_points(validation_id, point_index, target_x, target_y,"
                " offset_x, offset_y, accuracy_deg, rms_s2s_deg, std_deg, n_samples, n_expected,"
                " loss_pct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(vid, i, p.target_px[0], p.target_px[1], _num(p.offset_px[0]),
                  _num(p.offset_px[1]), _num(p.accuracy_deg), _num(p.rms_s2s_deg),
                  _num(p.std_deg), p.n_samples, p.n_expected, _num(p.loss_pct))
                 for i, p in enumerate(quality.points)],
            )  # fmt: skip
        return vid

    def validation_qualities(self, session_id: int) -> list[dict[str, Any]]:
        """The session's validation runs in order: ``local_s, kind, passed, overridden,
        problems`` and ``quality`` (a :class:`ValidationQuality`); NULLs read back as NaN."""
        rows = self._query(
            "SELECT id, local_s, kind, mean_accuracy_deg, max_accuracy_deg, rms_s2s_deg,"
            " std_deg, loss_pct, passed, overridden, problems FROM validation_quality"
            " WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        out: list[dict[str, Any]] = []
        for r in rows:
            pts = self._query(
                "SELECT target_x, target_y, offset_x, offset_y, accuracy_deg, rms_s2s_deg,"
                " std_deg, n_samples, loss_pct, n_expected FROM validation_points"
                " WHERE validation_id = ? ORDER BY point_index",
                (r[0],),
            )
            points = tuple(
                PointQuality((p[0], p[1]), (_nan(p[2]), _nan(p[3])), _nan(p[4]), _nan(p[5]),
                             _nan(p[6]), int(p[7]), _nan(p[8]), int(p[9]))
                for p in pts
            )  # fmt: skip
            quality = ValidationQuality(points, *(_nan(v) for v in r[3:8]))
            out.append(dict(
                local_s=r[1], kind=r[2], passed=bool(r[8]), overridden=bool(r[9]),
                problems=self._json(r[10], f"a validation of session {session_id}"),
                quality=quality,
            ))  # fmt: skip
        return out

    def set_trial_quality(self, session_id: int, qualities: Iterable[TrialQuality]) -> None:
        """Store (replacing earlier values) the per-trial data quality of a session."""
        rows = [(session_id, q.trial_index, q.duration_s, q.n_samples, q.n_expected,
                 _num(q.loss_pct), _num(q.rms_s2s_deg), _num(q.std_deg)) for q in qualities]  # fmt: skip
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO trial_quality(session_id, trial_index, duration_s,"
                " n_samples, n_expected, loss_pct, rms_s2s_deg, std_deg)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def trial_quality(self, session_id: int) -> list[TrialQuality]:
        """The stored per-trial data quality, by trial index (empty until computed)."""
        rows = self._query(
            "SELECT trial_index, duration_s, n_samples, n_expected, loss_pct, rms_s2s_deg,"
            " std_deg FROM trial_quality WHERE session_id = ? ORDER BY trial_index",
            (session_id,),
        )
        return [TrialQuality(int(r[0]), float(r[1]), int(r[2]), int(r[3]), _nan(r[4]),
                             _nan(r[5]), _nan(r[6])) for r in rows]  # fmt: skip


def _num(value: float) -> float | None:
    """A float for SQLite: NaN (no data) is stored as NULL."""
    v = float(value)
    return v if np.isfinite(v) else None


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
