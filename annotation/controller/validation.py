"""Calibration and validation: the tracker's calibration, then a validation run's data
quality per target, checked against the thresholds, stored, redone or overridden.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gazelab.annotation.controller.gaze import GazeMixin
from gazelab.annotation.protocol import STORE_FAULTS, Phase
from gazelab.gaze.quality import (
    PointQuality,
    QualityThresholds,
    ValidationQuality,
    validation_quality,
    validation_run_quality,
)
from gazelab.gaze.trackers.base import CalibrationPoint, CalibrationResult
from gazelab.gaze.trackers.protocol import calibration_points
from gazelab.gaze.trackers.registry import is_eye_tracker


@dataclass(frozen=True)
class ValidationOutcome:
    """One validation run: its data quality per target and overall, and the verdict.

    ``problems`` are the unmet :class:`~gazelab.gaze.quality.QualityThresholds` (empty:
    passed); ``meaningful`` is false for a tracker that is not an eye tracker (the mouse),
    whose "accuracy" says nothing about a participant's eyes.
    """

    kind: str  # calibration-validation | periodic | final (store.VALIDATION_KINDS)
    targets: tuple[tuple[float, float], ...]
    quality: ValidationQuality
    result: CalibrationResult
    problems: tuple[str, ...]
    meaningful: bool = True

    @property
    def errors_deg(self) -> tuple[float, ...]:
        """Per target: angular distance target → mean gaze, degrees (NaN without gaze)."""
        return tuple(p.accuracy_deg for p in self.quality.points)

    @property
    def passed(self) -> bool:
        return not self.problems


class ValidationMixin(GazeMixin):
    """Calibrate, validate (stepped by a window's timers or blocking) and decide."""

    _val_targets: list[tuple[float, float]]
    _val_windows: list[tuple[float, float]]
    _val_start: float | None
    _val_redo: list[int] | None
    _val_kind: str
    _overridden: bool

    def calibration_targets(self) -> list[tuple[float, float]]:
        return calibration_points(self.settings.protocol.calibration_points, self.screen_px)

    def measure_calibration(
        self,
        *,
        dwell_s: float = 0.75,
        on_point: Callable[[int, tuple[float, float]], None] | None = None,
    ) -> CalibrationResult:
        """Calibrate through the tracker and return the result without storing it (blocking,
        safe off the session's thread: a window runs it in a worker and stores the result
        with :meth:`calibration_done` in its own thread)."""
        observer = self.observer

        def point(i: int, xy: tuple[float, float]) -> None:
            if observer is not None:
                observer.look_at(xy)
            if on_point is not None:
                on_point(i, xy)

        targets = self.calibration_targets()
        return self.tracker.tracker.calibrate(targets, dwell_s=dwell_s, on_point=point)

    def calibrate(
        self,
        *,
        dwell_s: float = 0.75,
        on_point: Callable[[int, tuple[float, float]], None] | None = None,
    ) -> CalibrationResult:
        """Calibrate through the tracker and store the result (blocking)."""
        result = self.measure_calibration(dwell_s=dwell_s, on_point=on_point)
        self.calibration_done(result)
        return result

    def calibration_done(self, result: CalibrationResult) -> None:
        """Keep and store a calibration result (called in the thread that owns the session)."""
        self.calibration = result
        now = self.clock()
        self.commit(lambda: self.store.add_calibration(
            self.record.id, result, kind="calibration", local_s=now
        ))  # fmt: skip
        self._notify("calibration", result=result)

    # -- validation -------------------------------------------------------------------------
    def start_validation(
        self, *, kind: str | None = None, redo: list[int] | None = None
    ) -> list[tuple[float, float]]:
        """Begin a validation; returns its targets (step them with :meth:`validation_target`).

        ``kind``: ``calibration-validation`` (default after a calibration), ``periodic``
        (default once trials ran) or ``final``. ``redo``: measure only these targets of the
        last validation again and replace their results (a look away, a blink)."""
        all_targets = self.calibration_targets()
        if redo and self.validation is not None:
            self._val_targets = [all_targets[i] for i in redo]
            self._val_redo = list(redo)
            self._val_kind = self.validation.kind
        else:
            self._val_targets = all_targets
            self._val_redo = None
            started = self.protocol.phase is not Phase.IDLE
            self._val_kind = kind or ("periodic" if started else "calibration-validation")
        self._overridden = False
        self._val_windows = []
        self._val_start = None
        self._notify("validation_start", targets=self._val_targets)
        return list(self._val_targets)

    def validation_target(self, i: int) -> tuple[float, float]:
        """Target ``i`` goes on screen now (the previous one's window ends)."""
        now = self.clock()
        if self._val_start is not None:
            self._val_windows.append((self._val_start, now))
        xy = self._val_targets[i]
        if self.observer is not None:
            self.observer.look_at(xy)
        self._val_start = now
        self._notify("validation_target", index=i, xy=xy)
        return xy

    def finish_validation(self, settle_s: float = 0.5) -> ValidationOutcome:
        """The last target's window ends: data quality per target (accuracy, precision, loss;
        gaze/quality.py), checked against the thresholds and stored."""
        if self._val_start is not None:
            self._val_windows.append((self._val_start, self.clock()))
            self._val_start = None
        targets = self._val_targets
        redo = self._val_redo
        self._val_redo = None
        try:
            self.capture.flush()
            samples = self.store.samples(self.record.id, since_local_s=self._val_windows[0][0])
            quality = validation_run_quality(
                samples, targets, self._val_windows, self.settings.display,
                rate_hz=float(self.settings.tracker.rate_hz), settle_s=settle_s,
            )  # fmt: skip
        except STORE_FAULTS as exc:  # not measured this time (the samples wait in memory);
            # the session pauses, and the targets count as unmeasured: validate again
            nan = (math.nan, math.nan)
            quality = validation_quality([
                PointQuality(t, nan, math.nan, math.nan, math.nan, 0, math.nan, 0)
                for t in targets
            ])  # fmt: skip
            self.on_store_fault(exc)
        if redo is not None and self.validation is not None:  # some targets measured again
            points = list(self.validation.quality.points)
            for k, i in enumerate(redo):
                points[i] = quality.points[k]
            quality = validation_quality(points)
            targets = list(self.validation.targets)
        kind = self._val_kind
        meaningful = is_eye_tracker(self.settings.tracker.kind)  # no limits on the mouse
        problems = tuple(self.thresholds.problems(quality)) if meaningful else ()
        errors = [p.accuracy_deg for p in quality.points]
        pts = tuple(CalibrationPoint(x, y, e) for (x, y), e in zip(targets, errors, strict=True))
        mean = quality.mean_accuracy_deg
        res = CalibrationResult(not problems, mean, math.nan, math.nan, pts)
        now = self.clock()
        self.commit(lambda: self.store.add_calibration(
            self.record.id, res, kind="validation", local_s=now
        ))  # fmt: skip
        self.commit(lambda: self.store.add_validation_quality(
            self.record.id, quality, kind=kind, local_s=now, problems=problems
        ))  # fmt: skip
        self.validation = ValidationOutcome(
            kind, tuple(targets), quality, res, problems, meaningful
        )
        self._notify("validation", outcome=self.validation)
        return self.validation

    @property
    def thresholds(self) -> QualityThresholds:
        q = self.settings.quality
        return QualityThresholds(
            q.validation_mean_accuracy_deg, q.validation_max_point_accuracy_deg
        )

    def failing_targets(self) -> list[int]:
        """Indices of the last validation's targets above the per-target limit or without
        gaze (the ones :meth:`start_validation` ``redo=`` measures again)."""
        v = self.validation
        if v is None:
            return []
        limit = self.thresholds.max_point_accuracy_deg
        return [
            i
            for i, p in enumerate(v.quality.points)
            if not (math.isfinite(p.accuracy_deg) and p.accuracy_deg <= limit)
        ]

    def may_start(self) -> bool:
        """Whether the trials may start: the last validation passed (or none is needed)."""
        return self.validation is None or self.validation.passed or self._overridden

    def override(self) -> None:
        """Start despite a failed validation: recorded as an event with the problems."""
        v = self.validation
        self._overridden = True
        problems = list(v.problems) if v is not None else []
        self.event("validation_override", trial_index=self.protocol.trial_index,
                   validation=v.kind if v else None, problems=problems)  # fmt: skip
        self._notify("override", problems=problems)

    def validate(
        self,
        *,
        dwell_s: float = 1.2,
        settle_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ValidationOutcome:
        """A whole validation, blocking, polling gaze meanwhile (headless runs)."""
        targets = self.start_validation()
        for i in range(len(targets)):
            self.validation_target(i)
            end = self.clock() + dwell_s
            while self.clock() < end:
                self.poll()
                sleep(0.005)
        return self.finish_validation(settle_s=settle_s)
