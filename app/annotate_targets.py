"""Calibration and validation screens of the annotation window (a mixin of the window).

Calibration runs through the tracker in a worker thread (its targets reach the
screen through Qt signals); validation shows the same targets one by one on
timers, then the result screen (per-target offsets, accuracy and precision from
:meth:`AnnotationSession.finish_validation
<gazelab.annotation.controller.AnnotationSession.finish_validation>`), where
Space accepts once the thresholds are met, O overrides them (recorded),
R recalibrates and F measures the failing targets again.

After a break, Space runs a drift check first (:meth:`TargetScreens.after_break`): one
target at the centre for ``validation_dwell_s``; gaze within ``[quality]
drift_check_max_deg`` goes on with the trials, gaze further off (or none) recalibrates
(:mod:`gazelab.annotation.operator`). Each check is a ``drift_check`` event.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from gazelab.annotation.operator import DriftCheck, drift_check, drift_check_needed
from gazelab.annotation.protocol import STORE_FAULTS

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget as _Widget

    from gazelab.annotation.controller import AnnotationSession
else:
    _Widget = object  # a mixin of the window, which is the QWidget


class CalibrationSignals(QObject):
    """The calibration worker thread's targets and result, into the GUI thread."""

    calibration_point = Signal(int, float, float)
    calibration_done = Signal(object)


class TargetScreens(_Widget):
    """Calibration and validation for :class:`~gazelab.app.annotate.AnnotationWindow`."""

    ctl: AnnotationSession
    mode: str
    warning: str
    target: tuple[float, float] | None
    autopilot: Any
    calibration_dwell_s: float
    validation_dwell_s: float
    _bridge: CalibrationSignals
    _n_targets: int

    if TYPE_CHECKING:

        def _sync_store(self) -> None: ...
        def _start_trials(self) -> None: ...

    def _init_targets(self) -> None:
        self._n_targets = 0
        self.drift: DriftCheck | None = None  # the last drift check
        self._drift_start: float | None = None
        self._bridge = CalibrationSignals()
        self._bridge.calibration_point.connect(self._on_calibration_point)
        self._bridge.calibration_done.connect(self._on_calibration_done)

    def start_calibration(self) -> None:
        self.mode = "calibration"
        self.target = None
        self.update()

        def on_point(i: int, xy: tuple[float, float]) -> None:
            self._bridge.calibration_point.emit(i, float(xy[0]), float(xy[1]))

        def work() -> None:
            try:
                res: Any = self.ctl.measure_calibration(
                    dwell_s=self.calibration_dwell_s, on_point=on_point
                )
            except Exception as exc:  # shown on screen; the session can retry
                res = exc
            self._bridge.calibration_done.emit(res)

        threading.Thread(target=work, name="calibration", daemon=True).start()

    def _on_calibration_point(self, i: int, x: float, y: float) -> None:
        self.target = (x, y)
        self.update()

    def _on_calibration_done(self, result: Any) -> None:
        self.target = None
        self.mode = "calibration_result"
        if isinstance(result, Exception):
            self.warning = f"calibration failed: {result} — press R to try again"
            self.ctl.calibration = None
        else:
            self.ctl.calibration_done(result)  # stored in the GUI thread, in order
        self.update()
        if self.autopilot is not None and self.ctl.calibration is not None:
            QTimer.singleShot(50, self.start_validation)

    def start_validation(self, redo: list[int] | None = None) -> None:
        """Show the targets again without calibrating (``redo``: only these of the last)."""
        self.mode = "validation"
        self._n_targets = len(self.ctl.start_validation(redo=redo))
        self._validation_step(0)

    def _validation_step(self, i: int) -> None:
        if i >= self._n_targets:
            self.target = None
            outcome = self.ctl.finish_validation(settle_s=min(0.5, self.validation_dwell_s / 2))
            self._sync_store()
            self.mode = "validation_result"
            self.update()
            if self.autopilot is not None:  # a simulated experimenter: accept, or override
                if not outcome.passed:
                    self.ctl.override()
                QTimer.singleShot(50, self._start_trials)
            return
        self.target = self.ctl.validation_target(i)
        self.update()
        QTimer.singleShot(int(self.validation_dwell_s * 1000), lambda: self._validation_step(i + 1))

    def _validation_key(self, key: int) -> None:
        """Space accepts (once the thresholds are met), O overrides them (recorded),
        R recalibrates, F measures the failing targets again."""
        if key == Qt.Key.Key_Space and self.ctl.may_start():
            self._start_trials()
        elif key == Qt.Key.Key_O and not self.ctl.may_start():
            self.ctl.override()
            self._start_trials()
        elif key == Qt.Key.Key_R:
            self.start_calibration()
        elif key == Qt.Key.Key_F and self.ctl.failing_targets():
            self.start_validation(redo=self.ctl.failing_targets())

    # -- the drift check after a break ------------------------------------------------------
    def after_break(self) -> None:
        """Space on the break screen: a drift check (when on and there are eyes to check),
        then the trials; a failed one recalibrates first."""
        s = self.ctl.settings
        if not drift_check_needed(s.tracker.kind, s.quality.drift_check_max_deg):
            self._start_trials()
            return
        w, h = self.ctl.screen_px
        self.mode = "drift_check"
        self.target = (w / 2, h / 2)
        observer = self.ctl.observer  # a simulated participant looks at it
        if observer is not None:
            observer.look_at(self.target)
        self._drift_start = self.ctl.clock()
        self.update()
        QTimer.singleShot(int(self.validation_dwell_s * 1000), self._finish_drift_check)

    def _finish_drift_check(self) -> None:
        if self.mode != "drift_check" or self._drift_start is None or self.target is None:
            return  # ended (Esc) or interrupted meanwhile
        ctl = self.ctl
        window = (self._drift_start, ctl.clock())
        target, self.target, self._drift_start = self.target, None, None
        try:
            ctl.capture.flush()
            samples = ctl.store.samples(ctl.record.id, since_local_s=window[0])
        except STORE_FAULTS as exc:  # the session pauses; the check runs again after it
            ctl.on_store_fault(exc)
            self.mode = "break"
            self._sync_store()
            self.update()
            return
        settle = min(0.5, self.validation_dwell_s / 2)
        self.drift = drift_check(samples, target, window, ctl.settings.display,
                                 ctl.settings.quality.drift_check_max_deg, settle_s=settle)  # fmt: skip
        ctl.event("drift_check", trial_index=ctl.protocol.trial_index, **self.drift.payload())
        if self.drift.passed:
            self._start_trials()
        else:  # the operator's view says why; the participant just sees the targets
            self.start_calibration()
