"""I-VT: velocity-threshold identification (Salvucci & Goldberg 2000), docs/algorithms.md#fixations.

The velocity is the field's: Savitzky–Golay differentiation, order 2, over
``velocity_window_ms`` (Nyström & Holmqvist 2010; pymovements' ``savitzky_golay``),
never across invalid samples or gaps (:func:`~gazelab.gaze.fixations.savgol_velocity`).
Sample-to-sample differences are not used: at 500 Hz their noise alone is of the
order of the 30 °/s threshold.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.fixations import (
    PxPerDeg,
    SampleArrays,
    Thresholds,
    long_enough,
    px_per_deg_xy,
    register_detector,
    sample_period_ms,
    savgol_velocity,
    slow_segments,
)
from gazelab.gaze.geometry import DisplayGeometry


def ivt(
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    velocity_deg_s: float,
    px_per_deg: PxPerDeg,
    min_fixation_ms: float,
    window_ms: float = 20.0,
) -> NDArray[np.int64]:
    """Runs of valid samples slower than ``velocity_deg_s`` lasting ``min_fixation_ms``.

    Parameters
    ----------
    t, x, y, valid : (N,) arrays
        Tracker time (ms), screen position (px), validity.
    velocity_deg_s : float
        Threshold, °/s (docs/algorithms.md#fixations: 30 °/s).
    px_per_deg : float or (float, float)
        Screen pixels per degree (the session geometry): one number, or ``(x, y)``
        (:func:`~gazelab.gaze.fixations.px_per_deg_xy`; each axis is turned to degrees
        by its own when they differ).
    min_fixation_ms : float
        Shortest fixation kept (last minus first sample time).
    window_ms : float
        Savitzky–Golay window (order 2), ms.

    Returns
    -------
    (F, 2) int64 inclusive row ranges.
    """
    period = sample_period_ms(t)
    v = savgol_velocity(
        t, x, y, valid, window_ms=window_ms, px_per_deg=px_per_deg, period_ms=period
    )
    return long_enough(slow_segments(t, v < velocity_deg_s, valid, period), t, min_fixation_ms)


@register_detector("ivt", "Savitzky–Golay velocity < velocity_deg_s for ≥ min_fixation_ms")
def detect(s: SampleArrays, geometry: DisplayGeometry, th: Thresholds) -> NDArray[np.int64]:
    return ivt(
        s.time_ms, s.x, s.y, s.valid,
        velocity_deg_s=th.velocity_deg_s, px_per_deg=px_per_deg_xy(geometry),
        min_fixation_ms=th.min_fixation_ms, window_ms=th.velocity_window_ms,
    )  # fmt: skip
