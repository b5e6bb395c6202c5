"""The annotation window: calibration, the CK+ labeling protocol full screen, labels, gaze.

A thin Qt view over :class:`~gazelab.annotation.controller.AnnotationSession`,
which owns the session (store, tracker, protocol, capture, calibration and
validation results, store faults). The window only paints
(:mod:`gazelab.app.annotate_screens`), times and forwards keys.

Screens (``AnnotationWindow.mode``)::

    start ─space─► calibration ─► calibration result ─space─► validation ─► validation result
                        ▲                │ r                         ▲   f      │ space (passed) /
                        └────────────────┴───────────────────────────┼──────────┤ o (override)
                                                                     └─ every N ◄─ trials ─► done

Keys: digits 0–7 label the image on screen (keyboard fallback, always on);
the advance key (``protocol.advance_key``) moves on once a label exists;
``P`` pauses / resumes, ``C`` recalibrates while paused, ``Esc`` ends the
session (everything is already committed; restart with ``--resume`` to continue).

Store faults (a full disk): the session pauses with a message saying so, and
every second (or on ``R``) the window asks the session to try again; once the
store takes what was held, the interrupted trial starts again at its first blank.

Timing: phase switches are scheduled with precise single-shot timers at the
protocol's deadlines. Where OpenGL with swap control can be had (setting
``stimulus.flip``, :mod:`gazelab.app.annotate_flip`), each phase is drawn into an
OpenGL back buffer, swapped on the display's refresh, and its onset is the swap's
completion (clock ``flip``); elsewhere (the offscreen platform of the tests, a
driver without swap control) the onset is the end of the first paint that shows it
(``QWidget.paintEvent`` after drawing; clock ``paint``). Either is recorded as a
``flip`` event with its error against the schedule and the clock it came from.
Nothing else runs in the few milliseconds before a timed onset (the gaze poll and
the prefetch of the next image wait until after it), the last of them is slept, not
spun, and the garbage collector is off from the timer to the paint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import math
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QGuiApplication,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QRegion,
)
from PySide6.QtWidgets import QWidget

from gazelab import CLASSES
from gazelab.annotation.controller import AnnotationSession
from gazelab.annotation.protocol import LabelAnswer, Phase
from gazelab.annotation.session import OpenTracker, SessionConfig
from gazelab.annotation.speech import (
    KeyboardRecognizer,
    LabelResult,
    SpeechRecognizer,
    recognizer_from_settings,
)
from gazelab.annotation.store import SessionStore
from gazelab.app import annotate_screens as screens
from gazelab.app.annotate_flip import StimulusSurface, choose_surface
from gazelab.app.annotate_screens import ScreenMapping, to_qimage
from gazelab.app.annotate_targets import TargetScreens
from gazelab.app.annotate_voice import AnswerListener

__all__ = ["AnnotationWindow", "Autopilot", "run_annotation", "to_qimage"]

NEXT_PHASE = {Phase.BLANK1: Phase.CROSS, Phase.CROSS: Phase.BLANK2, Phase.BLANK2: Phase.IMAGE}
"""The timed phase each timed phase gives way to (the one drawn ahead of its onset)."""

KEY_NAMES = {"space": Qt.Key.Key_Space, "return": Qt.Key.Key_Return, "right": Qt.Key.Key_Right}


@dataclasses.dataclass
class Autopilot:
    """A simulated participant for demos, benchmarks and crash tests: labels after ``view_s``."""

    view_s: float = 1.0
    label_of: Callable[[str], str] | None = None


class AnnotationWindow(TargetScreens, ScreenMapping, QWidget):
    closed = Signal()
    """Emitted when the window has closed (the session finished): observers close too."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        store: SessionStore | None = None,
        tracker: OpenTracker | None = None,
        recognizer: Callable[[], SpeechRecognizer] | None = None,
        autopilot: Autopilot | None = None,
        clock: Callable[[], float] = time.monotonic,
        calibration_dwell_s: float = 0.75,
        validation_dwell_s: float = 1.2,
        skip_calibration: bool = False,
        microphone: bool = True,
        actual_screen_px: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self._mouse_xy: tuple[float, float] | None = None
        # how phases reach the screen, decided before the session opens: a flip asked for
        # that cannot be had is one line, with nothing written
        self.surface = choose_surface(config.settings.stimulus.flip)
        self._gl: StimulusSurface | None = None
        self.ctl = AnnotationSession(
            config, store=store, tracker=tracker, clock=clock,
            mouse_position=lambda: self._mouse_xy, actual_screen_px=actual_screen_px,
        )  # fmt: skip
        try:
            self._open(recognizer, autopilot, calibration_dwell_s, validation_dwell_s,
                       skip_calibration, microphone)  # fmt: skip
        except BaseException as exc:
            # the voice child and its microphone stop with the window that failed to open,
            # and the session says why it ended
            listener = getattr(self, "listener", None)
            if listener is not None:
                listener.blockSignals(True)  # nothing reaches a half-built window
                listener.close()
            with contextlib.suppress(Exception):
                self.ctl.event("window_failed", error=f"{type(exc).__name__}: {exc}")
            self.ctl.finish()
            raise

    def _open(
        self,
        recognizer: Callable[[], SpeechRecognizer] | None,
        autopilot: Autopilot | None,
        calibration_dwell_s: float,
        validation_dwell_s: float,
        skip_calibration: bool,
        microphone: bool,
    ) -> None:
        self.config = self.ctl.config
        self.settings = self.ctl.settings
        self.setWindowTitle(f"gazelab — {self.config.participant}")
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.BlankCursor)
        # paintEvent fills the whole window itself: without this Qt fills it first too,
        # a second full-window fill inside every onset's paint (~0.25 ms at 1280x720)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        if recognizer is None and self.settings.voice.backend != "keys":
            # built in the voice child process, never here: a native fault there costs the
            # voice, not the session
            recognizer = functools.partial(recognizer_from_settings, self.settings.voice)
        self.listener = AnswerListener(recognizer, self.ctl.audio_dir, microphone=microphone)
        self.listener.recognized.connect(self._on_recognized)
        self.listener.problem.connect(self._on_voice_problem)
        self.listener.ready.connect(self._on_voice_ready)
        self.recognizer_name = ""  # what the voice child runs, once it has started
        self.voice = self.listener.voice
        self.autopilot = autopilot
        self.calibration_dwell_s = calibration_dwell_s
        self.validation_dwell_s = validation_dwell_s
        self._skip_calibration = skip_calibration
        self._practised = self.ctl.resumed  # practice is for a session's start, not its resume
        self._esc_until: float | None = None
        self.mode = "start"
        self.message = ""  # the discreet line under the image (recognised word)
        self.warning = ""
        self.target: tuple[float, float] | None = None  # calibration / validation target
        self._n_targets = 0
        self._shown: tuple[int, Phase, float] | None = None  # what the last paint showed
        self._last_content: QRegion | None = None  # what it drew beside the background
        self._image_cache: dict[str, QImage] = {}
        self._auto_label_at: float | None = None
        # per timed phase, its last latencies (entered -> onset, s): what it is entered
        # ahead of its deadline by (_lead_s); and the phase entered ahead, and when
        self._latency: dict[Phase, deque[float]] = {}
        self._entered: tuple[Phase, float] | None = None
        self._init_targets()
        self._phase_timer = self._timer(self._on_deadline, single=True)
        self._poll_timer = self._timer(self._poll)
        self._poll_timer.start(10)
        self._retry_timer = self._timer(self.retry_store)  # while the store fails: every second
        if self.surface.clock == "flip":
            self._gl = StimulusSurface(self)
            self._gl_box = QWidget.createWindowContainer(self._gl, self)
            self._gl_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self._gl_box.setGeometry(self.rect())
        self.ctl.event("display_surface", **self.surface.as_event())

    def update(self, *args: Any) -> None:
        """Show the new state at the next turn of the event loop (on the OpenGL surface
        when there is one)."""
        if self._gl is not None:
            self._gl.schedule()
        else:
            super().update(*args)

    def present(self) -> None:
        """Show the state now, not at the next event-loop turn: a phase's onset is this
        (the paint's end, or the OpenGL frame's swap). The raster path repaints only what
        the phase change alters (:meth:`_changed_region`): a blank after the cross clears
        the cross, not the whole screen, so the onset comes sooner."""
        if self._gl is not None:
            self._gl.render()
            return
        region = self._changed_region()
        if region is None:
            self.repaint()
        else:
            self.repaint(region)

    def _changed_region(self) -> QRegion | None:
        """What a trial's phase change redraws: what the last paint drew beside the
        background (the cross, or the image and its line) and what the new phase draws;
        ``None`` (the whole window) outside the trials, with a warning or a store fault
        on screen, or when the last paint was not of a trial. Never empty: a change
        between blanks still paints (one pixel of background), which is its onset."""
        if not self._plain_trial():
            return None
        now = screens.content_region(self)
        if now is None or self._last_content is None:
            return None
        r = self._last_content.united(now)
        return r if not r.isEmpty() else QRegion(self.width() // 2, self.height() // 2, 1, 1)

    def _warn(self, words: str) -> None:
        self.warning = words
        self.update()

    def _timer(self, slot: Callable[[], object], single: bool = False) -> QTimer:
        t = QTimer(self)
        t.setSingleShot(single)
        t.setTimerType(Qt.TimerType.PreciseTimer)
        t.timeout.connect(slot)
        return t

    # -- the session's state, as the window's (tests and tools read these) -----------------
    session = property(lambda self: self.ctl.record)
    store = property(lambda self: self.ctl.store)
    images = property(lambda self: self.ctl.images)
    protocol = property(lambda self: self.ctl.protocol)
    capture = property(lambda self: self.ctl.capture)
    recorder = property(lambda self: self.ctl.recorder)
    tracker = property(lambda self: self.ctl.tracker)
    calibration = property(lambda self: self.ctl.calibration)
    store_fault = property(lambda self: self.ctl.store_fault)
    store_message = property(lambda self: self.ctl.store_message)

    @property
    def validation(self) -> list[float]:
        """Per-target error of the last validation, degrees (empty before one)."""
        v = self.ctl.validation
        return [] if v is None else list(v.errors_deg)

    def progress_text(self) -> str:
        return self.ctl.progress_text()

    # -- store faults -----------------------------------------------------------------------
    def _sync_store(self) -> None:
        """React to what the session says about the store: pause the timers, or lost."""
        if self.ctl.lease_lost and self.mode != "lost":
            self._retry_timer.stop()
            self._phase_timer.stop()
            self._stop_listening()
            self.mode = "lost"
            self.update()
        elif self.ctl.store_fault is not None and not self._retry_timer.isActive():
            self._retry_timer.start(1000)
            self._phase_timer.stop()
            self._stop_listening()
            self._auto_label_at = None
            self.update()

    def retry_store(self) -> bool:
        """Write what was held; on success resume the session where it paused."""
        paused = self.ctl.paused_for_store
        ok = self.ctl.retry_store()
        if ok:
            self._retry_timer.stop()
            if paused and self.mode == "trials":
                self._start_trials()  # the interrupted trial starts again at its first blank
        self._sync_store()
        self.update()
        return ok

    # -- flow -------------------------------------------------------------------------------
    def begin(self) -> None:
        """Leave the start screen: practice (if any, once), calibrate (unless skipped),
        then the trials."""
        if self.settings.protocol.practice_trials and not self._practised:
            self._practised = True
            self.mode = "trials"
            self._after_changes(self.ctl.start_practice())
        elif self._skip_calibration or self.settings.tracker.kind == "none":
            self._start_trials()
        else:
            self.start_calibration()

    def _start_trials(self) -> None:
        self.mode = "trials"
        self.warning = ""
        self._after_changes(self.ctl.start_trials())
        self._sync_store()

    def _after_changes(self, changes: list[Any]) -> None:
        """React to phase changes: repaint (the onset: first), then listen and re-arm the
        timer."""
        phases = {ch.phase for ch in changes}
        if Phase.IMAGE in phases:
            self.message = ""
        if self.ctl.finished:
            self.mode = "done"
        self.present()  # now, not at the next event-loop turn: the onset is this
        if Phase.IMAGE in phases and not self.ctl.finished:
            self._start_listening()
            if self.autopilot is not None:
                self._auto_label_at = self.clock() + self.autopilot.view_s
        elif Phase.BLANK1 in phases or self.ctl.finished:
            self._stop_listening()
        self._arm_phase_timer()
        if self.mode == "trials":
            QTimer.singleShot(0, self._prepare_image)  # after the onset's paint, not before

    def _prepare_image(self) -> None:
        """Decode and scale the coming image ahead (the next trial's while an image waits
        for its label, this trial's in the blanks), so an onset is a plain copy.

        Never in the last milliseconds before a timed onset that does not show it (the
        next onset's paint asks again): there it would delay that onset by its own
        duration (1–20 ms); before the image's own onset it runs anyway (better late
        here than decoded inside that onset's paint)."""
        p = self.ctl.protocol
        k = p.trial_index + (1 if p.phase is Phase.IMAGE else 0)
        if p.phase is Phase.PAUSED or k >= p.n_trials:
            return
        key = p.order[k]
        if p.phase is not Phase.BLANK2 and self._onset_within(
            self._prepare_s + self.QUIET_S + self._ahead_s()
        ):
            return
        t0 = time.perf_counter()
        image = self.scaled_image(key)
        if self._gl is not None:
            self._gl.preload(image)  # its texture too
        took = time.perf_counter() - t0
        if took > 0.0005:  # (a cached image takes microseconds: not an estimate)
            self._prepare_s = max(took, 0.8 * self._prepare_s)

    _prepare_s = 0.02
    """How long preparing an image takes, s (the last real one, decaying from the longest)."""

    SPIN_S = 0.002
    """The phase timer fires this much before a deadline (a precise QTimer is up to ~1 ms
    late); the rest is waited for here, so an onset does not carry the timer's millisecond
    rounding and wake-up jitter (PsychoPy waits the last milliseconds the same way)."""

    SPIN_FINAL_S = 0.0003
    """Of that wait, all but this last part is slept (the CPU given back: a process that
    spins for milliseconds on a loaded machine is the one the scheduler preempts, for a
    whole time slice, right at the onset); the last part, a tight loop."""

    QUIET_S = 0.004
    """Work that can wait (the gaze poll, preparing an image) does not start when a timed
    onset is less than this (plus its own expected duration) away."""

    LEAD_SAMPLES = 15
    """How many of a phase's last onset latencies its lead is the median of."""

    LEAD_MIN_SAMPLES = 3
    """How many latencies a phase needs before it is entered ahead at all."""

    LEAD_MAX_S = 0.005
    """The most a phase is entered ahead of its deadline, s (a latency past it is a stall,
    not the frame's own cost)."""

    def _lead_s(self, phase: Phase | None) -> float:
        """How long before its deadline timed phase ``phase`` is entered so that its onset
        lands on the deadline: the median of its last LEAD_SAMPLES latencies (entering it
        to the paint's end, or to the swap done), at most LEAD_MAX_S; 0 while fewer than
        LEAD_MIN_SAMPLES are measured (one cold first paint would put the next onset early),
        and with vsync (there the refresh decides when a frame appears)."""
        lat = self._latency.get(phase) if phase is not None else None
        if not lat or len(lat) < self.LEAD_MIN_SAMPLES or self.surface.vsync:
            return 0.0
        return min(self.LEAD_MAX_S, statistics.median(lat))

    def _ahead_s(self) -> float:
        """How long before a deadline the coming phase's onset work starts: the OpenGL
        surface's drawing of its frame (its measured drawing time; none on the raster path,
        which paints after the switch) and the phase's lead (:meth:`_lead_s`)."""
        coming = NEXT_PHASE.get(self.ctl.protocol.phase)
        if coming is None:
            return 0.0
        draw = self._gl.draw_s(coming) if self._gl is not None else 0.0
        return draw + self._lead_s(coming)

    def frame_key(self, phase: Phase | None = None) -> tuple[object, ...]:
        """What a frame shows, to tell whether one drawn ahead for ``phase`` (the coming
        one) is still the frame to swap in once the phase has come."""
        p = self.ctl.protocol
        ph = p.phase if phase is None else phase
        image = ph is Phase.IMAGE  # (blanks and the cross are the same in every trial)
        message = ("" if phase is not None else self.message) if image else ""
        return (self.mode, p.trial_index if image else None, ph, message, self.warning,
                self.ctl.store_message, self.width(), self.height())  # fmt: skip

    def _onset_within(self, seconds: float) -> bool:
        """Whether a timed phase onset is due in less than ``seconds`` (its timer armed:
        a deadline nothing waits for, e.g. while paused, holds nothing back)."""
        if not self._phase_timer.isActive():
            return False
        deadline = self.ctl.protocol.next_deadline()
        return deadline is not None and deadline - self.clock() < seconds

    def _wait_until(self, deadline: float, longest_s: float | None = None) -> None:
        """Return at ``deadline`` (the window's clock): sleep until SPIN_FINAL_S before it,
        then spin; at most ``longest_s`` (2 × SPIN_S) in all (a test's clock may stand
        still)."""
        give_up = time.perf_counter() + (2 * self.SPIN_S if longest_s is None else longest_s)
        while True:
            left = deadline - self.clock()
            budget = give_up - time.perf_counter()
            if left <= 0 or budget <= 0:
                return
            if left > self.SPIN_FINAL_S:
                time.sleep(min(left - self.SPIN_FINAL_S, budget))

    def _settle_backing_store(self) -> None:
        """On X11 (raster path), wait here for the X server to have read what the last
        paints sent it, not inside the next onset's paint.

        Qt's X11 backing store hands its pixels to the server through shared memory, and
        before a paint writes pixels it last sent, it waits for the server to be done with
        them (a round trip: 0.1-0.3 ms on Xvfb). An empty paint of the whole window (begin,
        end: nothing drawn, nothing sent) does that wait now; the gaze poll (every 10 ms,
        never in the last milliseconds before a timed onset) and the phase timer call this,
        and it costs nothing when nothing was sent since. Not on other platforms, nor on a
        backing store with alpha (beginning a paint there clears the region)."""
        if self._gl is not None or self._x11 is False:
            return
        if self._x11 is None:
            self._x11 = QGuiApplication.platformName() == "xcb"
            if not self._x11:
                return
        store = self.backingStore()
        device = store.paintDevice() if store is not None else None
        if not isinstance(device, QImage) or device.hasAlphaChannel() or device.isNull():
            return
        store.beginPaint(QRegion(self.rect()))
        store.endPaint()

    _x11: bool | None = None
    """Whether the window is on X11 (Qt's ``xcb``); ``None`` until asked."""

    def _arm_phase_timer(self) -> None:
        deadline = self.ctl.protocol.next_deadline()
        if deadline is not None:
            ms = (deadline - self.clock() - self.SPIN_S - self._ahead_s()) * 1000
            self._phase_timer.start(max(0, int(math.floor(ms))))

    def _on_deadline(self) -> None:
        if self.ctl.protocol.phase is Phase.PAUSED:
            return  # paused (a store fault) after the timer fired
        deadline = self.ctl.protocol.next_deadline()
        if deadline is not None and deadline - self.clock() > 2 * self.SPIN_S + self._ahead_s():
            self._arm_phase_timer()  # woke far too early: sleep again
            return
        self._settle_backing_store()
        collecting = gc.isenabled()
        gc.disable()  # no collection pause between the timer and the onset's paint
        try:
            with self.ctl.recorder.deferred():  # the phase's records: after its paint
                coming = NEXT_PHASE.get(self.ctl.protocol.phase)
                if self._gl is not None and coming is not None and self.mode == "trials":
                    # the coming phase's frame drawn now, so its onset is a swap
                    self._gl.draw_ahead(coming, self.frame_key(coming))
                lead = self._lead_s(coming)
                if deadline is not None:
                    # at most ~2 ms: the timer fired SPIN_S early (and the drawing-ahead
                    # time, which the drawing may have taken less of)
                    self._wait_until(deadline - lead, 2 * self.SPIN_S + self._ahead_s())
                entered = self.clock()
                # entered ahead of the deadline by the onset's measured latency, so that
                # the paint's end (the swap) lands on it; not sooner (a wait that gave up)
                ahead = deadline is not None and lead > 0 and entered >= deadline - lead
                changes = self.ctl.tick(deadline if ahead else None)
                if not changes:
                    self._arm_phase_timer()
                    return
                self._entered = (changes[-1].phase, entered)
                self._after_changes(changes)
        finally:
            if collecting:
                gc.enable()

    def _poll(self) -> None:
        if self._onset_within(self.QUIET_S + self._ahead_s()):
            return  # runs again in 10 ms, after the onset (the tracker buffers meanwhile)
        self._settle_backing_store()
        self.ctl.poll()
        self._sync_store()
        if self.ctl.lease_lost:
            return
        self.listener.poll()
        warning = self.ctl.tracker_warning
        if warning != self.warning and (warning or self.warning.startswith("eye tracker")):
            self.warning = warning
            self.update()
        p = self.ctl.protocol
        if (self._auto_label_at is not None and self.clock() >= self._auto_label_at
                and p.phase is Phase.IMAGE and self.autopilot is not None):  # fmt: skip
            self._auto_label_at = None
            iid = p.image_id or ""
            label_of = self.autopilot.label_of
            label = label_of(iid) if label_of else CLASSES[self.ctl.images.labels[iid]]
            self.give_label(LabelAnswer(label, source="auto", text=label))
            self.advance()

    # -- labels -----------------------------------------------------------------------------
    def give_label(self, answer: LabelAnswer) -> bool:
        ok = self.ctl.give_label(answer)
        if ok:
            self._show_message(f"{answer.label}")
        return ok

    def _show_message(self, words: str) -> None:
        """Put ``words`` on the line of feedback under the image and redraw what changes
        there, only that on the raster path: a key that ends the image within the same turn
        of the event loop merges what is still to be painted into the next blank's onset
        (a whole-window repaint there took 0.5 ms longer at 1280x720)."""
        old, self.message = self.message, words
        if self._gl is None and self._plain_trial() and self.ctl.protocol.phase is Phase.IMAGE:
            self.update(screens.feedback_rect(self, old).united(screens.feedback_rect(self)))
        else:
            self.update()

    def advance(self) -> bool:
        study = not self.ctl.practising
        step: bool | None = None  # None: _advance raised (the protocol may have moved on)
        try:
            with self.ctl.recorder.deferred():  # the key's and the phase's records: after
                step = self._advance()  # the paint
        finally:
            if study and step is not False:  # the ended trial's samples: after the blank's
                self.ctl.flush_trial()  # paint too, and on disk even if that paint failed
        self._sync_store()  # (a fault of those records shows once they are written)
        return step

    def _advance(self) -> bool:
        step = self.ctl.advance(flush=False)
        self._sync_store()
        if step:
            self._stop_listening()  # the image is gone: what is said now answers nothing
        if step in ("validate", "break", "practice_done"):
            self._stop_listening()
            self._phase_timer.stop()
        if step == "validate":
            self.start_validation()
        elif step in ("break", "practice_done"):  # a screen that waits for space
            self.mode = step
            self.update()
            if self.autopilot is not None:
                QTimer.singleShot(50, self.begin if step == "practice_done" else self.after_break)
        elif step:
            self._after_changes([])
        return bool(step)

    def _start_listening(self) -> None:
        self.listener.start(self.ctl.protocol.trial_index, keep=not self.ctl.practising)

    def _stop_listening(self) -> None:
        self.listener.stop()

    def feed_audio(self, audio: NDArray[np.int16]) -> None:
        """Microphone audio (or a test's) for the answer on screen; recognised off the GUI thread."""
        p = self.ctl.protocol
        if p.phase is Phase.IMAGE:
            self.listener.feed(audio, p.trial_index, keep=not self.ctl.practising)

    def _on_voice_ready(self, name: str) -> None:
        """The voice child has started: the session records which recogniser and model."""
        self.recognizer_name = name
        if not self.ctl.lease_lost:
            self.ctl.event("voice_ready", recognizer=name)
        self.update()

    def _on_voice_problem(self, message: str, fatal: bool) -> None:
        """The voice child's warning; ``fatal``: it is gone, labels come from the keys."""
        print(f"gazelab annotate: {message}", file=sys.stderr)
        if fatal:
            self.voice = False
        if not self.ctl.lease_lost:
            self.ctl.event("voice_problem", message=message, fatal=fatal)
        self._warn(message)

    def _on_recognized(self, result: LabelResult, wav: str | None, trial: int) -> None:
        if not self.ctl.practising:
            self.ctl.event("speech", trial_index=trial, text=result.text,
                           confidence=result.confidence, audio=wav, label=result.label)  # fmt: skip
        p = self.ctl.protocol
        if trial != p.trial_index or p.phase is not Phase.IMAGE:
            return  # the answer came after the participant moved on: kept as an event only
        if result.label is None:
            self._show_message("not understood, please repeat")
        else:
            self.give_label(LabelAnswer(result.label, "voice", result.text, result.confidence, wav))

    # -- Qt events --------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, chars = event.key(), event.text()
        p = self.ctl.protocol
        trial = p.trial_index if self.mode == "trials" else None
        self.ctl.event("key", trial_index=trial, key=chars or int(key), mode=self.mode)
        if key == Qt.Key.Key_Escape:
            self.escape()
            return
        if self._esc_until is not None:  # any other key: the session goes on
            self._esc_until = None
            self._warn("")
        if self.ctl.store_fault is not None:  # paused until the store works: R retries now
            if key == Qt.Key.Key_R:
                self.retry_store()
            return
        if self.mode in ("start", "practice_done") and key == Qt.Key.Key_Space:
            self.begin()
        elif self.mode == "break" and key == Qt.Key.Key_Space:
            self.after_break()  # a drift check, then the trials
        elif self.mode == "calibration_result":
            if key == Qt.Key.Key_R:
                self.start_calibration()
            elif key == Qt.Key.Key_Space and self.ctl.calibration is not None:
                self.start_validation()
        elif self.mode == "validation_result":
            self._validation_key(key)
        elif self.mode == "trials":
            label = KeyboardRecognizer.label_for_key(chars)
            if label is not None:
                self.give_label(LabelAnswer(label, source="key", text=chars))
            elif key == KEY_NAMES[self.settings.protocol.advance_key]:
                self.advance()
            elif key == Qt.Key.Key_P:
                if p.phase is Phase.PAUSED:
                    self._start_trials()
                elif self.ctl.pause():
                    self._phase_timer.stop()
                    self._stop_listening()
                    self.update()
            elif key == Qt.Key.Key_C and p.phase is Phase.PAUSED:
                self.start_calibration()

    ESC_CONFIRM_S = 3.0
    """A second Esc within this time ends a running session (one Esc is easily pressed)."""

    def escape(self) -> None:
        """Esc: ends a finished or lost session at once; a running one on a second Esc."""
        now = self.clock()
        if self.mode in ("done", "lost", "start") or (
            self._esc_until is not None and now <= self._esc_until
        ):
            self.finish()
            return
        self._esc_until = now + self.ESC_CONFIRM_S
        self._warn(f"Esc again within {self.ESC_CONFIRM_S:.0f} s ends the session; any other key"
                   " goes on")  # fmt: skip

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._mouse_xy = self.to_screen(event.position())

    def finish(self) -> None:
        """End (or interrupt) the session: commit everything and close."""
        if self.mode == "closed":
            return
        self.mode = "closed"
        for t in (self._poll_timer, self._phase_timer, self._retry_timer):
            t.stop()
        self.listener.close()
        for line in self.ctl.finish():
            print(f"gazelab annotate: {line}", file=sys.stderr)
        self.close()

    def closeEvent(self, event: Any) -> None:
        if self.mode != "closed":
            self.finish()
        super().closeEvent(event)
        self.closed.emit()

    # -- painting ---------------------------------------------------------------------------
    def resizeEvent(self, event: Any) -> None:
        if self._gl is not None:
            self._gl_box.setGeometry(self.rect())
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._gl is not None:
            return  # the OpenGL surface covers the window and draws the screens
        p = QPainter(self)
        self.paint_screen(p)
        p.end()
        self.shown("paint")
        # what is on screen beside the background, for the next phase change's repaint
        # (a partial paint draws the same state: it leaves the rest as it was)
        self._last_content = screens.content_region(self) if self._plain_trial() else None

    def _plain_trial(self) -> bool:
        """A trial's screen with nothing over it (no warning line, no store fault)."""
        return self.mode == "trials" and not self.warning and not self.ctl.store_message

    def paint_screen(self, p: QPainter, coming: Phase | None = None) -> None:
        """Draw the current screen with ``p`` (the window's paint, or the OpenGL surface's);
        ``coming``: the trial's screen in that phase instead (drawn ahead of its onset)."""
        background = screens.BACKGROUNDS[self.settings.stimulus.background]
        image = screens.image_rect(self, coming)
        if image is None:
            p.fillRect(self.rect(), background)
        else:  # around the image, not under it (it is opaque): the image's onset writes
            for r in QRegion(self.rect()).subtracted(QRegion(image)):  # its pixels once
                p.fillRect(r, background)
        if self.mode == "trials":
            screens.paint_trial(self, p, coming)
        elif self.mode in ("calibration", "validation", "drift_check"):
            screens.paint_target(self, p)
        elif self.mode == "calibration_result":
            screens.paint_calibration_result(self, p)
        elif self.mode == "validation_result":
            screens.paint_validation_result(self, p)
        else:
            screens.paint_message(self, p)
        screens.paint_overlays(self, p)

    def shown(self, clock: str) -> None:
        """The screen just reached the display (``clock``: ``paint`` or ``flip``): the first
        time a phase does, that is its onset."""
        if self.mode == "trials":
            proto = self.ctl.protocol
            shown = (proto.trial_index, proto.phase, proto.phase_scheduled_s)
            if shown != self._shown:  # the first paint of a phase: its onset
                self._shown = shown
                now = self.clock()
                proto.flipped(proto.phase, now, clock=clock)
                entered, self._entered = self._entered, None
                if entered is not None and entered[0] is proto.phase:  # a timed onset
                    lat = self._latency.setdefault(proto.phase, deque(maxlen=self.LEAD_SAMPLES))
                    lat.append(now - entered[1])


def run_annotation(config: SessionConfig, **options: Any) -> int:
    """Open the window full screen and run the Qt event loop; returns the session id
    (:func:`gazelab.app.annotate_run.run_annotation`, where the options are listed)."""
    from gazelab.app.annotate_run import run_annotation as run

    return run(config, **options)
