"""A headless annotation session with a simulated participant (demo, tests, benchmarks).

Runs the CK+ labeling trial sequence of SPEC §2 (blank → cross → blank →
image) against any :class:`~gazelab.gaze.trackers.base.Tracker` and records
everything into the store exactly as the GUI does: phase events, gaze samples
tagged with trial and phase in ≤ 100 ms batches, calibration, and labels. The
participant is simulated: the synthetic observer (if given) is steered to look
at the cross, then at the image's diagnostic regions, and a label is given
automatically (the true class, or a confusion at ``label_error`` rate).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.annotation.capture import GazeCapture
from gazelab.annotation.protocol import (
    LabelAnswer,
    LabelingProtocol,
    Phase,
    StoreRecorder,
    stimulus_order,
)
from gazelab.annotation.store import SessionRecord, SessionStore
from gazelab.gaze.geometry import StimulusLayout
from gazelab.gaze.trackers.base import Tracker
from gazelab.gaze.trackers.protocol import calibration_points
from gazelab.gaze.trackers.simulator import SyntheticObserver
from gazelab.settings import Settings


@dataclass(frozen=True)
class Stimulus:
    image_id: str
    shape: tuple[int, int]  # original (H, W)
    label: int
    regions: NDArray[np.float32] | None = None  # where a simulated observer looks


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
    seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[int, int], None] | None = None,
    image_source: str = "synthetic",
) -> SessionRecord:
    """Run one whole session; returns its record. Timings come from ``settings.protocol``.

    ``image_source`` is stored with the session (an ``open_image_source`` spec such as
    ``synthetic:N:SEED:SIZE`` lets analysis rebuild the images later)."""
    s = settings or Settings()
    rng = np.random.default_rng(seed)
    by_id = {st.image_id: st for st in stimuli}
    order = stimulus_order([st.image_id for st in stimuli], s.protocol.seed)
    rec = store.create_session(
        participant,
        settings_toml=s.to_toml(),
        seed=s.protocol.seed,
        image_source=image_source,
        stimulus_order=order,
        start_local_s=clock(),
    )
    lease = store.acquire_lease(rec.id)  # nobody else runs this session meanwhile
    screen = s.display.resolution_px
    tracker.connect()
    tracker.start()
    cal = tracker.calibrate(
        calibration_points(s.protocol.calibration_points, screen), dwell_s=calibration_dwell_s
    )
    store.add_calibration(rec.id, cal, kind="calibration", local_s=clock())
    protocol = LabelingProtocol(order, s.protocol, clock=clock, sink=StoreRecorder(store, rec.id))
    capture = GazeCapture(
        tracker, store, rec.id, protocol, batch_ms=s.tracker.sample_batch_ms, clock=clock
    )
    centre = (screen[0] / 2, screen[1] / 2)
    view_until = 0.0
    try:
        protocol.start()
        if observer is not None:
            observer.look_at(centre)
        while not protocol.finished:
            time.sleep(0.005)
            for change in protocol.tick():
                protocol.flipped(change.phase)  # headless: the flip is the switch
                if change.phase is Phase.IMAGE:
                    st = by_id[order[protocol.trial_index]]
                    layout = StimulusLayout(screen, s.stimulus.square_px, st.shape)
                    if observer is not None:
                        observer.look_at_image(st.regions, st.shape, layout.image_rect_on_screen)
                    view_until = clock() + float(rng.uniform(*view_s))
            capture.poll()
            if protocol.phase is Phase.IMAGE and clock() >= view_until:
                label = by_id[order[protocol.trial_index]].label
                if rng.random() < label_error:
                    label = int(rng.choice([k for k in range(len(CLASSES)) if k != label]))
                protocol.give_label(LabelAnswer(CLASSES[label], source="auto", text=CLASSES[label]))
                protocol.advance()
                if observer is not None:
                    observer.look_at(centre)
                if progress is not None:
                    progress(protocol.trials_done, len(order))
    finally:
        if not protocol.finished:
            protocol.quit()
        tracker.stop()
        try:
            capture.close()
        finally:
            tracker.close()
            store.release_lease(lease)
    return rec
