"""The session controller itself: the set-up checks, a new or resumed session's store
record and lease, and opening it (see the package docstring).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gazelab.annotation.capture import GazeCapture
from gazelab.annotation.controller.gaze import _RecentSamples
from gazelab.annotation.controller.state import Listener
from gazelab.annotation.controller.trials import TrialsMixin
from gazelab.annotation.controller.validation import ValidationOutcome
from gazelab.annotation.protocol import (
    LabelingProtocol,
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
from gazelab.annotation.store import SessionRecord, SessionStore
from gazelab.errors import GazelabError
from gazelab.gaze.trackers.base import CalibrationResult
from gazelab.models.datasets.base import ImageSet
from gazelab.models.datasets.registry import open_image_set
from gazelab.settings import Settings


def participant_index(store: SessionStore, pseudonym: str) -> int:
    """The participant's place among the store's participants, by first session (0-based;
    a new participant comes after all): the row of a Latin-square order."""
    seen: list[str] = []
    for rec in store.sessions():
        if rec.participant not in seen:
            seen.append(rec.participant)
    return seen.index(pseudonym) if pseudonym in seen else len(seen)


class AnnotationSession(TrialsMixin):
    """One annotation session, new or resumed (see the package docstring).

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
        # every check before anything is written, connected or calibrated
        # (docs/running-a-session.md#step-by-step)
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
