"""The live experimenter (operator) view: a second window that follows a session and acts on it.

:class:`ExperimenterView` shows, for the experimenter only (a second screen, or
a window beside the participant's for testing), the participant's whole screen
scaled down — the stimulus on screen, calibration, validation and drift-check targets
as they appear, the live gaze point and the last second of samples — and beside it the
session's state: trial n/N, what the participant's screen shows, tracker state,
sample rate, data loss so far, the last label and what the recogniser heard.

After a calibration or validation it plots the result as Titta and Tobii Pro Lab do:
each target with the gaze samples of its window (dots), the offset target → mean gaze
(a line to the mean) and its accuracy in degrees; the summary and the verdict stand in
the state column. The keys that act on that screen (:func:`gazelab.annotation.operator.
operator_keys`: Space, R, F, O, P, C) are buttons here, and pressed in this window they
go to the participant's window as if pressed there (recorded the same way).

It observes an :class:`~gazelab.annotation.controller.AnnotationSession` (its
listeners and its state, repainted at ``refresh_hz``) and the participant's window
(``window``: its screen and target), and never draws on the participant's window.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QImage, QKeyEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QApplication, QGridLayout, QPushButton, QVBoxLayout, QWidget

from gazelab.annotation.controller import AnnotationSession
from gazelab.annotation.operator import OPERATOR_KEYS, gaze_per_target, operator_keys
from gazelab.annotation.protocol import Phase
from gazelab.app.annotate_screens import BACKGROUNDS, to_qimage

GAZE = QColor(255, 60, 200)  # the live gaze point (a colour no stimulus screen uses)
TRAIL = QColor(60, 200, 255)
PANEL = QColor(30, 30, 30)
TEXT = QColor(240, 240, 240)
TARGET = QColor(255, 255, 255)
SAMPLE = QColor(255, 230, 60)  # a target's gaze samples in the result plot
MEAN = QColor(80, 220, 255)  # the offset line and mean gaze
GOOD = QColor(130, 230, 140)
BAD = QColor(255, 170, 80)

KEYS = {"space": (Qt.Key.Key_Space, " "), "r": (Qt.Key.Key_R, "r"), "f": (Qt.Key.Key_F, "f"),
        "o": (Qt.Key.Key_O, "o"), "p": (Qt.Key.Key_P, "p"), "c": (Qt.Key.Key_C, "c")}  # fmt: skip
RUNS = ("calibration", "validation", "drift_check")
"""Screens with targets whose gaze the view keeps for the result plot."""

SCREEN_WORDS = {
    "start": "start screen (instructions)",
    "practice_done": "practice over, waiting for space",
    "break": "break, waiting for space",
    "calibration": "calibration",
    "calibration_result": "calibration result",
    "validation": "validation",
    "validation_result": "validation result",
    "drift_check": "drift check",
    "done": "session complete",
    "lost": "session taken over",
    "closed": "closed",
}


class ExperimenterView(QWidget):
    """The session as the experimenter follows it; ``screen_to_view`` maps screen px here."""

    INFO_WIDTH = 360  # px of the state column on the right

    def __init__(
        self, session: AnnotationSession, *, window: Any = None, refresh_hz: float = 30.0
    ) -> None:
        super().__init__()
        self.ctl = session
        self.window_ = window  # the participant's AnnotationWindow (None: the session only)
        self.setWindowTitle(f"gazelab — experimenter view — {session.config.participant}")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image: tuple[str, QImage] | None = None
        self.last_event = ""
        # the result plot: per run, target -> its (start, end) window, and the samples seen
        self.windows: dict[str, dict[tuple[float, float], list[float]]] = {m: {} for m in RUNS}
        self._samples: dict[str, list[tuple[float, float, float, bool]]] = {m: [] for m in RUNS}
        self._open: tuple[str, tuple[float, float]] | None = None
        self._mode = ""
        self._last_s = -math.inf
        session.subscribe(self._heard)
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for i, key in enumerate(OPERATOR_KEYS):
            b = QPushButton(f"{'Space' if key == 'space' else key.upper()}: {OPERATOR_KEYS[key]}")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys typed here stay the view's
            b.clicked.connect(lambda _=False, k=key: self.press(k))
            b.setVisible(False)
            grid.addWidget(b, i // 2, i % 2)
            self.buttons[key] = b
        box = QWidget()
        box.setFixedWidth(self.INFO_WIDTH - 8)
        box.setLayout(grid)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(box, 0, Qt.AlignmentFlag.AlignRight)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(max(1, int(1000 / refresh_hz)))
        self.resize(1100, 560)

    # -- what the session says --------------------------------------------------------------
    def _heard(self, kind: str, details: dict[str, Any]) -> None:
        if kind == "event":
            self.last_event = str(details.get("event", ""))
        elif kind == "finished":
            self._timer.stop()
        elif kind == "validation_start":
            targets = details.get("targets") or []
            if len(targets) >= len(self.ctl.calibration_targets()):  # a whole run, not a redo
                self.windows["validation"] = {}
                self._samples["validation"] = []
            self._close()
        elif kind == "validation_target":
            self._begin("validation", details["xy"])
        elif kind == "validation":
            self._close()

    def _begin(self, run: str, xy: tuple[float, float]) -> None:
        self._close()
        key = (float(xy[0]), float(xy[1]))
        self.windows[run][key] = [self.ctl.clock(), math.inf]
        self._open = (run, key)

    def _close(self, at: float | None = None) -> None:
        """End the open target's window now (or at ``at``, session seconds)."""
        if self._open is not None:
            run, key = self._open
            self.windows[run][key][1] = self.ctl.clock() if at is None else at
            self._open = None

    def mode(self) -> str:
        """What the participant's screen shows (the window's mode; trials without one)."""
        return str(getattr(self.window_, "mode", "trials"))

    def _tick(self) -> None:
        """Follow the participant's screen: calibration and drift-check targets (polled,
        they come from the window), and the gaze samples of any target run."""
        mode, win = self.mode(), self.window_
        if mode != self._mode:
            if mode in ("calibration", "drift_check"):  # a new run: the old plot goes
                self.windows[mode] = {}
                self._samples[mode] = []
            if self._open is not None and self._open[0] != "validation":
                self._close(at=self._last_s)
            self._mode = mode
        target = getattr(win, "target", None)
        # a target polled from the window changed at most a tick ago: its window ends with
        # the last sample seen while it was still shown, not now (the next one's gaze)
        if mode in ("calibration", "drift_check") and target is not None:
            key = (float(target[0]), float(target[1]))
            if self._open != (mode, key):
                self._close(at=self._last_s)
                self._begin(mode, key)
        elif mode in ("calibration", "drift_check") and self._open is not None:
            self._close(at=self._last_s)
        run = self._open[0] if self._open is not None else None
        fresh = [g for g in self.ctl.recent_gaze(2.0) if g.local_s > self._last_s]
        if fresh:
            self._last_s = fresh[-1].local_s
            if run is not None:
                self._samples[run] += [(g.local_s, g.x, g.y, bool(g.valid)) for g in fresh]
        self._sync_buttons()
        self.update()

    def target_gaze(self, run: str) -> dict[tuple[float, float], np.ndarray]:
        """Per target of the last ``run``: its valid gaze samples after the settle time,
        ``(n, 2)`` screen px (:func:`~gazelab.annotation.operator.gaze_per_target`)."""
        rows = self._samples[run]
        if not rows:
            return {k: np.zeros((0, 2)) for k in self.windows[run]}
        a = np.array(rows, dtype=np.float64)
        table = {"local_s": a[:, 0], "x": a[:, 1], "y": a[:, 2], "valid": a[:, 3] > 0}
        keys = list(self.windows[run])
        wins = [(t0, t1) for t0, t1 in self.windows[run].values()]
        which = "calibration_dwell_s" if run == "calibration" else "validation_dwell_s"
        dwell = getattr(self.window_, which, 1.0)
        per = gaze_per_target(table, wins, settle_s=min(0.5, dwell / 2))
        return dict(zip(keys, per, strict=True))

    # -- acting -----------------------------------------------------------------------------
    def available_keys(self) -> list[str]:
        ctl = self.ctl
        return operator_keys(
            self.mode(), may_start=ctl.may_start(), failing=len(ctl.failing_targets()),
            paused=ctl.protocol.phase is Phase.PAUSED, calibrated=ctl.calibration is not None,
        )  # fmt: skip

    def _sync_buttons(self) -> None:
        keys = self.available_keys() if self.window_ is not None else []
        for k, b in self.buttons.items():
            b.setVisible(k in keys)

    def press(self, key: str) -> bool:
        """Act as if ``key`` (a key of :data:`OPERATOR_KEYS`) were pressed on the
        participant's window; False when it does nothing on the screen shown."""
        if self.window_ is None or key not in self.available_keys():
            return False
        code, text = KEYS[key]
        ev = QKeyEvent(QEvent.Type.KeyPress, code, Qt.KeyboardModifier.NoModifier, text)
        QApplication.sendEvent(self.window_, ev)
        self._tick()
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:
        for name, (code, _) in KEYS.items():
            if event.key() == code and self.press(name):
                return
        super().keyPressEvent(event)

    # -- mapping ----------------------------------------------------------------------------
    def screen_rect(self) -> QRectF:
        """Where the participant's screen is drawn in this widget (aspect kept)."""
        w, h = self.ctl.screen_px
        room_w = max(1.0, self.width() - self.INFO_WIDTH - 16.0)
        room_h = max(1.0, self.height() - 16.0)
        k = min(room_w / w, room_h / h)
        return QRectF(8.0, 8.0 + (room_h - h * k) / 2, w * k, h * k)

    def screen_to_view(self, x: float, y: float) -> QPointF:
        """Participant-screen px -> this widget's px."""
        r = self.screen_rect()
        w, h = self.ctl.screen_px
        return QPointF(r.x() + x * r.width() / w, r.y() + y * r.height() / h)

    # -- painting ---------------------------------------------------------------------------
    def _stimulus(self, p: QPainter) -> None:
        s = self.ctl
        iid = s.protocol.image_id
        mode = self.mode()
        if mode == "trials" and s.protocol.phase is Phase.IMAGE and iid is not None:
            x, y, w, h = s.layout_for(iid).image_rect_on_screen
            if self._image is None or self._image[0] != iid:
                self._image = (iid, to_qimage(s.images.image(iid)))
            tl, br = self.screen_to_view(x, y), self.screen_to_view(x + w, y + h)
            p.drawImage(QRectF(tl, br), self._image[1])
        elif mode == "trials" and s.protocol.phase is Phase.CROSS:
            c = self.screen_to_view(s.screen_px[0] / 2, s.screen_px[1] / 2)
            p.setPen(QPen(QColor(0, 0, 0), 2))
            p.drawLine(QPointF(c.x() - 6, c.y()), QPointF(c.x() + 6, c.y()))
            p.drawLine(QPointF(c.x(), c.y() - 6), QPointF(c.x(), c.y() + 6))
        target = getattr(self.window_, "target", None)
        if mode in RUNS and target is not None:  # the target the participant sees now
            c = self.screen_to_view(*target)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(TARGET)
            p.drawEllipse(c, 7.0, 7.0)
            p.setBrush(QColor(0, 0, 0))
            p.drawEllipse(c, 2.0, 2.0)

    def _gaze(self, p: QPainter, trail: bool = True) -> None:
        recent = [g for g in self.ctl.recent_gaze(1.0) if g.valid]
        if not recent:
            return
        p.setPen(QPen(TRAIL, 1.5))
        pts = [self.screen_to_view(g.x, g.y) for g in recent]
        for a, b in pairwise(pts if trail else []):  # not over a result plot
            p.drawLine(a, b)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(GAZE)
        p.drawEllipse(pts[-1], 6.0, 6.0)

    def _label(self, p: QPainter, at: QPointF, words: str, ok: bool) -> None:
        f = QFont()
        f.setPixelSize(12)
        p.setFont(f)
        box = QRectF(at.x() + 10, at.y() + 8, 92, 34)
        r = self.screen_rect()
        if box.right() > r.right():
            box.moveRight(at.x() - 10)
        if box.bottom() > r.bottom():
            box.moveBottom(at.y() - 8)
        p.fillRect(box, PANEL)
        p.setPen(GOOD if ok else BAD)
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, words)

    def _plot_target(self, p: QPainter, xy: tuple[float, float], dots: np.ndarray,
                     mean: tuple[float, float] | None, words: str, ok: bool) -> None:  # fmt: skip
        """One target of a result plot: its samples, the offset to their mean, its numbers."""
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(SAMPLE)
        for x, y in dots[:: max(1, len(dots) // 200)]:  # up to ~200 dots a target
            p.drawEllipse(self.screen_to_view(float(x), float(y)), 1.6, 1.6)
        c = self.screen_to_view(*xy)
        if mean is not None and all(math.isfinite(v) for v in mean):
            g = self.screen_to_view(*mean)
            p.setPen(QPen(MEAN, 2.0))
            p.drawLine(c, g)
            p.setPen(QPen(QColor(0, 0, 0), 1.0))
            p.setBrush(MEAN)
            p.drawEllipse(g, 3.5, 3.5)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(TARGET, 2.0))
        p.drawEllipse(c, 7.0, 7.0)
        self._label(p, c, words, ok)

    def _results(self, p: QPainter) -> None:
        """The calibration or validation result as a plot (on the result screens)."""
        mode, ctl = self.mode(), self.ctl
        limit = ctl.thresholds.max_point_accuracy_deg
        if mode == "validation_result" and ctl.validation is not None:
            gaze = self.target_gaze("validation")
            for i, q in enumerate(ctl.validation.quality.points):
                key = (float(q.target_px[0]), float(q.target_px[1]))
                mean = (key[0] + q.offset_px[0], key[1] + q.offset_px[1])
                ok = math.isfinite(q.accuracy_deg) and q.accuracy_deg <= limit
                words = (f"{i + 1}: {q.accuracy_deg:.2f}°\nRMS {q.rms_s2s_deg:.2f}°"
                         if math.isfinite(q.accuracy_deg) else f"{i + 1}: no gaze")  # fmt: skip
                self._plot_target(p, key, gaze.get(key, np.zeros((0, 2))), mean, words, ok)
        elif mode == "calibration_result" and ctl.calibration is not None:
            gaze = self.target_gaze("calibration")
            for pt in ctl.calibration.points:
                key = (float(pt.x), float(pt.y))
                dots = gaze.get(key, np.zeros((0, 2)))
                mean = (float(dots[:, 0].mean()), float(dots[:, 1].mean())) if len(dots) else None
                ok = math.isfinite(pt.accuracy_deg) and pt.accuracy_deg <= limit
                self._plot_target(p, key, dots, mean, f"{pt.accuracy_deg:.2f}°", ok)

    def screen_words(self) -> str:
        """What the participant's screen shows, in words (the ``phase`` line)."""
        mode, p = self.mode(), self.ctl.protocol
        win = self.window_
        if mode == "trials":
            return p.phase.value
        words = SCREEN_WORDS.get(mode, mode)
        if mode in ("calibration", "validation", "drift_check"):
            run = self.windows[mode]
            n = len(self.ctl.calibration_targets()) if mode != "drift_check" else 1
            if mode == "validation" and win is not None:
                n = getattr(win, "_n_targets", n) or n
            words += f": target {max(1, len(run))} of {n}"
        return words

    def result_lines(self) -> list[str]:
        """The last calibration, validation and drift check, in words (state column)."""
        ctl, out = self.ctl, []
        mode = self.mode()
        if mode == "calibration_result" and ctl.calibration is not None:
            c = ctl.calibration
            out.append(f"calibration {'done' if c.result else 'FAILED'}: mean {c.deg:.2f}°")
        v = ctl.validation
        if v is not None and mode in ("validation_result", "trials", "break"):
            q, lim = v.quality, ctl.thresholds
            verdict = "PASSED" if v.passed else ("overridden" if ctl.may_start() else "NOT PASSED")
            out.append(f"validation {verdict}: mean {q.mean_accuracy_deg:.2f}° (limit"
                       f" {lim.mean_accuracy_deg:.2f}°), worst target {q.max_accuracy_deg:.2f}°"
                       f" (limit {lim.max_point_accuracy_deg:.2f}°)")  # fmt: skip
            out.append(f"precision RMS-S2S {q.rms_s2s_deg:.2f}°, data loss {q.loss_pct:.1f} %")
            failing = ctl.failing_targets()
            if failing and not v.passed:
                out.append(f"targets {', '.join(str(i + 1) for i in failing)} above"
                           f" {lim.max_point_accuracy_deg:.2f}° or without gaze: NOT PASSED")  # fmt: skip
        drift = getattr(self.window_, "drift", None)
        if drift is not None:
            out.append(drift.summary())
        return out

    def state_lines(self) -> list[str]:
        """The state column, one line each (also what a test reads)."""
        s = self.ctl
        p = s.protocol
        n = p.n_trials
        trial = min(p.trial_index + 1, n)
        practice = " (practice)" if s.practising else ""
        warning = s.tracker_warning
        tracker = "connected" if not warning and s.capture.connected else warning or "lost"
        loss = s.data_loss_pct()
        return [
            f"participant {s.config.participant}, session {s.session_id}",
            f"trial {trial}/{n}{practice}",
            f"phase {self.screen_words()}",
            f"tracker {s.settings.tracker.kind}: {tracker}",
            f"rate {s.sample_rate_hz():.0f} Hz (nominal {s.settings.tracker.rate_hz})",
            f"data loss so far {'–' if math.isnan(loss) else f'{loss:.1f} %'}",
            f"last label {s.last_label or '–'}",
            f"heard {s.last_speech or '–'}",
            f"last event {self.last_event or '–'}",
        ]

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), PANEL)
        p.fillRect(self.screen_rect(), BACKGROUNDS[self.ctl.settings.stimulus.background])
        self._stimulus(p)
        self._results(p)
        self._gaze(p, trail=self.mode() not in ("calibration_result", "validation_result"))
        f = QFont()
        f.setPixelSize(15)
        p.setFont(f)
        p.setPen(TEXT)
        x0 = self.width() - self.INFO_WIDTH
        lines = self.state_lines()
        y = 12.0
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        for i, line in enumerate([*lines, "", *self.result_lines()]):
            bad = "NOT" in line or "FAIL" in line
            p.setPen(TEXT if i < len(lines) else (BAD if bad else GOOD))
            box = p.boundingRect(QRectF(x0, y, self.INFO_WIDTH - 12, 400), flags, line or " ")
            p.drawText(box, flags, line)
            y += box.height() + 3
        p.end()
