"""What every part of a session shares: its state, its observers, what views may ask,
and its own store writes (in order with the protocol's, held on a store fault).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gazelab.annotation.capture import GazeCapture
from gazelab.annotation.protocol import LabelingProtocol, StoreRecorder
from gazelab.annotation.session import OpenTracker, SessionConfig
from gazelab.annotation.store import SessionLease, SessionRecord, SessionStore
from gazelab.gaze.geometry import StimulusLayout
from gazelab.gaze.trackers.base import CalibrationResult
from gazelab.models.datasets.base import ImageSet
from gazelab.settings import Settings

if TYPE_CHECKING:
    from gazelab.annotation.controller.gaze import _RecentSamples
    from gazelab.annotation.controller.validation import ValidationOutcome

Listener = Callable[[str, dict[str, Any]], None]


class SessionState:
    """The state of an :class:`~gazelab.annotation.controller.AnnotationSession` (set in
    its constructor), its observers and queries; the other parts build on this."""

    config: SessionConfig
    clock: Callable[[], float]
    settings: Settings
    notes: list[str]
    order_info: dict[str, Any]
    last_label: str
    last_speech: str
    _listeners: list[Listener]
    images: ImageSet
    _shapes: dict[str, tuple[int, int]]
    store: SessionStore
    record: SessionRecord
    lease: SessionLease
    tracker: OpenTracker
    protocol: LabelingProtocol
    recorder: StoreRecorder
    live: _RecentSamples
    capture: GazeCapture
    calibration: CalibrationResult | None
    validation: ValidationOutcome | None
    store_message: str
    lease_lost: bool
    paused_for_store: bool
    finished_at: float | None
    _store_fault: BaseException | None
    _store_fault_since: float | None
    _lease_renewed: float
    _main: tuple[LabelingProtocol, Any, dict[str, tuple[int, int]]] | None
    _opened_s: float

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
        """Where ``image_id`` lies on screen (the stimulus frame of
        docs/running-a-session.md#the-protocol)."""
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

    # -- the session's own store writes ----------------------------------------------------
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

    @property
    def practising(self) -> bool:
        return self._main is not None
