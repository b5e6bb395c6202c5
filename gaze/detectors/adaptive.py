"""Adaptive, noise-driven velocity threshold (Nyström & Holmqvist 2010), docs/algorithms.md#fixations.

Nyström, M., & Holmqvist, K. (2010). An adaptive algorithm for fixation, saccade, and
glissade detection in eyetracking data. *Behavior Research Methods*, 42(1), 188–204.

The threshold follows the recording's own noise instead of a fixed 30 °/s:

1. velocity by Savitzky–Golay differentiation, order 2, over ``velocity_window_ms``
   (20 ms in the paper);
2. a peak threshold ``PT``, starting at :data:`START_PEAK_DEG_S` (100 °/s), is
   iterated as ``PT = m + 6s`` of the velocities below it until it moves less than
   1 °/s; the saccade onset threshold is ``m + 3s`` of the last iteration (``m``, ``s``:
   median and scaled MAD, robust where the paper's mean and SD run away below 500 Hz;
   see :func:`adaptive_threshold`);
3. samples slower than the onset threshold are fixation samples; fixations at most
   ``merge_gap_ms`` and ``merge_angle_deg`` apart are joined (as Tobii's filter does,
   Olsen 2012), and those shorter than ``min_fixation_ms`` dropped (the paper: 40 ms).

The onset threshold is kept within [:data:`MIN_ONSET_DEG_S`, :data:`MAX_ONSET_DEG_S`]:
a trace with almost no noise would otherwise call drift a saccade and cut fixations
short of where trackers' parsers end them, a very noisy one call saccades fixations.
So on a quiet signal (a tower-mounted EyeLink) it is an I-VT at 25 °/s plus merging;
with the noise of a remote tracker the threshold rises with the noise.

When the noise drives the onset threshold above :data:`DISPERSION_ABOVE_DEG_S`
(100 °/s, about the peak speed of a 2° saccade), speed no longer tells the saccades of
a face-viewing scanpath from the noise, and fixations are found by position instead,
as low-rate trackers' own filters do (dispersion algorithms are the usual advice for
data below about 200 Hz; Holmqvist et al. 2011, ch. 5): I-DT windows of at least ``min_fixation_ms`` whose
dispersion is at most the onset threshold times ``min_fixation_ms`` — the farthest a
gaze moving just below the onset speed gets in the shortest fixation (25 °/s × 40 ms
= 1°, the classic I-DT threshold). The same noise measured in degrees or pixels gives
the same fixations, so the fallback does not depend on the pixels per degree assumed.

Holmqvist, K., Nyström, M., Andersson, R., Dewhurst, R., Jarodzka, H., & van de
Weijer, J. (2011). *Eye tracking: a comprehensive guide to methods and measures*.
Oxford University Press.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.detectors.idt import idt
from gazelab.gaze.fixations import (
    PxPerDeg,
    SampleArrays,
    Thresholds,
    axis_scales,
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

START_PEAK_DEG_S = 100.0
"""The peak threshold the iteration starts from, °/s (Nyström & Holmqvist 2010)."""
PEAK_SD = 6.0
"""Peak threshold: mean + this many SD of the velocities below it."""
ONSET_SD = 3.0
"""Saccade onset threshold: mean + this many SD."""
MIN_ONSET_DEG_S = 25.0
"""Lowest onset threshold used, °/s: between the 22 and 30 °/s of EyeLink's parser
(psychophysical and cognitive configurations), so a quiet signal is cut where the
tracker's own parser cuts it and fixational drift never splits a fixation."""
MAX_ONSET_DEG_S = 300.0
"""Highest onset threshold used, °/s: saccades of 5° and more peak at about 300 °/s or
faster (the main sequence), so a higher threshold would take them for fixations. A
consumer tracker's raw signal can be that noisy (a Gazepoint GP3 HD recording at
150 Hz: 20 ms speed in fixations about 80 °/s, onset threshold about 230 °/s)."""

DISPERSION_ABOVE_DEG_S = 100.0
"""Onset threshold, °/s, above which fixations are found by dispersion: about the peak
speed of a 2° saccade (main sequence), so a velocity threshold this high misses the
small saccades between fixations on a face. Trackers with a usable speed signal stay
far below it (simulated and real remote trackers at 300 Hz: 32-51 °/s; consumer-class
noise at 60 Hz: 15-17 °/s); the Gazepoint GP3 recordings' raw signal reaches 208-218."""


def adaptive_threshold(v: NDArray[np.float64], start_deg_s: float = START_PEAK_DEG_S) -> float:
    """The onset threshold (°/s) of velocities ``v`` by Nyström & Holmqvist's iteration.

    ``PT ← m + 6 s`` over the velocities below ``PT`` until it moves less than 1 °/s;
    the onset threshold is ``m + 3 s``. ``m`` and ``s`` are the median and the scaled
    median absolute deviation (1.4826 MAD; SD-equivalent for a normal distribution)
    rather than the paper's mean and SD: below 500 Hz a saccade's flanks are a fair
    share of the samples under ``PT`` and inflate an SD until ``PT`` runs away (median
    estimates of the noise are Engbert & Kliegl's 2003 choice for the same reason).
    Long series use about 100 000 evenly spaced velocities.

    >>> rng = np.random.default_rng(0)
    >>> v = np.abs(rng.normal(0, 5, 10_000))  # fixation noise only
    >>> 10 < adaptive_threshold(v) < 20
    True
    """
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size > 200_000:  # the noise's median and MAD need no more than this
        v = v[:: v.size // 100_000]
    pt, m, sd = start_deg_s, 0.0, 0.0
    for _ in range(100):
        below = v[v < pt]
        if below.size < 2:
            break
        m = float(np.median(below))
        sd = 1.4826 * float(np.median(np.abs(below - m)))
        new = m + PEAK_SD * sd
        done = abs(new - pt) < 1.0
        pt = new
        if done:
            break
    return m + ONSET_SD * sd


def adaptive(
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    px_per_deg: PxPerDeg,
    min_fixation_ms: float,
    window_ms: float = 20.0,
    merge_gap_ms: float = 75.0,
    merge_angle_deg: float = 0.5,
    max_onset_deg_s: float = MAX_ONSET_DEG_S,
    dispersion_above_deg_s: float = DISPERSION_ABOVE_DEG_S,
) -> NDArray[np.int64]:
    """Fixations below the adaptive onset threshold; (F, 2) int64 inclusive row ranges.

    Above ``dispersion_above_deg_s`` (°/s) the threshold is turned into a dispersion
    (onset threshold × ``min_fixation_ms``, degrees; ``window_ms`` if that is longer)
    and I-DT windows of at least that duration are the fixations (see the module docstring); in both cases
    they are then merged (``merge_gap_ms``, ``merge_angle_deg``) and kept if at least
    ``min_fixation_ms`` long. ``px_per_deg`` is one number or ``(x, y)``
    (:func:`~gazelab.gaze.fixations.px_per_deg_xy`); when the two differ, speed,
    dispersion and merging distances are measured on x and y in degrees.
    """
    period = sample_period_ms(t)
    v = savgol_velocity(
        t, x, y, valid, window_ms=window_ms, px_per_deg=px_per_deg, period_ms=period
    )
    thr = min(max(adaptive_threshold(v), MIN_ONSET_DEG_S), max_onset_deg_s)
    scales = axis_scales(px_per_deg)
    if scales is None:  # distances in screen px
        dx, dy, unit = x, y, mean_scale(px_per_deg)
    else:  # non-square pixels: distances in degrees
        (dx, dy), unit = to_degrees(x, y, scales), 1.0
    if thr > dispersion_above_deg_s:  # too noisy for speed: dispersion of the same scale
        span_ms = max(min_fixation_ms, window_ms)
        disp = thr * span_ms / 1000.0 * unit
        segs = np.asarray(
            idt(t, dx, dy, valid, dispersion_px=disp, min_duration_ms=span_ms),
            dtype=np.int64,
        ).reshape(-1, 2)
    else:
        segs = slow_segments(t, v < thr, valid, period)
    segs = merge_segments(segs, t, dx, dy, valid, max_gap_ms=merge_gap_ms,
                          max_dist_px=merge_angle_deg * unit)  # fmt: skip
    return long_enough(segs, t, min_fixation_ms)


@register_detector(
    "adaptive",
    "velocity below a noise-driven threshold (Nyström & Holmqvist 2010), merged, ≥ min_fixation_ms",
)
def detect(s: SampleArrays, geometry: DisplayGeometry, th: Thresholds) -> NDArray[np.int64]:
    return adaptive(
        s.time_ms, s.x, s.y, s.valid,
        px_per_deg=px_per_deg_xy(geometry), min_fixation_ms=th.min_fixation_ms,
        window_ms=th.velocity_window_ms, merge_gap_ms=th.merge_gap_ms,
        merge_angle_deg=th.merge_angle_deg,
    )  # fmt: skip
