"""I-VT: velocity-threshold identification (Salvucci & Goldberg 2000), SPEC §4."""

from __future__ import annotations

import numpy as np

from gazelab.gaze.fixations import SampleArrays, Segments, Thresholds, register_detector
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
    sample of a valid run takes the step to the next one); a step with no time
    (``dt <= 0``) is infinitely fast. Invalid samples and valid runs of one sample
    are never slow, so no fixation spans an invalid sample. Vectorised: one pass of
    array operations, no Python loop over samples or runs.
    """
    t = np.asarray(t, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    n = t.size
    if n < 2:
        return []
    dt = np.diff(t)
    dist = np.hypot(
        np.diff(np.asarray(x, dtype=np.float64)), np.diff(np.asarray(y, dtype=np.float64))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(dt > 0, dist / dt, np.inf)  # step k: sample k -> k+1
    step_ok = valid[:-1] & valid[1:]  # both ends in one valid run
    vel = np.full(n, np.inf)
    vel[1:] = np.where(step_ok, step, np.inf)  # from the previous sample
    run_start = valid & ~np.r_[False, valid[:-1]]
    starts = np.flatnonzero(run_start[:-1] & step_ok)  # run starts with a next sample
    vel[starts] = step[starts]  # ... take the step to the next one
    slow = valid & (vel < velocity_px_per_ms)
    edges = np.flatnonzero(np.diff(np.r_[0, slow.view(np.int8), 0]))
    a, b = edges[::2], edges[1::2]  # half-open runs of slow samples
    keep = t[b - 1] - t[a] >= min_duration_ms
    return list(zip(a[keep].tolist(), (b[keep] - 1).tolist(), strict=True))


@register_detector("ivt", "velocity < velocity_deg_s for ≥ min_duration_ms")
def detect(s: SampleArrays, geometry: DisplayGeometry, th: Thresholds) -> Segments:
    return ivt(
        s.time_ms, s.x, s.y, s.valid,
        velocity_px_per_ms=geometry.deg_to_px(th.velocity_deg_s) / 1000.0,
        min_duration_ms=th.min_duration_ms,
    )  # fmt: skip
