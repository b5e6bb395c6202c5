"""The annotation window: calibration, the CK+ labeling protocol full screen, labels, gaze.

A thin Qt view over :mod:`gazelab.annotation`: the protocol state machine decides
what is on screen, :class:`~gazelab.annotation.capture.GazeCapture` moves gaze
samples into the store, and the speech recogniser turns answers into labels.
The window only paints, times and forwards keys.

Screens (``AnnotationWindow.mode``)::

    start ─space─► calibration ─► calibration result ─space─► validation ─► trials ─► done
                        ▲                │ r                                 │ p: pause / resume
                        └────────────────┘                                   │ c (paused): recalibrate

Keys: digits 0–7 label the image on screen (keyboard fallback, always on);
the advance key (``protocol.advance_key``) moves on once a label exists;
``P`` pauses / resumes, ``C`` recalibrates while paused, ``Esc`` ends the
session (everything is already committed; restart with ``--resume`` to continue).

Store faults (a full disk): records and gaze samples that cannot be written are
held in memory, the session pauses with a message saying so, and every second
(or on ``R``) the window tries again; once the store takes them it writes what
was held, in order, and the interrupted trial starts again at its first blank.
The window holds the session's lease in the store (renewed every few seconds,
released at the end), so the same session cannot be resumed twice at once.

Timing: phase switches are scheduled with precise single-shot timers at the
protocol's deadlines; the onset of a phase is the end of the first paint that
shows it (``QWidget.paintEvent`` after drawing), recorded as a ``flip`` event
with its error against the schedule.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from gazelab import CLASSES
from gazelab.annotation.capture import GazeCapture
from gazelab.annotation.protocol import (
    STORE_FAULTS,
    LabelAnswer,
    LabelingProtocol,
    Phase,
    StoreRecorder,
    audio_dir,
    protocol_for_session,
    stimulus_order,
)
from gazelab.annotation.session import (
    ImageSource,
    OpenTracker,
    SessionConfig,
    SessionSetupError,
    check_images,
    open_image_source,
    open_tracker,
    validation_errors_deg,
)
from gazelab.annotation.speech import (
    KeyboardRecognizer,
    LabelResult,
    SpeechRecognizer,
    UtteranceDetector,
    recognizer_from_settings,
    write_wav,
)
from gazelab.annotation.store import LEASE_RENEW_S, LeaseLostError, SessionStore
from gazelab.gaze.geometry import StimulusLayout
from gazelab.gaze.trackers.base import CalibrationPoint, CalibrationResult
from gazelab.gaze.trackers.protocol import calibration_points
from gazelab.settings import Settings

BACKGROUNDS = {"grey": QColor(128, 128, 128), "black": QColor(0, 0, 0)}
KEY_NAMES = {"space": Qt.Key.Key_Space, "return": Qt.Key.Key_Return, "right": Qt.Key.Key_Right}


def to_qimage(image: NDArray[np.uint8]) -> QImage:
    img = np.ascontiguousarray(image)
    if img.ndim == 2:
        q = QImage(
            img.data, img.shape[1], img.shape[0], img.strides[0], QImage.Format.Format_Grayscale8
        )
    else:
        q = QImage(
            img.data, img.shape[1], img.shape[0], img.strides[0], QImage.Format.Format_RGB888
        )
    return q.copy()  # own the pixels


class _Bridge(QObject):
    """Signals from worker threads (calibration, recognition) into the GUI thread."""

    calibration_point = Signal(int, float, float)
    calibration_done = Signal(object)
    recognized = Signal(object, object, int)  # LabelResult, wav path | None, trial index


@dataclasses.dataclass
class Autopilot:
    """A simulated participant for demos, benchmarks and crash tests: labels after ``view_s``."""

    view_s: float = 1.0
    label_of: Callable[[str], str] | None = None


class AnnotationWindow(QWidget):
    def __init__(
        self,
        config: SessionConfig,
        *,
        store: SessionStore | None = None,
        tracker: OpenTracker | None = None,
        recognizer: SpeechRecognizer | None = None,
        autopilot: Autopilot | None = None,
        clock: Callable[[], float] = time.monotonic,
        calibration_dwell_s: float = 0.75,
        validation_dwell_s: float = 1.2,
        skip_calibration: bool = False,
        microphone: bool = True,
    ) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.settings: Settings = config.settings
        self.clock = clock
        self.setWindowTitle(f"gazelab — {config.participant}")
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.BlankCursor)
        self._mouse_xy: tuple[float, float] | None = None

        # only a new session may create the store; a resume needs the one it was made in
        self.store = store or SessionStore(config.store, create=config.resume is None)
        self.images: ImageSource = open_image_source(config.images)
        # every check before anything is written or calibrated (SPEC §2 set-up step)
        if config.resume is not None:
            rec = self.store.session(config.resume)
            if rec.participant != config.participant:
                raise SessionSetupError(
                    f"session {rec.id} in {config.store} belongs to participant"
                    f" {rec.participant!r}, not {config.participant!r}: resume it with"
                    f" --participant {rec.participant}, or leave out --resume for a new session"
                )
            missing = [i for i in rec.stimulus_order if i not in self.images.labels]
            if missing:
                raise SessionSetupError(
                    f"{len(missing)} of the {len(rec.stimulus_order)} images of session {rec.id}"
                    f" are not in {config.images} (first: {missing[0]!r}); resume with the"
                    f" images the session was made with: --images {rec.image_source}"
                )
            first = self.store.first_unlabelled_trial(rec.id)  # None: every image labelled
            n = len(rec.stimulus_order)
            check_images(self.images, rec.stimulus_order[n if first is None else first :])
            self.lease = self.store.acquire_lease(rec.id)
            self.session = rec
        else:
            order = stimulus_order(self.images.ids, self.settings.protocol.seed)
            check_images(self.images, order)
            self.session = self.store.create_session(
                config.participant,
                settings_toml=self.settings.to_toml(),
                seed=self.settings.protocol.seed,
                image_source=config.images,
                stimulus_order=order,
                start_local_s=clock(),
            )
            self.lease = self.store.acquire_lease(self.session.id)
        try:
            self._open(config, tracker, recognizer, autopilot, calibration_dwell_s,
                       validation_dwell_s, skip_calibration, microphone)  # fmt: skip
        except BaseException:
            self.store.release_lease(self.lease)  # a failed start leaves the session free
            raise

    def _open(
        self,
        config: SessionConfig,
        tracker: OpenTracker | None,
        recognizer: SpeechRecognizer | None,
        autopilot: Autopilot | None,
        calibration_dwell_s: float,
        validation_dwell_s: float,
        skip_calibration: bool,
        microphone: bool,
    ) -> None:
        """The rest of the set-up, once the session is checked and leased."""
        clock = self.clock
        self.protocol: LabelingProtocol = protocol_for_session(
            self.store, self.session.id, self.settings.protocol, clock=clock, hold_on_fault=True
        )
        self.recorder: StoreRecorder = self.protocol.sink  # type: ignore[assignment]
        self.store_message = ""  # why the session is paused by a store fault ("" = fine)
        self._store_fault: BaseException | None = None
        self._store_fault_since: float | None = None
        self._paused_for_store = False
        self._lease_lost = False
        self._lease_renewed = clock()
        self.tracker = tracker or open_tracker(
            self.settings, mouse_position=lambda: self._mouse_xy, clock=clock
        )
        self.tracker.tracker.start()
        self.capture = GazeCapture(
            self.tracker.tracker,
            self.store,
            self.session.id,
            self.protocol,
            batch_ms=self.settings.tracker.sample_batch_ms,
            clock=clock,
        )
        self.recognizer = recognizer or recognizer_from_settings(self.settings.voice)
        self.voice = not isinstance(self.recognizer, KeyboardRecognizer)
        self.autopilot = autopilot
        self.calibration_dwell_s = calibration_dwell_s
        self.validation_dwell_s = validation_dwell_s
        self.audio_dir = audio_dir(config.store, self.session.uuid)

        self.mode = "start"
        self.message = ""  # the discreet line under the image (recognised word)
        self.warning = ""
        self.calibration: CalibrationResult | None = None
        self.validation: list[float] = []
        self._cal_target: tuple[float, float] | None = None
        self._cal_points: list[tuple[float, float]] = []
        self._val_windows: list[tuple[float, float]] = []
        self._shown: tuple[int, Phase, float] | None = None  # what the last paint showed
        self._image_cache: dict[str, QImage] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._auto_label_at: float | None = None
        self._bridge = _Bridge()
        self._bridge.calibration_point.connect(self._on_calibration_point)
        self._bridge.calibration_done.connect(self._on_calibration_done)
        self._bridge.recognized.connect(self._on_recognized)
        self._skip_calibration = skip_calibration

        self._phase_timer = QTimer(self)
        self._phase_timer.setSingleShot(True)
        self._phase_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._phase_timer.timeout.connect(self._on_deadline)
        self._poll_timer = QTimer(self)
        self._poll_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._poll_timer.timeout.connect(self._poll)
        self._poll_timer.start(10)
        self._retry_timer = QTimer(self)  # while the store fails: try again every second
        self._retry_timer.timeout.connect(self.retry_store)

        self.detector = UtteranceDetector()
        self._mic: Any = None
        if self.voice and microphone:
            from gazelab.annotation.speech import AnswerRecorder

            self._mic = AnswerRecorder()
        now = clock()
        payload = {"resume": config.resume, "start_trial": self.protocol.trial_index}
        self._commit(lambda: self.store.add_event(self.session.id, "app_open", now,
                                                  payload=payload))  # fmt: skip

    # -- store faults -----------------------------------------------------------------------
    def _commit(self, write: Callable[[], object]) -> None:
        """A store write of the window's own, in order with the protocol's (held on a fault)."""
        if not self._lease_lost:
            self.recorder.commit(write)

    @property
    def store_fault(self) -> BaseException | None:
        """The store error that paused the session, or ``None`` while the store works."""
        return self._store_fault

    def _on_store_fault(self, exc: BaseException) -> None:
        """Pause the session (keeping what is unwritten in memory) and say so on screen."""
        if self._store_fault is None:
            self._store_fault_since = self.clock()
            self._retry_timer.start(1000)
        self._store_fault = exc
        held, pending = len(self.recorder.held), self.capture.writer.pending
        self.store_message = (
            f"Session paused: {exc}.\n\nNothing is lost: {held} records and {pending} gaze"
            " samples wait in memory. Free disk space (or fix the store): the session then"
            " continues by itself. R retries now; Esc ends and loses what waits."
        )
        self._pause_for_store()
        self.update()

    def _pause_for_store(self) -> None:
        if self.mode == "trials" and self.protocol.phase not in (
            Phase.IDLE, Phase.PAUSED, Phase.DONE, Phase.QUIT,
        ):  # fmt: skip
            self.protocol.pause()
            self._paused_for_store = True
            self._phase_timer.stop()
            self._stop_listening()
            self._auto_label_at = None

    def _check_store(self) -> None:
        """Notice a fault the recorder held (writes inside protocol transitions, paints)."""
        if self.recorder.fault is not None and self._store_fault is None:
            self._on_store_fault(self.recorder.fault)
        elif self._store_fault is not None:
            self._pause_for_store()  # e.g. trials started while the store was failing

    def retry_store(self) -> bool:
        """Write what was held; on success clear the message and resume the session."""
        if self._store_fault is None or self._lease_lost:
            return True
        try:
            ok = self.recorder.retry()
            if ok:
                self.capture.flush()
                self.store.renew_lease(self.lease)
        except LeaseLostError as exc:
            self._on_lease_lost(exc)
            return False
        except STORE_FAULTS as exc:
            self.recorder.fault = exc
            ok = False
        if not ok:
            self._on_store_fault(self.recorder.fault or self._store_fault)
            return False
        fault, since = self._store_fault, self._store_fault_since
        self._store_fault = self._store_fault_since = None
        self.store_message = ""
        self._retry_timer.stop()
        now = self.clock()
        self._lease_renewed = now
        self._commit(lambda: self.store.add_event(
            self.session.id, "store_fault", since if since is not None else now,
            trial_index=self.protocol.trial_index,
            payload={"error": str(fault), "recovered_s": now},
        ))  # fmt: skip
        if self._paused_for_store:
            self._paused_for_store = False
            self._start_trials()  # the interrupted trial starts again at its first blank
        self.update()
        return True

    def _renew_lease(self) -> None:
        now = self.clock()
        if self._lease_lost or now - self._lease_renewed < LEASE_RENEW_S:
            return
        try:
            self.store.renew_lease(self.lease)
            self._lease_renewed = now
        except LeaseLostError as exc:
            self._on_lease_lost(exc)
        except STORE_FAULTS as exc:
            self._lease_renewed = now  # retried with the held records, and again in 5 s
            self._on_store_fault(exc)

    def _on_lease_lost(self, exc: BaseException) -> None:
        """Another process runs this session now: stop recording, say so, keep the window."""
        self._lease_lost = True
        self._store_fault = exc
        self._retry_timer.stop()
        self._phase_timer.stop()
        self._stop_listening()
        self.store_message = f"{exc}. Esc closes this window."
        self.mode = "lost"
        self.update()

    # -- geometry ---------------------------------------------------------------------------
    @property
    def screen_px(self) -> tuple[int, int]:
        return self.settings.display.resolution_px

    def _scale(self) -> float:
        """Widget pixels per screen pixel (1 when the window is the configured screen)."""
        w, h = self.screen_px
        return min(self.width() / w, self.height() / h) if self.width() and self.height() else 1.0

    def _origin(self) -> tuple[float, float, float]:
        """(x, y) of the screen's top-left in the widget, and the scale."""
        s = self._scale()
        w, h = self.screen_px
        return (self.width() - w * s) / 2, (self.height() - h * s) / 2, s

    def _to_widget(self, x: float, y: float) -> QPointF:
        ox, oy, s = self._origin()
        return QPointF(ox + x * s, oy + y * s)

    def _to_screen(self, p: QPointF) -> tuple[float, float]:
        ox, oy, s = self._origin()
        return ((p.x() - ox) / s, (p.y() - oy) / s)

    def layout_for(self, image_id: str) -> StimulusLayout:
        if image_id not in self._shapes:
            self._shapes[image_id] = tuple(self.images.image(image_id).shape[:2])
        return StimulusLayout(
            self.screen_px, self.settings.stimulus.square_px, self._shapes[image_id]
        )

    # -- flow -------------------------------------------------------------------------------
    def begin(self) -> None:
        """Leave the start screen: calibrate (unless skipped), then trials."""
        if self._skip_calibration or self.settings.tracker.kind == "none":
            self._start_trials()
        else:
            self.start_calibration()

    def start_calibration(self) -> None:
        self.mode = "calibration"
        self._cal_points = calibration_points(
            self.settings.protocol.calibration_points, self.screen_px
        )
        self._cal_target = None
        self.update()
        observer = self.tracker.observer

        def on_point(i: int, xy: tuple[float, float]) -> None:
            if observer is not None:
                observer.look_at(xy)
            self._bridge.calibration_point.emit(i, float(xy[0]), float(xy[1]))

        def work() -> None:
            try:
                res: Any = self.tracker.tracker.calibrate(
                    self._cal_points, dwell_s=self.calibration_dwell_s, on_point=on_point
                )
            except Exception as exc:  # shown on screen; the session can retry
                res = exc
            self._bridge.calibration_done.emit(res)

        threading.Thread(target=work, name="calibration", daemon=True).start()

    def _on_calibration_point(self, i: int, x: float, y: float) -> None:
        self._cal_target = (x, y)
        self.update()

    def _on_calibration_done(self, result: Any) -> None:
        self._cal_target = None
        if isinstance(result, Exception):
            self.warning = f"calibration failed: {result} — press R to try again"
            self.mode = "calibration_result"
            self.calibration = None
        else:
            self.calibration = result
            now = self.clock()
            self._commit(lambda: self.store.add_calibration(
                self.session.id, result, kind="calibration", local_s=now
            ))  # fmt: skip
            self.mode = "calibration_result"
        self.update()
        if self.autopilot is not None and self.calibration is not None:
            QTimer.singleShot(50, self.start_validation)

    def start_validation(self) -> None:
        """Show the targets again without calibrating; error = target vs median gaze."""
        self.mode = "validation"
        self._val_windows = []
        self._validation_step(0)

    def _validation_step(self, i: int) -> None:
        if i > 0:
            self._val_windows.append((self._val_start, self.clock()))
        if i >= len(self._cal_points):
            self._cal_target = None
            try:
                self.capture.flush()
                samples = self.store.samples(self.session.id, since_local_s=self._val_windows[0][0])
                self.validation = validation_errors_deg(
                    samples, self._cal_points, self._val_windows, self.settings.display
                )
            except STORE_FAULTS as exc:  # no validation this time; the session pauses
                self.validation = [math.nan] * len(self._cal_points)
                self._on_store_fault(exc)
            finite = [e for e in self.validation if math.isfinite(e)]
            mean = float(np.mean(finite)) if finite else math.nan
            pts = tuple(
                CalibrationPoint(x, y, e)
                for (x, y), e in zip(self._cal_points, self.validation, strict=True)
            )
            res = CalibrationResult(bool(finite) and mean < 1.0, mean, math.nan, math.nan, pts)
            now = self.clock()
            self._commit(lambda: self.store.add_calibration(
                self.session.id, res, kind="validation", local_s=now
            ))  # fmt: skip
            self._start_trials()
            return
        xy = self._cal_points[i]
        self._cal_target = xy
        if self.tracker.observer is not None:
            self.tracker.observer.look_at(xy)
        self._val_start = self.clock()
        self.update()
        QTimer.singleShot(int(self.validation_dwell_s * 1000), lambda: self._validation_step(i + 1))

    def _start_trials(self) -> None:
        self.mode = "trials"
        self.warning = ""
        if self.protocol.phase is Phase.IDLE:
            self._after_changes(self.protocol.start())
        elif self.protocol.phase is Phase.PAUSED:
            self.protocol.resume()
            self._after_changes([])
        self._check_store()
        self.update()

    def _after_changes(self, changes: list[Any]) -> None:
        """React to phase changes: steer the simulated eyes, repaint, re-arm the timer."""
        for ch in changes:
            if ch.phase is Phase.IMAGE:
                self.message = ""
                self._start_listening()
                if self.autopilot is not None:
                    self._auto_label_at = self.clock() + self.autopilot.view_s
            elif ch.phase is Phase.BLANK1:
                self._stop_listening()
            elif ch.phase is Phase.BLANK2 and self.protocol.image_id is not None:
                self._scaled_image(self.protocol.image_id)  # decode + scale before the onset
        obs = self.tracker.observer
        if obs is not None:
            if self.protocol.phase is Phase.IMAGE and self.protocol.image_id is not None:
                iid = self.protocol.image_id
                layout = self.layout_for(iid)
                obs.look_at_image(
                    self.images.regions.get(iid), layout.image_shape, layout.image_rect_on_screen
                )
            else:
                obs.look_at((self.screen_px[0] / 2, self.screen_px[1] / 2))
        deadline = self.protocol.next_deadline()
        if deadline is not None:
            self._phase_timer.start(max(0, int(round((deadline - self.clock()) * 1000))))
        if self.protocol.finished:
            self.mode = "done"
            self._stop_listening()
        self.repaint()  # paint now, not at the next event-loop turn: the onset is the paint

    def _on_deadline(self) -> None:
        if self.protocol.phase is Phase.PAUSED:
            return  # paused (a store fault) after the timer fired
        changes = self.protocol.tick()
        if not changes and self.protocol.next_deadline() is not None:
            # woke a little early: re-arm for the rest
            rest = self.protocol.next_deadline() - self.clock()  # type: ignore[operator]
            self._phase_timer.start(max(0, int(math.ceil(rest * 1000))))
            return
        self._after_changes(changes)

    def _poll(self) -> None:
        if self._lease_lost:
            self.tracker.tracker.drain()  # another process records this session now
            return
        try:
            self.capture.poll()  # a failed batch stays pending in the writer
        except STORE_FAULTS as exc:
            self._on_store_fault(exc)
        self._renew_lease()
        self._check_store()
        if self._mic is not None and self._mic.active:
            self.feed_audio(self._mic.read())
        warning = self.capture.warning or ""
        if warning != self.warning and (warning or self.warning.startswith("eye tracker")):
            self.warning = warning
            self.update()
        if (
            self._auto_label_at is not None
            and self.clock() >= self._auto_label_at
            and self.protocol.phase is Phase.IMAGE
            and self.autopilot is not None
        ):
            self._auto_label_at = None
            iid = self.protocol.image_id or ""
            label = (
                self.autopilot.label_of(iid)
                if self.autopilot.label_of
                else CLASSES[self.images.labels[iid]]
            )
            self.give_label(LabelAnswer(label, source="auto", text=label))
            self.advance()

    # -- labels -----------------------------------------------------------------------------
    def give_label(self, answer: LabelAnswer) -> bool:
        ok = self.protocol.give_label(answer)
        if ok:
            self.message = f"{answer.label}"
            self.update()
        return ok

    def advance(self) -> bool:
        ok = self.protocol.advance(self.settings.protocol.advance_key)
        if ok:
            try:
                self.capture.flush()  # the trial's samples are on disk before the next starts
            except STORE_FAULTS as exc:  # they stay pending; the session pauses below
                self._on_store_fault(exc)
            n = self.settings.protocol.validate_every_n_trials
            if n and not self.protocol.finished and self.protocol.trials_done % n == 0:
                self.protocol.pause()
                self.start_validation()
                return ok
            self._after_changes([])
        return ok

    def _start_listening(self) -> None:
        if self._mic is None:
            return
        self.detector.reset()
        try:
            self._mic.start()
        except Exception as exc:
            self.warning = f"{exc}"
            self._mic = None

    def _stop_listening(self) -> None:
        if self._mic is not None:
            try:
                self._mic.stop()
            except Exception:
                pass

    def feed_audio(self, audio: NDArray[np.int16]) -> None:
        """Microphone audio (or a test's) for the answer on screen; recognised off the GUI thread."""
        if self.protocol.phase is not Phase.IMAGE:
            return
        for utterance in self.detector.feed(audio):
            self._recognize(utterance)

    def _recognize(self, utterance: NDArray[np.int16]) -> None:
        trial = self.protocol.trial_index
        n = (
            len(list(self.audio_dir.glob(f"trial{trial:04d}-*.wav")))
            if self.audio_dir.exists()
            else 0
        )
        wav: Path | None = self.audio_dir / f"trial{trial:04d}-{n + 1:02d}.wav"
        try:
            write_wav(wav, utterance)  # type: ignore[arg-type]
        except OSError as exc:  # a full disk: recognise anyway, without the recording
            wav = None
            self.warning = f"cannot save the answer's audio: {exc}"

        def work() -> None:
            result = self.recognizer.recognize(utterance)
            self._bridge.recognized.emit(result, None if wav is None else str(wav), trial)

        threading.Thread(target=work, name="recognizer", daemon=True).start()

    def _on_recognized(self, result: LabelResult, wav: str | None, trial: int) -> None:
        now = self.clock()
        payload = {"text": result.text, "confidence": result.confidence, "audio": wav,
                   "label": result.label}  # fmt: skip
        self._commit(lambda: self.store.add_event(self.session.id, "speech", now,
                                                  trial_index=trial, payload=payload))  # fmt: skip
        if trial != self.protocol.trial_index or self.protocol.phase is not Phase.IMAGE:
            return  # the answer came after the participant moved on: kept as an event only
        if result.label is None:
            self.message = "not understood, please repeat"
        else:
            self.give_label(LabelAnswer(result.label, "voice", result.text, result.confidence, wav))
        self.update()

    # -- Qt events --------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        text = event.text()
        now = self.clock()
        trial = self.protocol.trial_index if self.mode == "trials" else None
        payload = {"key": text or int(key), "mode": self.mode}
        self._commit(lambda: self.store.add_event(self.session.id, "key", now,
                                                  trial_index=trial, payload=payload))  # fmt: skip
        if key == Qt.Key.Key_Escape:
            self.finish()
            return
        if self._store_fault is not None:  # paused until the store works: R retries now
            if key == Qt.Key.Key_R:
                self.retry_store()
            return
        if self.mode == "start" and key == Qt.Key.Key_Space:
            self.begin()
        elif self.mode == "calibration_result":
            if key == Qt.Key.Key_R:
                self.start_calibration()
            elif key == Qt.Key.Key_Space and self.calibration is not None:
                self.start_validation()
        elif self.mode == "trials":
            label = KeyboardRecognizer.label_for_key(text)
            if label is not None:
                self.give_label(LabelAnswer(label, source="key", text=text))
            elif key == KEY_NAMES[self.settings.protocol.advance_key]:
                self.advance()
            elif key == Qt.Key.Key_P:
                if self.protocol.phase is Phase.PAUSED:
                    self._start_trials()
                elif self.protocol.pause():
                    self._phase_timer.stop()
                    self._stop_listening()
                    self.update()
            elif key == Qt.Key.Key_C and self.protocol.phase is Phase.PAUSED:
                self.start_calibration()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._mouse_xy = self._to_screen(event.position())

    def finish(self) -> None:
        """End (or interrupt) the session: commit everything and close."""
        if self.mode == "closed":
            return
        lease_lost = self._lease_lost
        if not self.protocol.finished and not lease_lost:
            self.protocol.quit()
        self.mode = "closed"
        self._poll_timer.stop()
        self._phase_timer.stop()
        self._retry_timer.stop()
        self._stop_listening()
        try:
            self.tracker.tracker.stop()
            if not lease_lost:
                self._last_writes()
        finally:
            self.tracker.close()
        self.close()

    def _last_writes(self) -> None:
        """Commit what is pending; if the store still fails, say what is lost, then go."""
        try:
            self.capture.close()
        except STORE_FAULTS as exc:
            self.recorder.fault = self.recorder.fault or exc
        self.recorder.retry()
        try:
            self.store.release_lease(self.lease)
        except STORE_FAULTS as exc:  # it goes stale when this process ends
            self.recorder.fault = self.recorder.fault or exc
        held, pending = len(self.recorder.held), self.capture.writer.pending
        if held or pending:
            import sys

            print(f"gazelab annotate: {held} records and {pending} gaze samples of session"
                  f" {self.session.id} could not be written to {self.store.path}"
                  f" ({self.recorder.fault}); the session resumes at its first unlabelled"
                  " image", file=sys.stderr)  # fmt: skip

    def closeEvent(self, event: Any) -> None:
        if self.mode != "closed":
            self.finish()
        super().closeEvent(event)

    # -- painting ---------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUNDS[self.settings.stimulus.background])
        if self.mode == "trials":
            self._paint_trial(p)
        elif self.mode in ("calibration", "validation"):
            self._paint_target(p)
        elif self.mode == "calibration_result":
            self._paint_calibration_result(p)
        else:
            self._paint_message(p)
        if self.warning:
            self._text(p, self.warning, QRectF(0, 0, self.width(), 40), QColor(255, 210, 60), 14)
        if self.store_message:  # a store fault: the whole screen says so
            band = QRectF(0, self.height() * 0.15, self.width(), self.height() * 0.7)
            p.fillRect(band, QColor(40, 20, 20))
            inner = band.adjusted(self.width() * 0.05, 0, -self.width() * 0.05, 0)
            self._text(p, self.store_message, inner, QColor(255, 120, 100), 7)
        p.end()
        now = self.clock()
        if self.mode == "trials":
            shown = (
                self.protocol.trial_index,
                self.protocol.phase,
                self.protocol.phase_scheduled_s,
            )
            if shown != self._shown:  # the first paint of a phase: its onset
                self._shown = shown
                self.protocol.flipped(self.protocol.phase, now)

    def _text(self, p: QPainter, text: str, rect: QRectF, color: QColor, size: int) -> None:
        f = QFont()
        f.setPixelSize(max(8, int(size * self._scale() * 2)))
        p.setFont(f)
        p.setPen(color)
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)

    def progress_text(self) -> str:
        done, n = self.protocol.trials_done, self.protocol.n_trials
        return f"{done} of {n} images labelled, {n - done} left"

    def _paint_message(self, p: QPainter) -> None:
        if self.mode == "start":
            lines = [
                f"Participant {self.config.participant} — session {self.session.id}",
                self.progress_text(),
                "Say the expression you see (or press 0–7), then press "
                f"{self.settings.protocol.advance_key} to go on.",
                "Press space to begin.",
            ]
        elif self.mode == "done":
            lines = ["Thank you — the session is complete.", self.progress_text(), "Esc closes."]
        else:
            lines = [""]
        self._text(p, "\n\n".join(lines), QRectF(self.rect()), QColor(235, 235, 235), 14)

    def _paint_trial(self, p: QPainter) -> None:
        phase = self.protocol.phase
        if phase is Phase.CROSS:
            c = self._to_widget(self.screen_px[0] / 2, self.screen_px[1] / 2)
            s = self._scale()
            half = self.settings.protocol.cross_size_px * s / 2
            pen = QPen(
                QColor(0, 0, 0)
                if self.settings.stimulus.background == "grey"
                else QColor(255, 255, 255)
            )
            pen.setWidthF(max(1.0, self.settings.protocol.cross_width_px * s))
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            p.drawLine(QPointF(c.x() - half, c.y()), QPointF(c.x() + half, c.y()))
            p.drawLine(QPointF(c.x(), c.y() - half), QPointF(c.x(), c.y() + half))
        elif phase is Phase.IMAGE and self.protocol.image_id is not None:
            iid = self.protocol.image_id
            x0, y0, w, h = self.layout_for(iid).image_rect_on_screen
            tl = self._to_widget(x0, y0)
            p.drawImage(QPointF(round(tl.x()), round(tl.y())), self._scaled_image(iid))
            if self.message:  # discreet: small, grey, below the square
                sq = self.settings.stimulus.square_px
                y = self.screen_px[1] / 2 + sq / 2
                a = self._to_widget(0, y)
                rect = QRectF(0, a.y() + 4, self.width(), max(20.0, self.height() - a.y() - 8))
                self._text(p, self.message, rect, QColor(200, 200, 200), 9)
        elif phase is Phase.PAUSED and not self.store_message:
            self._text(
                p,
                f"Paused — {self.progress_text()}\n\nP continues, C recalibrates, Esc ends.",
                QRectF(self.rect()),
                QColor(235, 235, 235),
                14,
            )

    def _scaled_image(self, iid: str) -> QImage:
        """The image at its on-screen size, scaled once (during the blank before it)."""
        key = f"{iid}@{self.width()}x{self.height()}"
        if key not in self._image_cache:
            _, _, w, h = self.layout_for(iid).image_rect_on_screen
            s = self._scale()
            img = to_qimage(self.images.image(iid)).scaled(
                max(1, round(w * s)),
                max(1, round(h * s)),
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            self._image_cache = {k: v for k, v in self._image_cache.items() if k.startswith(iid)}
            self._image_cache[key] = img
        return self._image_cache[key]

    def _paint_target(self, p: QPainter) -> None:
        if self._cal_target is None:
            return
        c = self._to_widget(*self._cal_target)
        s = self._scale()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(255, 255, 255))
        p.drawEllipse(c, 14 * s, 14 * s)
        p.setBrush(QColor(0, 0, 0))
        p.drawEllipse(c, 4 * s, 4 * s)

    def _paint_calibration_result(self, p: QPainter) -> None:
        res = self.calibration
        if res is not None:
            for pt in res.points:
                good = pt.accuracy_deg < 0.7
                color = (
                    QColor(60, 200, 80)
                    if good
                    else QColor(230, 160, 40)
                    if pt.accuracy_deg < 1.2
                    else QColor(220, 60, 60)
                )
                c = self._to_widget(pt.x, pt.y)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(color)
                p.drawEllipse(c, 10, 10)
                self._text(
                    p, f"{pt.accuracy_deg:.2f}°", QRectF(c.x() - 60, c.y() + 12, 120, 30), color, 8
                )
            head = f"Calibration {'passed' if res.result else 'FAILED'} — mean error {res.deg:.2f}°"
        else:
            head = "Calibration did not finish"
        self._text(
            p,
            head + "\nSpace: validate and start — R: recalibrate — Esc: end",
            QRectF(0, self.height() * 0.2, self.width(), self.height() * 0.22),
            QColor(235, 235, 235),
            9,
        )


def run_annotation(
    config: SessionConfig,
    *,
    windowed: bool = False,
    autopilot: Autopilot | None = None,
    skip_calibration: bool = False,
    auto_start: bool = False,
) -> int:
    """Open the window and run the Qt event loop; returns the session id."""
    from gazelab.app.qt import application

    app = application()
    win = AnnotationWindow(config, autopilot=autopilot, skip_calibration=skip_calibration)
    if windowed:
        w, h = config.settings.display.resolution_px
        win.resize(min(w, 1600), min(h, 900))
        win.show()
    else:
        win.showFullScreen()
    if auto_start or autopilot is not None:
        QTimer.singleShot(100, win.begin)
    if autopilot is not None:
        win.destroyed.connect(app.quit)

        def check_done() -> None:
            if win.mode == "done":
                win.finish()
                app.quit()

        t = QTimer(win)
        t.timeout.connect(check_done)
        t.start(100)
    app.exec()
    return win.session.id
