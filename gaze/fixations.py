"""Fixation detection: the tracker's flag, I-DT, I-VT and its refinements (SPEC §4).

Input is a tidy sample table (mapping of column -> ``(N,)`` array) in the one
sample schema, the fields of :class:`~gazelab.gaze.trackers.base.GazeSample`:
``time_ms`` (tracker clock, ms — the clock fixations are detected on),
``x``, ``y`` (screen px), ``valid`` and, for the flag method, ``fix``.
``local_s`` (reception time) is for synchronisation only: TCP delivers samples
in bursts, so reception times say nothing about gaze velocity. Thresholds are
given in degrees and ms and converted with the session geometry.

Invalid samples and gaps in time (longer than :data:`MAX_STEP_PERIODS` sample
periods) split the signal: the velocity is never taken across them and no
fixation spans one — except that the detectors that merge fixations (``ivt_filter``,
``adaptive``) join two fixations split by a gap of at most ``merge_gap_ms``, as
Tobii's I-VT filter does (Olsen 2012). Centroids average valid samples only.

The result is a table of fixations with ``onset_ms``, ``offset_ms`` (times of
the first and last sample), ``duration_ms``, ``x_px``, ``y_px`` (mean position
of the valid samples, screen px), ``n_samples`` (rows from first to last) and
``first_sample`` (row index).

Detectors live one per module in :mod:`gazelab.gaze.detectors` (``idt``, ``ivt``,
``ivt_filter``, ``adaptive``, ``flag``) and register themselves in :data:`DETECTORS`
with :func:`register_detector`; settings choices and CLI help read that registry.
The shared steps are here: Savitzky–Golay velocity (:func:`savgol_velocity`), gap
filling (:func:`fill_gaps`), runs of slow samples (:func:`slow_segments`) and merging
and discarding of fixations (:func:`merge_segments`). See ``docs/fixations.md``.

Examples
--------
>>> import numpy as np
>>> t = np.arange(30) * 10.0
>>> x = np.r_[np.full(15, 100.0), np.full(15, 600.0)]
>>> fx = detect_fixations({"time_ms": t, "x": x, "y": x * 0, "valid": t == t}, "idt")
>>> fx["onset_ms"].tolist(), fx["x_px"].tolist()
([0.0, 150.0], [100.0, 600.0])
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import savgol_coeffs

from gazelab.gaze.geometry import DisplayGeometry, StimulusLayout

FixationTable = dict[str, NDArray[Any]]
Segments = list[tuple[int, int]] | NDArray[np.int64]  # inclusive (first, last) sample rows

COLUMNS = ("onset_ms", "offset_ms", "duration_ms", "x_px", "y_px", "n_samples", "first_sample")

DEFAULT_METHOD = "adaptive"
"""The default detector, chosen by ``benchmarks/bench_fixations.py``: κ ≥ 0.75 against
EyeLink's own parser on every real recording evaluated, and the one that holds up under
the noise of remote trackers (``docs/fixations.md``)."""

MAX_STEP_PERIODS = 2.5
"""A step between two samples longer than this many median sample periods is a gap."""


@dataclass(frozen=True)
class SampleArrays:
    """The columns a detector reads, as float64 / bool arrays of one length."""

    time_ms: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    valid: NDArray[np.bool_]
    fix: NDArray[np.bool_] | None


@dataclass(frozen=True)
class Thresholds:
    """Detector parameters in degrees and ms (SPEC §4; ``FixationSettings``).

    Attributes
    ----------
    dispersion_deg, min_duration_ms : I-DT: dispersion at most ``dispersion_deg`` over
        at least ``min_duration_ms`` (Salvucci & Goldberg 2000; SPEC §4: 1.0°, 100 ms).
    velocity_deg_s : I-VT threshold (``ivt``, ``ivt_filter``; Olsen 2012: 30 °/s).
    min_fixation_ms : shortest fixation the velocity detectors (``ivt``,
        ``ivt_filter``, ``adaptive``) keep (Nyström & Holmqvist 2010: 40 ms; Tobii's
        filter: 60 ms); chosen by the κ benchmark against EyeLink's parser.
    flag_min_duration_ms : shortest run of the tracker's flag kept.
    velocity_window_ms : Savitzky–Golay window (order 2) of the velocity
        (Nyström & Holmqvist 2010: 20 ms, twice the shortest saccade).
    gap_fill_ms : ``ivt_filter`` interpolates gaps up to this long (Olsen 2012: 75 ms).
    merge_gap_ms, merge_angle_deg : fixations at most this far apart in time and in
        angle (centroid to centroid) are one (Olsen 2012: 75 ms, 0.5°).
    """

    dispersion_deg: float = 1.0
    min_duration_ms: float = 100.0
    velocity_deg_s: float = 30.0
    flag_min_duration_ms: float = 0.0
    min_fixation_ms: float = 40.0
    velocity_window_ms: float = 20.0
    gap_fill_ms: float = 75.0
    merge_gap_ms: float = 75.0
    merge_angle_deg: float = 0.5


THRESHOLD_NAMES = tuple(f.name for f in fields(Thresholds))

DetectorFunction = Callable[[SampleArrays, DisplayGeometry, Thresholds], Segments]


@dataclass(frozen=True)
class Detector:
    name: str
    detect: DetectorFunction
    help: str


DETECTORS: dict[str, Detector] = {}
"""Fixation detectors by name; filled by the modules of :mod:`gazelab.gaze.detectors`."""


def register_detector(name: str, help: str) -> Callable[[DetectorFunction], DetectorFunction]:
    """Register ``detect(samples, geometry, thresholds) -> segments`` under ``name``."""

    def add(fn: DetectorFunction) -> DetectorFunction:
        if name in DETECTORS:
            raise ValueError(f"fixation detector {name!r} is registered twice")
        DETECTORS[name] = Detector(name, fn, help)
        return fn

    return add


def detector_names() -> tuple[str, ...]:
    """The registered detector names (settings choices, CLI help)."""
    return tuple(DETECTORS)


def valid_runs(valid: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, stop) half-open index ranges of consecutive true values."""
    a, b = run_bounds(valid)
    return list(zip(a.tolist(), b.tolist(), strict=True))


def run_bounds(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Half-open ``(starts, stops)`` index arrays of the runs of true values."""
    v = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]]).view(np.int8)
    edges = np.flatnonzero(np.diff(v))
    return edges[::2], edges[1::2]


def sample_period_ms(t: NDArray[np.float64]) -> float:
    """Median positive step of ``t`` (ms); NaN with fewer than two distinct times."""
    dt = np.diff(t)
    dt = dt[dt > 0]
    return float(np.median(dt)) if dt.size else math.nan


def contiguous(t: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``(N-1,)`` bool: step ``k -> k+1`` joins two valid samples with no gap in time
    (``0 < dt <= MAX_STEP_PERIODS`` periods)."""
    if t.size < 2:
        return np.zeros(0, dtype=bool)
    dt = np.diff(t)
    period = sample_period_ms(t)
    limit = MAX_STEP_PERIODS * period if math.isfinite(period) else math.inf
    return valid[:-1] & valid[1:] & (dt > 0) & (dt <= limit)


def savgol_velocity(
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    window_ms: float,
    px_per_deg: float,
) -> NDArray[np.float64]:
    """Gaze speed, °/s, by Savitzky–Golay differentiation (order 2) of x and y.

    The derivative is the slope at each sample of the parabola fitted by least
    squares to ``window_ms`` of samples around it (Savitzky & Golay 1964; Nyström &
    Holmqvist 2010), taken within each stretch of valid samples without a gap
    (:func:`contiguous`). Within half a window of a stretch's end the slope comes from
    the parabola fitted to the stretch's first (last) window, as ``scipy.signal.
    savgol_filter(..., mode="interp")`` does; a stretch shorter than the window gets one
    fit to all of it (2 samples: the chord). Samples alone in their stretch, and invalid
    ones, get ``inf``. The window in samples is
    ``window_ms`` over the median sample period, rounded to an odd number ≥ 3.

    Vectorised: one correlation with the window's coefficients for all interior
    samples; the ends are two small fits per stretch (a loop over gaps, not samples).

    Returns
    -------
    (N,) float64, °/s (``inf`` where no velocity exists).
    """
    t = np.asarray(t, dtype=np.float64)
    n = t.size
    v = np.full(n, np.inf)
    if n < 2:
        return v
    period = sample_period_ms(t)
    if not math.isfinite(period):
        return v
    w = max(3, int(round(window_ms / period)) | 1)
    half = w // 2
    step_ok = contiguous(t, valid)
    # a stretch: consecutive samples joined by good steps; split where a step is bad
    cut = np.flatnonzero(~step_ok) + 1
    seg_id = np.zeros(n, dtype=np.int64)
    seg_id[cut] = 1
    seg_id = np.cumsum(seg_id)
    first = np.r_[0, cut]
    last = np.r_[cut, n] - 1
    pos = np.arange(n) - first[seg_id]  # index within the stretch
    length = (last - first + 1)[seg_id]
    xx = np.where(valid, x, 0.0)
    yy = np.where(valid, y, 0.0)
    coef = savgol_coeffs(w, 2, deriv=1, delta=period, use="dot")
    inner = (pos >= half) & (length - 1 - pos >= half)
    if n >= w:
        vx = np.correlate(xx, coef, mode="valid")
        vy = np.correlate(yy, coef, mode="valid")
        idx = np.flatnonzero(inner)
        v[idx] = np.hypot(vx[idx - half], vy[idx - half])
    for a, b in zip(first.tolist(), last.tolist(), strict=True):
        size = b - a + 1
        if size < 2 or not valid[a]:
            continue
        if size <= w:  # short stretch: one fit to all of it
            _fit_slopes(v, t, xx, yy, a, b, range(a, b + 1))
        else:  # the ends: the first and last window's fit (savgol_filter's mode="interp")
            _fit_slopes(v, t, xx, yy, a, a + w - 1, range(a, a + half))
            _fit_slopes(v, t, xx, yy, b - w + 1, b, range(b - half + 1, b + 1))
    return v * (1000.0 / px_per_deg)


def _fit_slopes(
    v: NDArray[np.float64],
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    a: int,
    b: int,
    at: range,
) -> None:
    """Speed (px/ms) at rows ``at`` from the parabola (chord, for 2 samples) fitted to
    rows ``a..b``; written into ``v``."""
    tt = t[a : b + 1] - t[a]
    deg = 2 if b - a >= 2 else 1
    cx = np.polyfit(tt, x[a : b + 1], deg)
    cy = np.polyfit(tt, y[a : b + 1], deg)
    tau = t[list(at)] - t[a]
    dx = np.polyval(np.polyder(cx), tau)
    dy = np.polyval(np.polyder(cy), tau)
    v[list(at)] = np.hypot(dx, dy)


def fill_gaps(
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    max_gap_ms: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Linear interpolation over runs of invalid samples lasting at most ``max_gap_ms``
    (from the last valid sample before to the first after), as Tobii's I-VT filter's
    gap fill-in (Olsen 2012). Gaps at the ends and longer ones stay invalid.

    Returns new ``x``, ``y`` and ``valid`` arrays.
    """
    bad_a, bad_b = run_bounds(~valid)
    inside = (bad_a > 0) & (bad_b < t.size)
    bad_a, bad_b = bad_a[inside], bad_b[inside]
    span = t[np.minimum(bad_b, t.size - 1)] - t[np.maximum(bad_a - 1, 0)]
    keep = span <= max_gap_ms
    x, y, valid = x.copy(), y.copy(), valid.copy()
    for a, b in zip(bad_a[keep].tolist(), bad_b[keep].tolist(), strict=True):
        t0, t1 = t[a - 1], t[b]
        f = (t[a:b] - t0) / (t1 - t0) if t1 > t0 else np.full(b - a, 0.5)
        x[a:b] = x[a - 1] + f * (x[b] - x[a - 1])
        y[a:b] = y[a - 1] + f * (y[b] - y[a - 1])
        valid[a:b] = True
    return x, y, valid


def slow_segments(
    t: NDArray[np.float64], slow: NDArray[np.bool_], valid: NDArray[np.bool_] | None = None
) -> NDArray[np.int64]:
    """``(F, 2)`` inclusive row ranges of the runs of ``slow`` samples, split wherever two
    neighbours are not :func:`contiguous` (an invalid sample or a gap in time)."""
    slow = np.asarray(slow, dtype=bool)
    ok = slow if valid is None else slow & np.asarray(valid, dtype=bool)
    if ok.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    joined = ok[:-1] & ok[1:] & contiguous(t, ok)  # step k -> k+1 inside one run
    first = np.flatnonzero(ok & ~np.r_[False, joined])
    last = np.flatnonzero(ok & ~np.r_[joined, False])
    return np.stack([first, last], axis=1).astype(np.int64)


def segment_centroids(
    segs: NDArray[np.int64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean x and y of the valid samples of each inclusive row range (NaN if none)."""
    segs = np.asarray(segs, dtype=np.int64).reshape(-1, 2)
    ok = np.asarray(valid, dtype=bool)
    cx = np.r_[0.0, np.cumsum(np.where(ok, x, 0.0))]
    cy = np.r_[0.0, np.cumsum(np.where(ok, y, 0.0))]
    cn = np.r_[0, np.cumsum(ok)]
    a, b = segs[:, 0], segs[:, 1] + 1
    n = (cn[b] - cn[a]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (cx[b] - cx[a]) / n, (cy[b] - cy[a]) / n


def merge_segments(
    segs: NDArray[np.int64],
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    max_gap_ms: float,
    max_dist_px: float,
) -> NDArray[np.int64]:
    """Join each fixation to the one before it when the gap (its onset minus the other's
    offset, ms) is at most ``max_gap_ms`` and the centroids are at most ``max_dist_px``
    apart — Tobii's "merge adjacent fixations" (Olsen 2012). In time order, against the
    fixation as merged so far, so a slow drift does not chain many pieces into one.

    Centroids come from cumulative sums (no pass over samples); the loop is over
    fixations only.
    """
    segs = np.asarray(segs, dtype=np.int64).reshape(-1, 2)
    if max_gap_ms <= 0 or len(segs) < 2:
        return segs
    ok = np.asarray(valid, dtype=bool)
    cx = np.r_[0.0, np.cumsum(np.where(ok, x, 0.0))]
    cy = np.r_[0.0, np.cumsum(np.where(ok, y, 0.0))]
    cn = np.r_[0, np.cumsum(ok)]
    first, last = segs[:, 0].tolist(), (segs[:, 1] + 1).tolist()
    tf, tl = t[segs[:, 0]].tolist(), t[segs[:, 1]].tolist()
    out = [[first[0], last[0]]]
    end_t = tl[0]
    for i in range(1, len(first)):
        a, b = out[-1]
        if tf[i] - end_t <= max_gap_ms:
            n0, n1 = cn[b] - cn[a], cn[last[i]] - cn[first[i]]
            if n0 and n1:
                dx = (cx[b] - cx[a]) / n0 - (cx[last[i]] - cx[first[i]]) / n1
                dy = (cy[b] - cy[a]) / n0 - (cy[last[i]] - cy[first[i]]) / n1
                if dx * dx + dy * dy <= max_dist_px * max_dist_px:
                    out[-1][1] = last[i]
                    end_t = tl[i]
                    continue
        out.append([first[i], last[i]])
        end_t = tl[i]
    res = np.array(out, dtype=np.int64)
    res[:, 1] -= 1
    return res


def long_enough(
    segs: NDArray[np.int64], t: NDArray[np.float64], min_duration_ms: float
) -> NDArray[np.int64]:
    """The row ranges lasting at least ``min_duration_ms`` (last minus first sample time)."""
    segs = np.asarray(segs, dtype=np.int64).reshape(-1, 2)
    return segs[t[segs[:, 1]] - t[segs[:, 0]] >= min_duration_ms]


def sample_arrays(samples: Mapping[str, Any]) -> SampleArrays:
    """The detector columns of a sample table; ``valid`` defaults to finite positions and
    non-finite positions or times are never valid."""
    if "time_ms" not in samples:
        raise KeyError(
            "sample table needs a 'time_ms' column (tracker clock, ms); reception times "
            "('local_s') are not used for detection"
        )
    t = np.asarray(samples["time_ms"], dtype=np.float64)
    x = np.asarray(samples["x"], dtype=np.float64)
    y = np.asarray(samples["y"], dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(t)
    valid = finite & np.asarray(samples.get("valid", finite), dtype=bool)
    fix = np.asarray(samples["fix"], dtype=bool) if "fix" in samples else None
    return SampleArrays(t, x, y, valid, fix)


def detect_fixations(
    samples: Mapping[str, Any],
    method: str = DEFAULT_METHOD,
    geometry: DisplayGeometry | None = None,
    **params: float,
) -> FixationTable:
    """Detect fixations with ``method`` (a name in :data:`DETECTORS`: ``"idt"``, ``"ivt"``,
    ``"ivt_filter"``, ``"adaptive"``, ``"flag"``).

    Parameters
    ----------
    samples : mapping of column -> (N,) array
        ``time_ms`` (tracker clock); ``x``, ``y`` (screen px); optional ``valid``
        (default: finite positions) and ``fix`` (for ``"flag"``).
    geometry : DisplayGeometry
        Converts degree thresholds to pixels (default: reference set-up).
    **params : float
        Any field of :class:`Thresholds` (``dispersion_deg``, ``min_duration_ms``,
        ``velocity_deg_s``, ``min_fixation_ms``, ``velocity_window_ms``, ``gap_fill_ms``,
        ``merge_gap_ms``, ``merge_angle_deg``, ``flag_min_duration_ms``); the rest keep
        their defaults.

    Returns
    -------
    dict of (F,) arrays, columns :data:`COLUMNS`.
    """
    if method not in DETECTORS:
        raise ValueError(f"unknown fixation method {method!r}; choose one of {sorted(DETECTORS)}")
    unknown = sorted(set(params) - set(THRESHOLD_NAMES))
    if unknown:
        raise TypeError(f"unknown fixation parameter(s) {unknown}; known: {THRESHOLD_NAMES}")
    s = sample_arrays(samples)
    if len(s.time_ms) > 1 and np.any(np.diff(s.time_ms[s.valid]) < 0):
        raise ValueError("sample times must be non-decreasing; sort the samples by time first")
    th = Thresholds(**{k: float(v) for k, v in params.items()})
    segs = DETECTORS[method].detect(s, geometry or DisplayGeometry.from_diagonal(), th)
    return fixation_table(segs, s.time_ms, s.x, s.y, s.valid)


def fixation_table(
    segs: Segments,
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_] | None = None,
) -> FixationTable:
    """The fixation table of inclusive row ranges; vectorised (cumulative sums)."""
    s = np.asarray(segs, dtype=np.int64).reshape(-1, 2)
    a, b = s[:, 0], s[:, 1]
    ok = np.ones(t.size, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    cx, cy = segment_centroids(s, x, y, ok)
    return {
        "onset_ms": t[a],
        "offset_ms": t[b],
        "duration_ms": t[b] - t[a],
        "x_px": cx,
        "y_px": cy,
        "n_samples": b - a + 1,
        "first_sample": a,
    }


def add_frames(fixations: FixationTable, layout: StimulusLayout) -> FixationTable:
    """Add stimulus-frame (``x_stim``, ``y_stim``) and image (``x_img``, ``y_img``) columns."""
    xy = np.stack([fixations["x_px"], fixations["y_px"]], axis=-1).reshape(-1, 2)
    stim = layout.screen_to_stimulus(xy)
    img = layout.stimulus_to_image(stim)
    return {
        **fixations,
        "x_stim": stim[:, 0],
        "y_stim": stim[:, 1],
        "x_img": img[:, 0],
        "y_img": img[:, 1],
        "in_image": layout.inside_image(xy),
    }


# Register the detectors (they import this module's names, defined above).
importlib.import_module("gazelab.gaze.detectors")
