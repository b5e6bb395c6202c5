"""Build projects with hand-placed fixations (for analysis and viewer tests).

Each fixation becomes 300 ms of 60 Hz samples at exactly one screen position,
so I-DT finds it with its centroid at the planted point; consecutive fixations
are far enough apart to be split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import StimulusLayout
from gazelab.gaze.trackers.base import GazeSample
from gazelab.models.datasets.registry import open_image_set
from gazelab.settings import Settings

RATE_HZ = 60
FIX_MS = 300


def write_gaze_session(
    store: SessionStore,
    participant: str,
    image_source: str,
    fixations: Mapping[str, Sequence[tuple[float, float]]],
    labels: Mapping[str, str],
    settings: Settings | None = None,
) -> int:
    """A session whose trial for each image id holds fixations at the given image-px points."""
    s = settings or Settings()
    src = open_image_set(image_source)
    order = list(fixations)
    rec = store.create_session(
        participant,
        settings_toml=s.to_toml(),
        seed=0,
        image_source=image_source,
        stimulus_order=order,
        start_local_s=0.0,
    )
    t = 0.0
    for ti, iid in enumerate(order):
        img = src.image(iid)
        layout = StimulusLayout(s.display.resolution_px, s.stimulus.square_px, img.shape[:2])
        batch = []
        for x_img, y_img in fixations[iid]:
            (sx, sy) = layout.image_to_screen([[x_img, y_img]])[0]
            for _ in range(FIX_MS * RATE_HZ // 1000):
                batch.append((GazeSample(t * 1000, t, float(sx), float(sy), fix=True), ti, "image"))
                t += 1 / RATE_HZ
            t += 0.05  # a saccade's worth of missing samples between fixations
        store.add_tagged_samples(rec.id, batch)
        if iid in labels:
            store.add_label(rec.id, ti, labels[iid], local_s=t)
    return rec.id
