"""A headless annotation session with a simulated participant (demo, tests, benchmarks).

Drives the same :class:`~gazelab.annotation.controller.AnnotationSession` as the
full-screen window, with a sleep loop instead of Qt timers: calibration,
validation (before the trials and every ``protocol.validate_every_n_trials``),
the CK+ labeling trial sequence of docs/running-a-session.md#the-protocol (blank → cross → blank →
image), gaze
samples tagged with trial and phase in ≤ 100 ms batches, labels, and resume.
The participant is simulated: the synthetic observer (if given) is steered by the
session to look at the targets, the cross and the image's diagnostic regions, and
a label is given automatically (the true class, or a confusion at ``label_error``
rate).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.annotation.controller import AnnotationSession
from gazelab.annotation.protocol import LabelAnswer, Phase
from gazelab.annotation.session import OpenTracker, SessionConfig
from gazelab.annotation.store import SessionRecord, SessionStore
from gazelab.gaze.trackers.base import Tracker
from gazelab.gaze.trackers.simulator import SyntheticObserver
from gazelab.settings import Settings


@dataclass(frozen=True)
class Stimulus:
    image_id: str
    shape: tuple[int, int]  # original (H, W)
    label: int
    regions: NDArray[np.float32] | None = None  # where a simulated observer looks


@dataclass
class StimulusImages:
    """The session's images as a headless run knows them: ids, sizes, labels and regions.

    Nothing is shown, so :meth:`image` gives a blank image of each stimulus's size
    (what the session needs: the stimulus layout); ``spec`` is the image spec stored
    with the session, from which analysis rebuilds the real pixels."""

    spec: str
    stimuli: Sequence[Stimulus]
    ids: list[str] = field(init=False)
    labels: dict[str, int] = field(init=False)
    regions: dict[str, NDArray[np.float32]] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = [st.image_id for st in self.stimuli]
        self.labels = {st.image_id: st.label for st in self.stimuli}
        self.regions = {st.image_id: st.regions for st in self.stimuli if st.regions is not None}
        self._shapes = {st.image_id: st.shape for st in self.stimuli}

    def image(self, image_id: str) -> NDArray[np.uint8]:
        return np.zeros(self._shapes[image_id], dtype=np.uint8)


def run_simulated_session(
    store: SessionStore,
    stimuli: Sequence[Stimulus],
    tracker: Tracker,
    *,
    participant: str,
    settings: Settings | None = None,
    observer: SyntheticObserver | None = None,
    view_s: tuple[float, float] = (1.5, 3.0),
    label_error: float = 0.1,
    calibration_dwell_s: float = 0.05,
    validation_dwell_s: float = 1.2,
    validate: bool = True,
    seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[int, int], None] | None = None,
    image_source: str = "synthetic",
    resume: int | None = None,
    stop_after: int | None = None,
) -> SessionRecord:
    """Run one whole session (or resume session ``resume``); returns its record.

    Timings come from ``settings.protocol``. ``image_source`` is stored with the session
    (an image spec such as ``synthetic:N:SEED:SIZE`` lets analysis rebuild the images).
    ``tracker`` is connected here, before the session is recorded. ``stop_after``: end
    (as if interrupted) once that many trials are labelled, for resume tests.
    """
    s = settings or Settings()
    rng = np.random.default_rng(seed)
    config = SessionConfig(Path(store.path), participant, image_source, s, resume)
    if not getattr(tracker, "connected", False):  # a simulated tracker opener connects it
        tracker.connect()
    session = AnnotationSession(
        config, store=store, tracker=OpenTracker(tracker, observer=observer),
        images=StimulusImages(image_source, stimuli), clock=clock,  # type: ignore[arg-type]
        hold_on_fault=False,
    )  # fmt: skip
    settle_s = min(0.5, validation_dwell_s / 2)
    view_until = 0.0
    try:
        session.calibrate(dwell_s=calibration_dwell_s)
        if validate and not session.validate(dwell_s=validation_dwell_s, settle_s=settle_s).passed:
            session.override()  # the simulated experimenter goes on; recorded as an event
        session.start_trials()
        while not session.finished:
            if stop_after is not None and session.protocol.trials_done >= stop_after:
                break
            time.sleep(0.005)
            for change in session.tick():
                session.protocol.flipped(change.phase)  # headless: the flip is the switch
                if change.phase is Phase.IMAGE:
                    view_until = clock() + float(rng.uniform(*view_s))
            session.poll()
            p = session.protocol
            if p.phase is Phase.IMAGE and clock() >= view_until:
                label = session.images.labels[p.order[p.trial_index]]
                if rng.random() < label_error:
                    label = int(rng.choice([k for k in range(len(CLASSES)) if k != label]))
                session.give_label(LabelAnswer(CLASSES[label], source="auto", text=CLASSES[label]))
                step = session.advance()
                if progress is not None:
                    progress(p.trials_done, p.n_trials)
                if step == "validate":
                    if not session.validate(dwell_s=validation_dwell_s, settle_s=settle_s).passed:
                        session.override()
                    session.start_trials()
    finally:
        session.finish()
    return session.record
