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
from gazelab.annotation.store import BatchedSampleWriter, SessionRecord, SessionStore
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


def stimulus_order(image_ids: Sequence[str], seed: int) -> list[str]:
    """The session's presentation order: a permutation fixed by the stored seed (SPEC §2)."""
    perm = np.random.default_rng(seed).permutation(len(image_ids))
    return [image_ids[i] for i in perm]


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
) -> SessionRecord:
    """Run one whole session; returns its record. Timings come from ``settings.protocol``."""
    s = settings or Settings()
    rng = np.random.default_rng(seed)
    by_id = {st.image_id: st for st in stimuli}
    order = stimulus_order([st.image_id for st in stimuli], s.protocol.seed)
    rec = store.create_session(
        participant,
        settings_toml=s.to_toml(),
        seed=s.protocol.seed,
        image_source="synthetic",
        stimulus_order=order,
        start_local_s=clock(),
    )
    screen = s.display.resolution_px
    tracker.connect()
    tracker.start()
    cal = tracker.calibrate(
        calibration_points(s.protocol.calibration_points, screen), dwell_s=calibration_dwell_s
    )
    store.add_calibration(rec.id, cal, kind="calibration", local_s=clock())
    writer = BatchedSampleWriter(store, rec.id, batch_ms=s.tracker.sample_batch_ms, clock=clock)
    cross = np.zeros((9, 9), dtype=np.float32)
    cross[4, 4] = 1.0
    centre_rect = (screen[0] / 2 - 4.5, screen[1] / 2 - 4.5, 9.0, 9.0)

    def run_phase(name: str, seconds: float, trial: int) -> None:
        store.add_event(rec.id, name, clock(), trial_index=trial)
        end = clock() + seconds
        while clock() < end:
            time.sleep(0.01)
            writer.add(tracker.drain(), trial, name)

    try:
        for ti, image_id in enumerate(order):
            st = by_id[image_id]
            if observer is not None:
                observer.set_priority_map(cross, centre_rect)
            run_phase("blank1", s.protocol.blank1_ms / 1000.0, ti)
            run_phase("cross", s.protocol.cross_ms / 1000.0, ti)
            run_phase("blank2", s.protocol.blank2_ms / 1000.0, ti)
            layout = StimulusLayout(screen, s.stimulus.square_px, st.shape)
            if observer is not None:
                prio = np.ones(st.shape) if st.regions is None else st.regions.astype(np.float64)
                observer.set_priority_map(prio, layout.image_rect_on_screen)
            onset = clock()
            store.set_trial_onset(rec.id, ti, onset, 0.0)
            run_phase("image", float(rng.uniform(*view_s)), ti)
            label = st.label
            if rng.random() < label_error:
                label = int(rng.choice([k for k in range(len(CLASSES)) if k != st.label]))
            now = clock()
            store.add_label(
                rec.id,
                ti,
                CLASSES[label],
                local_s=now,
                text=CLASSES[label],
                confidence=1.0,
                source="auto",
            )
            store.add_event(
                rec.id,
                "label",
                now,
                trial_index=ti,
                payload={"label": CLASSES[label], "source": "auto"},
            )
            store.add_event(
                rec.id, "keypress", clock(), trial_index=ti, payload={"key": s.protocol.advance_key}
            )
            writer.add(tracker.drain(), ti, "image")
            if progress is not None:
                progress(ti + 1, len(order))
    finally:
        tracker.stop()
        writer.add(tracker.drain(), None, None)
        writer.flush()
        tracker.close()
    return rec
