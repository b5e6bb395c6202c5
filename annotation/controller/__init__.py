"""The annotation session without Qt: create/resume, calibrate, validate, poll, label, advance.

:class:`AnnotationSession` owns everything a session does that is neither
painting nor timing nor keys (DESIGN "a Qt-free session controller", issue 17):
the set-up checks, the store record and its lease, the tracker, the protocol
state machine (SPEC §2), gaze capture, calibration and validation results,
labels, pauses, store faults and the end. The full-screen window
(:mod:`gazelab.app.annotate`) paints its state, times its phases and forwards
keys; the headless runner (:mod:`gazelab.annotation.simulated`) drives the same
object with a sleep loop; the experimenter view observes it. A session with a
real tracker runs from Python without Qt::

    s = AnnotationSession(config)            # checks, connects the tracker, then records
    s.calibrate(dwell_s=0.75)
    s.validate(dwell_s=1.2)                  # blocking; the window steps it with timers
    s.start_trials()
    while not s.finished:
        s.tick(); s.poll()
        ...  s.give_label(LabelAnswer("happy")); s.advance()
    s.finish()

The session row is created only once the tracker is connected, so a tracker
that cannot connect leaves nothing behind in the store.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gazelab.annotation.capture import GazeCapture
from gazelab.annotation.protocol import (
    STORE_FAULTS,
    LabelAnswer,
    LabelingProtocol,
    ListSink,
    Phase,
    PhaseChange,
    ProtocolError,
    StoreRecorder,
    audio_dir,
    protocol_for_session,
    session_order,
)
from gazelab.annotation.session import (
    OpenTracker,
    SessionConfig,
    SessionSetupError,
    check_images,
    fit_to_screen,
    open_tracker,
)
from gazelab.annotation.store import (
    LEASE_RENEW_S,
    LeaseLostError,
    SessionRecord,
    SessionStore,
)
from gazelab.errors import GazelabError
from gazelab.gaze.geometry import StimulusLayout
from gazelab.gaze.quality import (
    PointQuality,
    QualityThresholds,
    ValidationQuality,
    validation_quality,
    validation_run_quality,
)
from gazelab.gaze.trackers.base import CalibrationPoint, CalibrationResult, GazeSample
from gazelab.gaze.trackers.protocol import calibration_points
from gazelab.models.datasets.base import ImageSet
from gazelab.models.datasets.registry import open_image_set
from gazelab.settings import Settings

Listener = Callable[[str, dict[str, Any]], None]


class _RecentSamples:
    """The session's tracker, seen through: every drained sample is also kept for views
    (the last ``keep_s`` seconds); everything else is the tracker's own."""

    def __init__(self, tracker: Any, keep_s: float = 2.0) -> None:
        self._tracker = tracker
        self.keep_s = keep_s
        self.samples: deque[GazeSample] = deque()
        self.received = 0
        self.valid = 0

    def drain(self) -> list[GazeSample]:
        out: list[GazeSample] = self._tracker.drain()
        if out:
            self.samples.extend(out)
            self.received += len(out)
            self.valid += sum(1 for g in out if g.valid)
            cut = out[-1].local_s - self.keep_s
            while self.samples and self.samples[0].local_s < cut:
                self.samples.popleft()
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracker, name)


def participant_index(store: SessionStore, pseudonym: str) -> int:
    """The participant's place among the store's participants, by first session (0-based;
    a new participant comes after all): the row of a Latin-square order."""
    seen: list[str] = []
    for rec in store.sessions():
        if rec.participant not in seen:
            seen.append(rec.participant)
    return seen.index(pseudonym) if pseudonym in seen else len(seen)


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


class AnnotationSession:
    """One annotation session, new or resumed (see the module docstring).

    Parameters
    ----------
    config : what the set-up dialog or ``gazelab annotate`` asked for.
    store : an open store (default: ``config.store``; only a new session may create it).
    tracker : an already connected tracker (default: the one the settings name).
    images : the images (default: ``config.images`` opened and checked).
    clock : the session's monotonic clock, seconds.
    mouse_position : for the mouse tracker, where the pointer is (screen px).
    hold_on_fault : hold store writes in memory on a store fault (a live session) instead
        of raising (a headless run that should stop).
    actual_screen_px : the screen the session is shown on, when known (a full-screen
        window): a resumed session recorded on another resolution is refused.
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        store: SessionStore | None = None,
        tracker: OpenTracker | None = None,
        images: ImageSet | None = None,
        clock: Callable[[], float] = time.monotonic,
        mouse_position: Callable[[], tuple[float, float] | None] | None = None,
        hold_on_fault: bool = True,
        actual_screen_px: tuple[int, int] | None = None,
    ) -> None:
        config.check()
        self.config = config
        self.clock = clock
        self.settings: Settings = config.settings
        self.notes: list[str] = []  # what set-up decided and the experimenter should know
        self.order_info: dict[str, Any] = {}
        self.last_label = ""  # what a view shows of the answers
        self.last_speech = ""
        self._listeners: list[Listener] = []
        # A new store is created only once the tracker and the images are known to work: a
        # set-up that fails leaves no empty store behind.
        new_store = store is None and config.resume is None and not Path(config.store).exists()
        opened = store or (
            None if new_store else SessionStore(config.store, create=config.resume is None)
        )
        self.images: ImageSet = images or open_image_set(config.images)
        self._shapes: dict[str, tuple[int, int]] = {}
        # every check before anything is written, connected or calibrated (SPEC §2 set-up)
        order: list[str] | None = None
        if config.resume is not None:
            assert opened is not None
            self.store = opened
            rec = self.store.session(config.resume)
            self._check_resume(rec)
            self._last_recorded_s = self.store.last_recorded_s(rec.id)  # before this run writes
            self.settings = self._resumed_settings(rec)
            first = self.store.first_unlabelled_trial(rec.id)  # None: every image labelled
            n = len(rec.stimulus_order)
            check_images(self.images, rec.stimulus_order[n if first is None else first :])
        else:
            self.settings, note = fit_to_screen(self.settings)
            if note:
                self.notes.append(note)
            p = self.settings.protocol
            row = 0 if opened is None else participant_index(opened, config.participant)
            order, seed, self.order_info = session_order(
                self.images.ids, p.order, participant=config.participant,
                participant_index=row, seed=p.seed,
            )  # fmt: skip
            check_images(self.images, order)
        self.tracker = tracker or open_tracker(
            self.settings, mouse_position=mouse_position, clock=clock
        )
        if opened is None:
            try:
                opened = SessionStore(config.store, create=True)
            except BaseException:
                self.tracker.close()
                raise
        self.store = opened
        try:
            if config.resume is not None:
                self.record = self.store.session(config.resume)
            else:
                assert order is not None
                self.record = self.store.create_session(
                    config.participant,
                    settings_toml=self.settings.to_toml(),
                    seed=seed,
                    image_source=self.images.spec,
                    stimulus_order=order,
                    start_local_s=clock(),
                )
            self.lease = self.store.acquire_lease(self.record.id)
        except BaseException:
            self.tracker.close()
            raise
        if actual_screen_px is not None and tuple(actual_screen_px) != self.screen_px:
            a, b = actual_screen_px, self.screen_px
            if config.resume is not None:
                self.store.release_lease(self.lease)
                self.tracker.close()
                raise SessionSetupError(
                    f"this screen is {a[0]}x{a[1]} px but session {self.record.id} was recorded"
                    f" on {b[0]}x{b[1]}: resume it on a {b[0]}x{b[1]} screen, or its gaze would"
                    " not match the stimuli"
                )
            self.notes.append(f"this screen is {a[0]}x{a[1]} px, the settings say {b[0]}x{b[1]}")
        try:
            self._open(hold_on_fault)
        except BaseException:
            self.store.release_lease(self.lease)  # a failed start leaves the session free
            self.tracker.close()
            raise

    def _check_resume(self, rec: SessionRecord) -> None:
        cfg = self.config
        if rec.participant != cfg.participant:
            raise SessionSetupError(
                f"session {rec.id} in {cfg.store} belongs to participant"
                f" {rec.participant!r}, not {cfg.participant!r}: resume it with"
                f" --participant {rec.participant}, or leave out --resume for a new session"
            )
        missing = [i for i in rec.stimulus_order if i not in self.images.labels]
        if missing:
            raise SessionSetupError(
                f"{len(missing)} of the {len(rec.stimulus_order)} images of session {rec.id}"
                f" are not in {cfg.images} (first: {missing[0]!r}); resume with the"
                f" images the session was made with: --images {rec.image_source}"
            )

    def _resumed_settings(self, rec: SessionRecord) -> Settings:
        """The session's own settings; only how to reach the tracker and the voice choice
        come from now. Other screen, stimulus or timing values given now are ignored."""
        given = self.config.settings
        try:
            stored = Settings.from_toml(rec.settings_toml, source=f"session {rec.id}")
        except GazelabError as exc:  # a session stored without settings: today's are used
            self.notes.append(f"session {rec.id} has no usable stored settings ({exc})")
            return given
        ignored = [
            name
            for name in ("display", "stimulus", "protocol")
            if getattr(given, name) != getattr(stored, name)
        ]
        if ignored:
            w, h = stored.display.resolution_px
            self.notes.append(
                f"resume: session {rec.id}'s own {', '.join(ignored)} settings are used"
                f" (screen {w}x{h} px, square {stored.stimulus.square_px} px); the values"
                " given now are ignored"
            )
        return dataclasses.replace(stored, tracker=given.tracker, voice=given.voice)

    def _open(self, hold_on_fault: bool) -> None:
        clock = self.clock
        self.protocol: LabelingProtocol = protocol_for_session(
            self.store, self.record.id, self.settings.protocol, clock=clock,
            hold_on_fault=hold_on_fault,
        )  # fmt: skip
        self.recorder: StoreRecorder = self.protocol.sink  # type: ignore[assignment]
        self.tracker.tracker.start()
        self.live = _RecentSamples(self.tracker.tracker)
        self.capture = GazeCapture(
            self.live,  # the tracker, seen through (see _RecentSamples)
            self.store,
            self.record.id,
            self.protocol,
            batch_ms=self.settings.tracker.sample_batch_ms,
            clock=clock,
        )
        self.audio_dir = audio_dir(self.config.store, self.record.uuid)
        self.calibration: CalibrationResult | None = None
        self.validation: ValidationOutcome | None = None
        self.store_message = ""  # why the session is paused by a store fault ("" = fine)
        self.lease_lost = False
        self.paused_for_store = False
        self.finished_at: float | None = None
        self._store_fault: BaseException | None = None
        self._store_fault_since: float | None = None
        self._lease_renewed = clock()
        self._val_targets: list[tuple[float, float]] = []
        self._val_windows: list[tuple[float, float]] = []
        self._val_start: float | None = None
        self._val_redo: list[int] | None = None
        self._val_kind = "calibration-validation"
        self._overridden = False
        self._main: tuple[LabelingProtocol, Any, dict[str, tuple[int, int]]] | None = None
        now = clock()
        self._opened_s = now
        if self.config.resume is not None:
            self._close_interrupted_run(now)
        payload = {"resume": self.config.resume, "start_trial": self.protocol.trial_index,
                   "order": self.order_info, "notes": self.notes}  # fmt: skip
        self.commit(lambda: self.store.add_event(self.record.id, "app_open", now,
                                                 payload=payload))  # fmt: skip

    def _close_interrupted_run(self, now: float) -> None:
        """A resume: the time since the last run's last record is a recording gap (not data
        loss), and the viewing of the image shown again, if it had begun, is kept but
        marked, so the re-shown viewing is analysed alone."""
        sid, trial = self.record.id, self.protocol.trial_index
        last = self._last_recorded_s
        closed = any(e["kind"] in ("quit", "done") for e in self.store.events(sid)[-3:])
        reason = "session closed, then resumed" if closed else "the app stopped (crash or kill)"
        if last is not None and last < now:
            self.store.add_gap(sid, last, now, reason)
        if trial < len(self.record.stimulus_order):
            n = self.store.mark_interrupted_viewing(sid, trial)
            if n:
                self.store.add_event(sid, "viewing_interrupted", now, trial_index=trial,
                                     payload={"samples": n, "reason": reason})  # fmt: skip

    # -- observers --------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """``listener(kind, details)`` is called on every change a view may show."""
        self._listeners.append(listener)

    def _notify(self, what: str, **details: Any) -> None:
        for listener in list(self._listeners):
            listener(what, details)

    # -- queries ----------------------------------------------------------------------------
    @property
    def session_id(self) -> int:
        return self.record.id

    @property
    def screen_px(self) -> tuple[int, int]:
        return self.settings.display.resolution_px

    @property
    def finished(self) -> bool:
        return self.protocol.finished

    @property
    def observer(self) -> Any:
        """The simulated participant's eyes (a simulated tracker), else ``None``."""
        return self.tracker.observer

    @property
    def store_fault(self) -> BaseException | None:
        """The store error that paused the session, or ``None`` while the store works."""
        return self._store_fault

    def image_shape(self, image_id: str) -> tuple[int, int]:
        if image_id not in self._shapes:
            h, w = self.images.image(image_id).shape[:2]
            self._shapes[image_id] = (int(h), int(w))
        return self._shapes[image_id]

    def layout_for(self, image_id: str) -> StimulusLayout:
        """Where ``image_id`` lies on screen (the stimulus frame of SPEC §2)."""
        return StimulusLayout(
            self.screen_px, self.settings.stimulus.square_px, self.image_shape(image_id)
        )

    def progress_text(self) -> str:
        done, n = self.protocol.trials_done, self.protocol.n_trials
        return f"{done} of {n} images labelled, {n - done} left"

    @property
    def resumed(self) -> bool:
        """This run continues a session recorded earlier."""
        return self.config.resume is not None

    def resume_text(self) -> str:
        """Where a resumed session continues, in the participant's words."""
        done, n = self.protocol.trials_done, self.protocol.n_trials
        return f"Welcome back — the session continues with image {min(done + 1, n)} of {n}."

    # -- store writes and faults ------------------------------------------------------------
    def commit(self, write: Callable[[], object]) -> None:
        """A store write of the session's own, in order with the protocol's (held on a fault)."""
        if not self.lease_lost:
            self.recorder.commit(write)

    def event(self, kind: str, *, trial_index: int | None = None, **payload: Any) -> None:
        """Store an event of the session's own (a key, a recognised answer ...); views hear it.

        During practice nothing is stored (practice is not data: its trial numbers would
        name the study's own images in an export); views still hear it."""
        now = self.clock()
        if self.practising:
            self._notify("event", event=kind, payload=payload)
            return
        self.commit(lambda: self.store.add_event(self.record.id, kind, now,
                                                 trial_index=trial_index, payload=payload))  # fmt: skip
        if kind == "speech":
            self.last_speech = str(payload.get("text") or "")
        self._notify("event", event=kind, payload=payload)

    def on_store_fault(self, exc: BaseException) -> None:
        """Pause the session (keeping what is unwritten in memory) and say why."""
        if self._store_fault is None:
            self._store_fault_since = self.clock()
        self._store_fault = exc
        held, pending = len(self.recorder.held), self.capture.writer.pending
        self.store_message = (
            f"Session paused: {exc}.\n\nNothing is lost: {held} records and {pending} gaze"
            " samples wait in memory. Free disk space (or fix the store): the session then"
            " continues by itself. R retries now; Esc ends and loses what waits."
        )
        self._pause_for_store()
        self._notify("store_fault", error=str(exc))

    def _pause_for_store(self) -> None:
        if self.protocol.phase not in (Phase.IDLE, Phase.PAUSED, Phase.DONE, Phase.QUIT):
            self.protocol.pause()
            self.paused_for_store = True

    def check_store(self) -> None:
        """Notice a fault the recorder held (writes inside protocol transitions)."""
        if self.recorder.fault is not None and self._store_fault is None:
            self.on_store_fault(self.recorder.fault)
        elif self._store_fault is not None:
            self._pause_for_store()  # e.g. trials started while the store was failing

    def retry_store(self) -> bool:
        """Write what was held; on success clear the message and resume the session."""
        if self._store_fault is None or self.lease_lost:
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
            self.on_store_fault(self.recorder.fault or self._store_fault)
            return False
        fault, since = self._store_fault, self._store_fault_since
        self._store_fault = self._store_fault_since = None
        self.store_message = ""
        now = self.clock()
        self._lease_renewed = now
        self.commit(lambda: self.store.add_event(
            self.record.id, "store_fault", since if since is not None else now,
            trial_index=self.protocol.trial_index,
            payload={"error": str(fault), "recovered_s": now},
        ))  # fmt: skip
        self._notify("store_back")
        return True

    def _renew_lease(self) -> None:
        now = self.clock()
        if self.lease_lost or now - self._lease_renewed < LEASE_RENEW_S:
            return
        try:
            self.store.renew_lease(self.lease)
            self._lease_renewed = now
        except LeaseLostError as exc:
            self._on_lease_lost(exc)
        except STORE_FAULTS as exc:
            self._lease_renewed = now  # retried with the held records, and again in 5 s
            self.on_store_fault(exc)

    def _on_lease_lost(self, exc: BaseException) -> None:
        """Another process runs this session now: stop recording and say so."""
        self.lease_lost = True
        self._store_fault = exc
        self.store_message = f"{exc}. Esc closes this window."
        self._notify("lease_lost", error=str(exc))

    # -- gaze -------------------------------------------------------------------------------
    def poll(self) -> int:
        """Move gaze samples into the store, renew the lease, notice store faults."""
        if self.lease_lost or self.practising:  # another process records it / not data
            self.tracker.tracker.drain()
            if self.practising:
                self._renew_lease()
            return 0
        n = 0
        try:
            n = self.capture.poll()  # a failed batch stays pending in the writer
        except STORE_FAULTS as exc:
            self.on_store_fault(exc)
        self._renew_lease()
        self.check_store()
        return n

    @property
    def tracker_warning(self) -> str:
        return self.capture.warning or ""

    def recent_gaze(self, seconds: float = 1.0) -> list[GazeSample]:
        """The samples of the last ``seconds`` (as received; valid and invalid)."""
        samples = list(self.live.samples)
        if not samples:
            return []
        cut = samples[-1].local_s - seconds
        return [g for g in samples if g.local_s >= cut]

    def sample_rate_hz(self) -> float:
        """Samples per second over the last second received (0 without any)."""
        last = self.recent_gaze(1.0)
        if len(last) < 2:
            return 0.0
        span = last[-1].local_s - last[0].local_s
        return (len(last) - 1) / span if span > 0 else 0.0

    def data_loss_pct(self) -> float:
        """Samples missing or invalid so far, percent of the tracker's nominal rate × the
        time since the session opened (NaN before any time passed)."""
        elapsed = self.clock() - self._opened_s
        expected = self.settings.tracker.rate_hz * elapsed
        if expected <= 0:
            return math.nan
        return 100.0 * max(0.0, expected - self.live.valid) / expected

    def steer_observer(self) -> None:
        """A simulated participant looks where the screen says: the image, else the centre."""
        obs = self.observer
        if obs is None:
            return
        iid = self.protocol.image_id
        if self.protocol.phase is Phase.IMAGE and iid is not None:
            layout = self.layout_for(iid)
            obs.look_at_image(
                self.images.regions.get(iid), layout.image_shape, layout.image_rect_on_screen
            )
        else:
            obs.look_at((self.screen_px[0] / 2, self.screen_px[1] / 2))

    # -- calibration ------------------------------------------------------------------------
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
        meaningful = self.settings.tracker.kind != "mouse"
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

    # -- practice ---------------------------------------------------------------------------
    PRACTICE_IMAGES = "synthetic:{n}:90210"
    """Practice faces: synthetic, never the study's own images (no priming), not stored."""

    @property
    def practising(self) -> bool:
        return self._main is not None

    def start_practice(self) -> list[PhaseChange]:
        """Run ``protocol.practice_trials`` practice trials before the study's own: the same
        screens and keys, but nothing of them is stored (labels, phases, gaze)."""
        n = self.settings.protocol.practice_trials
        if n <= 0 or self.practising:
            raise ProtocolError("no practice trials to start (protocol.practice_trials = 0)")
        images = open_image_set(self.PRACTICE_IMAGES.format(n=n))
        self._main = (self.protocol, self.images, self._shapes)
        self.images, self._shapes = images, {}
        self.protocol = LabelingProtocol(images.ids, self.settings.protocol, clock=self.clock,
                                         sink=ListSink())  # fmt: skip
        changes = self.protocol.start()
        self.steer_observer()
        self._notify("practice", n=n)
        return changes

    def end_practice(self) -> None:
        """Back to the study's own trials (they start with :meth:`start_trials`)."""
        if self._main is None:
            return
        self.protocol, self.images, self._shapes = self._main
        self._main = None
        self.event("practice_done", n=self.settings.protocol.practice_trials)
        self._notify("practice_done")

    # -- trials -----------------------------------------------------------------------------
    def start_trials(self) -> list[PhaseChange]:
        """Start the trials, or continue them after a pause (the trial starts again).

        Refused (:class:`ProtocolError`) while the last validation failed its thresholds
        and was not overridden (:meth:`override`)."""
        if not self.may_start():
            v = self.validation
            raise ProtocolError(
                f"the validation did not pass ({'; '.join(v.problems if v else ())}):"
                " recalibrate, measure the failing targets again, or override"
            )
        changes: list[PhaseChange] = []
        if self.protocol.phase is Phase.IDLE:
            changes = self.protocol.start()
        elif self.protocol.phase is Phase.PAUSED:
            self.paused_for_store = False
            self.protocol.resume()
        self.check_store()
        self.steer_observer()
        self._notify("phase", phase=self.protocol.phase)
        return changes

    def tick(self) -> list[PhaseChange]:
        """Enter every timed phase that is due; steers a simulated participant."""
        if self.protocol.phase is Phase.PAUSED:
            return []
        changes = self.protocol.tick()
        if changes:
            self.steer_observer()
            self._notify("phase", phase=self.protocol.phase)
        return changes

    def give_label(self, answer: LabelAnswer) -> bool:
        ok = self.protocol.give_label(answer)
        if ok:
            self.last_label = answer.label
            self._notify("label", label=answer.label, text=answer.text, source=answer.source)
        return ok

    def advance(self) -> str:
        """The advance key. Returns ``""`` (refused: no label yet), ``"next"``, ``"validate"``
        (a periodic validation is due; the protocol is paused), ``"break"`` (a rest is due,
        every ``protocol.break_every_n_trials``; paused), ``"practice_done"`` (the last
        practice trial; back to the study's trials, not started) or ``"done"``."""
        if not self.protocol.advance(self.settings.protocol.advance_key):
            return ""
        if self.practising:
            if not self.protocol.finished:
                self.steer_observer()
                return "next"
            self.end_practice()
            return "practice_done"
        try:
            self.capture.flush()  # the trial's samples are on disk before the next starts
        except STORE_FAULTS as exc:  # they stay pending; the session pauses
            self.on_store_fault(exc)
        self.steer_observer()
        self._notify("phase", phase=self.protocol.phase)
        if self.protocol.finished:
            return "done"
        n = self.settings.protocol.validate_every_n_trials
        if n and self.protocol.trials_done % n == 0:
            self.protocol.pause()
            return "validate"
        b = self.settings.protocol.break_every_n_trials
        if b and self.protocol.trials_done % b == 0:
            self.protocol.pause()
            self.event("break", trial_index=self.protocol.trial_index)
            return "break"
        return "next"

    def pause(self) -> bool:
        ok = self.protocol.pause()
        if ok:
            self._notify("phase", phase=self.protocol.phase)
        return ok

    # -- the end ----------------------------------------------------------------------------
    def finish(self) -> list[str]:
        """End (or interrupt) the session: commit everything, release the lease, close the
        tracker. Returns what could not be written (empty when everything is on disk)."""
        if self.finished_at is not None:
            return []
        self.finished_at = self.clock()
        lease_lost = self.lease_lost
        if not self.protocol.finished and not lease_lost:
            self.protocol.quit()
        lost: list[str] = []
        try:
            self.tracker.tracker.stop()
            if not lease_lost:
                lost = self._last_writes()
        finally:
            self.tracker.close()
        self._notify("finished")
        return lost

    def _last_writes(self) -> list[str]:
        """Commit what is pending; if the store still fails, say what is lost."""
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
            return [
                f"{held} records and {pending} gaze samples of session {self.record.id} could"
                f" not be written to {self.store.path} ({self.recorder.fault}); the session"
                " resumes at its first unlabelled image"
            ]
        return []
