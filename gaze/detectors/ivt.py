"""I-VT: velocity-threshold identification (Salvucci & Goldberg 2000), SPEC §4."""

from __future__ import annotations

import numpy as np

from gazelab.gaze.fixations import SampleArrays, Segments, Thresholds, register_detector, valid_runs
from gazelab.gaze.geometry import DisplayGeometry


def ivt(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    *,
    velocity_px_per_ms: float,
    min_duration_ms: float,
) -> Segments:
    """Runs of samples slower than the threshold, lasting at least ``min_duration_ms``.

    A sample's velocity is that of the step from the previous sample (the first
    sample of a valid run takes the step to the next one).
    """
    out: Segments = []
    for start, stop in valid_runs(valid):
        if stop - start < 2:
            continue
        ts, xs, ys = t[start:stop], x[start:stop], y[start:stop]
        dt = np.diff(ts)
        dist = np.hypot(np.diff(xs), np.diff(ys))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(dt > 0, dist / dt, np.inf)
        vel = np.concatenate([[v[0]], v])
        slow = vel < velocity_px_per_ms
        for a, b in valid_runs(slow):
            if ts[b - 1] - ts[a] >= min_duration_ms:
                out.append((start + a, start + b - 1))
    return out


@register_detector("ivt", "velocity < velocity_deg_s for ≥ min_duration_ms")
def detect(s: SampleArrays, geometry: DisplayGeometry, th: Thresholds) -> Segments:
    return ivt(
        s.time_ms, s.x, s.y, s.valid,
        velocity_px_per_ms=geometry.deg_to_px(th.velocity_deg_s) / 1000.0,
        min_duration_ms=th.min_duration_ms,
    )  # fmt: skip
