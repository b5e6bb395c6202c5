"""The I-VT fixation filter of Tobii's software (Olsen 2012), docs/algorithms.md#fixations.

Olsen, A. (2012). *The Tobii I-VT fixation filter: algorithm description*. Tobii
Technology. Its steps, each a parameter in ms or degrees:

1. gap fill-in: runs of invalid samples up to ``gap_fill_ms`` (75 ms) are linearly
   interpolated (blinks are longer and stay gaps);
2. velocity over ``velocity_window_ms`` (20 ms) — here Savitzky–Golay, order 2;
3. samples slower than ``velocity_deg_s`` (30 °/s) are fixation samples;
4. merge adjacent fixations at most ``merge_gap_ms`` (75 ms) and ``merge_angle_deg``
   (0.5°) apart — a short gap or a tiny saccade does not split a fixation;
5. discard fixations shorter than ``min_fixation_ms`` (Tobii: 60 ms).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.fixations import (
    PxPerDeg,
    SampleArrays,
    Thresholds,
    axis_scales,
    fill_gaps,
    long_enough,
    mean_scale,
    merge_segments,
    px_per_deg_xy,
    register_detector,
    sample_period_ms,
    savgol_velocity,
    slow_segments,
    to_degrees,
)
from gazelab.gaze.geometry import DisplayGeometry


def ivt_filter(
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    velocity_deg_s: float,
    px_per_deg: PxPerDeg,
    min_fixation_ms: float,
    window_ms: float = 20.0,
    gap_fill_ms: float = 75.0,
    merge_gap_ms: float = 75.0,
    merge_angle_deg: float = 0.5,
) -> NDArray[np.int64]:
    """Olsen's (2012) I-VT filter; (F, 2) int64 inclusive row ranges.

    Parameters as :func:`~gazelab.gaze.detectors.ivt.ivt`, plus ``gap_fill_ms``
    (interpolate invalid runs up to this long), ``merge_gap_ms`` and
    ``merge_angle_deg`` (join fixations this close in time and angle). Centroids for
    merging use the samples as recorded (interpolated ones are not data); with
    ``(x, y)`` pixels per degree that differ they are compared in degrees.
    """
    xf, yf, vf = fill_gaps(t, x, y, valid, max_gap_ms=gap_fill_ms)
    period = sample_period_ms(t)
    v = savgol_velocity(t, xf, yf, vf, window_ms=window_ms, px_per_deg=px_per_deg, period_ms=period)
    segs = slow_segments(t, v < velocity_deg_s, vf, period)
    scales = axis_scales(px_per_deg)
    if scales is None:
        mx, my, dist = x, y, merge_angle_deg * mean_scale(px_per_deg)
    else:  # non-square pixels: centroids in degrees
        (mx, my), dist = to_degrees(x, y, scales), merge_angle_deg
    segs = merge_segments(segs, t, mx, my, valid, max_gap_ms=merge_gap_ms, max_dist_px=dist)
    return long_enough(segs, t, min_fixation_ms)


@register_detector(
    "ivt_filter",
    "Tobii's I-VT filter: gap fill, Savitzky–Golay I-VT, merge close fixations, drop short",
)
def detect(s: SampleArrays, geometry: DisplayGeometry, th: Thresholds) -> NDArray[np.int64]:
    return ivt_filter(
        s.time_ms, s.x, s.y, s.valid,
        velocity_deg_s=th.velocity_deg_s, px_per_deg=px_per_deg_xy(geometry),
        min_fixation_ms=th.min_fixation_ms, window_ms=th.velocity_window_ms,
        gap_fill_ms=th.gap_fill_ms, merge_gap_ms=th.merge_gap_ms,
        merge_angle_deg=th.merge_angle_deg,
    )  # fmt: skip
