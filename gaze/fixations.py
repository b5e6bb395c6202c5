"""Fixation detection: the tracker's flag, I-DT, I-VT and its refinements (docs/algorithms.md#fixations).

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
``ivt_filter``, ``adaptive``, ``flag``), or in another package that names them under the
``gazelab.detectors`` entry point, and register themselves in :data:`DETECTORS` with
:func:`register_detector`; settings choices and CLI help read that registry.
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

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.geometry import DisplayGeometry, StimulusLayout
from gazelab.plugins import Registry

FixationTable = dict[str, NDArray[Any]]
Segments = list[tuple[int, int]] | NDArray[np.int64]  # inclusive (first, last) sample rows

COLUMNS = ("onset_ms", "offset_ms", "duration_ms", "x_px", "y_px", "n_samples", "first_sample")

DEFAULT_METHOD = "adaptive"
"""The default detector, chosen by ``benchmarks/bench_fixations.py``: κ ≥ 0.75 against
EyeLink's own parser on every EyeLink recording evaluated (250-2000 Hz) and against
Gazepoint's exported fixations on a 149 Hz GP3 HD recording (not on a 61 Hz GP3 one
whose raw gaze spreads 13° within a fixation), and the one that holds up under the
noise of remote and consumer trackers (``docs/fixations.md``)."""

MAX_STEP_PERIODS = 2.5
"""A step between two samples longer than this many median sample periods is a gap."""

SQUARE_PITCH_RTOL = 1e-3
"""Pixels whose x and y pitch (mm) differ by less than this fraction are square: both
axes use the one mean :meth:`DisplayGeometry.px_per_deg`, the arithmetic of every result
before per-axis scales (the reference 27" 2560×1440 display's pitches differ by 2e-5)."""

PxPerDeg = float | tuple[float, float]
"""Screen pixels per degree: one number for square pixels, or ``(x, y)``."""


def px_per_deg_xy(geometry: DisplayGeometry) -> tuple[float, float]:
    """Screen pixels per degree in x and in y near the screen centre, ``2 d tan(0.5°) /
    pitch`` with each axis' own pitch (``width_mm / width_px``, ``height_mm /
    height_px``).

    When the pitches differ by less than :data:`SQUARE_PITCH_RTOL` both are
    :meth:`DisplayGeometry.px_per_deg` (the mean pitch), so square pixels give exactly
    the numbers they always did.

    >>> px_per_deg_xy(DisplayGeometry(1280 * 0.25, 1024 * 0.35, (1280, 1024), 600.0))
    ... # doctest: +ELLIPSIS
    (41.88..., 29.92...)
    """
    w, h = geometry.resolution_px
    pitch_x, pitch_y = geometry.width_mm / w, geometry.height_mm / h
    if abs(pitch_x - pitch_y) <= SQUARE_PITCH_RTOL * max(pitch_x, pitch_y):
        mean = geometry.px_per_deg()
        return (mean, mean)
    extent_mm = 2.0 * geometry.distance_mm * math.tan(math.radians(0.5))
    return (extent_mm / pitch_x, extent_mm / pitch_y)


def axis_scales(px_per_deg: PxPerDeg) -> tuple[float, float] | None:
    """``(x, y)`` pixels per degree when the two differ, ``None`` when one number serves
    both axes (a float, or a pair of equal ones)."""
    if isinstance(px_per_deg, tuple):
        px, py = float(px_per_deg[0]), float(px_per_deg[1])
        return None if px == py else (px, py)
    return None


def mean_scale(px_per_deg: PxPerDeg) -> float:
    """The one pixels-per-degree of square pixels (the first of an equal pair)."""
    return float(px_per_deg[0] if isinstance(px_per_deg, tuple) else px_per_deg)


def to_degrees(
    x: NDArray[np.float64], y: NDArray[np.float64], scales: tuple[float, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Screen px -> degrees on each axis: ``x / px_per_deg_x``, ``y / px_per_deg_y``
    (the small-angle rate at the screen centre; distances between the results are
    visual angles in degrees)."""
    return np.asarray(x, dtype=np.float64) / scales[0], np.asarray(y, dtype=np.float64) / scales[1]


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
    """Detector parameters in degrees and ms (docs/algorithms.md#fixations; ``FixationSettings``).

    Attributes
    ----------
    dispersion_deg, min_duration_ms : I-DT: dispersion at most ``dispersion_deg`` over
        at least ``min_duration_ms`` (Salvucci & Goldberg 2000; docs/algorithms.md#fixations: 1.0°, 100 ms).
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


DETECTORS: Registry[Detector] = Registry(
    "fixation method", "gazelab.gaze.detectors", group="gazelab.detectors"
)
"""Fixation detectors by name: the modules of :mod:`gazelab.gaze.detectors` and those of
installed packages' ``gazelab.detectors`` entry points, imported on first use."""


def register_detector(name: str, help: str) -> Callable[[DetectorFunction], DetectorFunction]:
    """Register ``detect(samples, geometry, thresholds) -> segments`` under ``name``."""

    def add(fn: DetectorFunction) -> DetectorFunction:
        DETECTORS.add(name, Detector(name, fn, help))
        return fn

    return add


def detector_names() -> tuple[str, ...]:
    """The registered detector names (settings choices, CLI help)."""
    return DETECTORS.names()


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
    """Median positive step of ``t`` (ms); NaN with fewer than two distinct times.
    Long series use 100 000 evenly spaced steps."""
    dt = np.diff(t)
    if dt.size > 100_000:
        dt = dt[:: dt.size // 100_000]
    dt = dt[dt > 0]
    return float(np.median(dt)) if dt.size else math.nan


def contiguous(
    t: NDArray[np.float64], valid: NDArray[np.bool_], period_ms: float | None = None
) -> NDArray[np.bool_]:
    """``(N-1,)`` bool: step ``k -> k+1`` joins two valid samples with no gap in time
    (``0 < dt <= MAX_STEP_PERIODS`` periods; ``period_ms`` default the median step)."""
    if t.size < 2:
        return np.zeros(0, dtype=bool)
    dt = np.diff(t)
    period = sample_period_ms(t) if period_ms is None else period_ms
    limit = MAX_STEP_PERIODS * period if math.isfinite(period) else math.inf
    return valid[:-1] & valid[1:] & (dt > 0) & (dt <= limit)


def savgol_velocity(
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    window_ms: float,
    px_per_deg: PxPerDeg,
    period_ms: float | None = None,
) -> NDArray[np.float64]:
    """Gaze speed, °/s, by Savitzky–Golay differentiation (order 2) of x and y.

    The derivative is the slope at each sample of the parabola fitted by least
    squares to ``window_ms`` of samples around it (Savitzky & Golay 1964; Nyström &
    Holmqvist 2010), taken within each stretch of valid samples without a gap
    (:func:`contiguous`). Within half a window of a stretch's end the slope comes from
    the parabola fitted to the stretch's first (last) window, as ``scipy.signal.
    savgol_filter(..., mode="interp")`` does; a stretch shorter than the window gets one
    fit to all of it (2 samples: the chord). Samples alone in their stretch, and invalid
    ones, get ``inf``. The window in samples is ``window_ms`` over the sample period
    (``period_ms``, default the median step), rounded to an odd number ≥ 3.

    ``px_per_deg`` is one number for square pixels (the speed in px/s over it), or the
    ``(x, y)`` pair of :func:`px_per_deg_xy`: when the two differ, x and y are turned to
    degrees each by its own scale before differentiating, so a movement along y on
    tall pixels is not read at the mean pitch.

    Vectorised: one correlation with the window's coefficients for all interior
    samples, and one matrix product per kind of stretch end (no loop over samples or
    stretches). The window assumes the median sample period throughout.

    Returns
    -------
    (N,) float64, °/s (``inf`` where no velocity exists).
    """
    t = np.asarray(t, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    n = t.size
    v = np.full(n, np.inf)
    if n < 2:
        return v
    period = sample_period_ms(t) if period_ms is None else period_ms
    if not math.isfinite(period):
        return v
    w = max(3, int(round(window_ms / period)) | 1)
    half = w // 2
    step_ok = contiguous(t, valid, period)
    cut = np.flatnonzero(~step_ok) + 1  # stretches: runs of samples joined by good steps
    first = np.r_[0, cut]
    size = np.r_[cut, n] - first
    keep = (size >= 2) & valid[first]
    first, size = first[keep], size[keep]
    xx = np.asarray(x, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    if not valid.all():
        xx, yy = np.where(valid, xx, 0.0), np.where(valid, yy, 0.0)
    scales = axis_scales(px_per_deg)
    if scales is not None:  # non-square pixels: each axis in degrees
        xx, yy = to_degrees(xx, yy, scales)
    if n >= w:  # interior: one correlation; the ends are overwritten below
        coef = _slope_weights(w, period)
        vx = np.correlate(xx, coef, mode="valid")
        vy = np.correlate(yy, coef, mode="valid")
        vx *= vx
        vy *= vy
        vx += vy
        np.sqrt(vx, out=v[half : n - half])
    v[:half] = np.inf
    v[n - half :] = np.inf
    joined = np.zeros(n, dtype=bool)  # in a stretch of 2 or more
    joined[1:] = step_ok
    joined[:-1] |= step_ok
    v[~joined] = np.inf
    long_ = size > w
    d = _slope_matrix(w, period)  # (w, w): row j = derivative at sample j of the window
    for starts, rows, at in (
        (first[long_], d[:half], 0),  # a stretch's first half window: its first fit
        (first[long_] + size[long_] - w, d[w - half :], w - half),  # the last half window
    ):
        _apply_fit(v, xx, yy, starts, w, rows, at)
    for m in np.unique(size[~long_]).tolist():  # short stretches: one fit to all of each
        starts = first[~long_][size[~long_] == m]
        _apply_fit(v, xx, yy, starts, m, _slope_matrix(m, period), 0)
    v *= 1000.0 if scales is not None else 1000.0 / mean_scale(px_per_deg)
    return v


@functools.lru_cache(maxsize=64)
def _slope_weights(w: int, period: float) -> NDArray[np.float64]:
    """The window's Savitzky–Golay slope weights (order 2, first derivative; read-only),
    made once per window and sample period: a recording's trials share one or a few.

    ``scipy.signal.savgol_coeffs(w, 2, deriv=1, delta=period, use="dot")``'s own steps
    (the least-squares solution of the powers of the window's offsets, ``scipy.linalg``'s
    ``lstsq``): the same floats without importing ``scipy.signal`` (~0.17 s, on the
    gaze stage's one thread in every compare; tested equal)."""
    from scipy.linalg import lstsq  # here: SciPy costs 0.4 s to import

    half = w // 2
    x = np.arange(-half, w - half, dtype=float)
    a = x ** np.arange(3).reshape(-1, 1)  # the powers 0..2 of the offsets, (3, w)
    y = np.zeros(3)
    y[1] = 1.0 / period  # the first derivative, over the sample spacing
    coef: NDArray[np.float64] = lstsq(a, y)[0]
    coef.flags.writeable = False
    return coef


@functools.lru_cache(maxsize=64)
def _slope_matrix(m: int, period: float) -> NDArray[np.float64]:
    """``(m, m)``: row ``j`` gives the slope at sample ``j`` of the least-squares parabola
    (a line for 2 samples) through ``m`` samples ``period`` apart, as weights (read-only,
    made once per size and period)."""
    tau = np.arange(m, dtype=np.float64) * period
    deg = 2 if m >= 3 else 1
    p = np.linalg.pinv(np.vander(tau, deg + 1, increasing=True))  # (deg+1, m)
    rows = np.repeat(p[1][None, :], m, axis=0)
    if deg == 2:
        rows += 2.0 * tau[:, None] * p[2][None, :]
    rows.flags.writeable = False
    return rows


def _apply_fit(
    v: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    starts: NDArray[np.int64],
    m: int,
    rows: NDArray[np.float64],
    at: int,
) -> None:
    """For windows of ``m`` samples from each of ``starts``: speeds (px/ms) by the weight
    ``rows`` into ``v`` at window samples ``at, at + 1, ...``. One matrix product."""
    if starts.size == 0:
        return
    idx = starts[:, None] + np.arange(m)
    out = starts[:, None] + at + np.arange(rows.shape[0])
    v[out] = np.hypot(x[idx] @ rows.T, y[idx] @ rows.T)


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

    Returns ``x``, ``y`` and ``valid`` with the gaps filled (new arrays; the inputs
    themselves when there is nothing to fill).
    """
    bad_a, bad_b = run_bounds(~valid)
    inside = (bad_a > 0) & (bad_b < t.size)
    bad_a, bad_b = bad_a[inside], bad_b[inside]
    span = t[np.minimum(bad_b, t.size - 1)] - t[np.maximum(bad_a - 1, 0)]
    keep = span <= max_gap_ms
    if not keep.any():
        return x, y, valid
    x, y, valid = x.copy(), y.copy(), valid.copy()
    for a, b in zip(bad_a[keep].tolist(), bad_b[keep].tolist(), strict=True):
        t0, t1 = t[a - 1], t[b]
        f = (t[a:b] - t0) / (t1 - t0) if t1 > t0 else np.full(b - a, 0.5)
        x[a:b] = x[a - 1] + f * (x[b] - x[a - 1])
        y[a:b] = y[a - 1] + f * (y[b] - y[a - 1])
        valid[a:b] = True
    return x, y, valid


def slow_segments(
    t: NDArray[np.float64],
    slow: NDArray[np.bool_],
    valid: NDArray[np.bool_] | None = None,
    period_ms: float | None = None,
) -> NDArray[np.int64]:
    """``(F, 2)`` inclusive row ranges of the runs of ``slow`` samples, split wherever two
    neighbours are not :func:`contiguous` (an invalid sample or a gap in time)."""
    ok = np.asarray(slow, dtype=bool)
    if valid is not None:
        ok = ok & np.asarray(valid, dtype=bool)
    n = ok.size
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64)
    step = contiguous(t, ok, period_ms)  # step k -> k+1 inside one run
    starts = ok.copy()
    starts[1:] &= ~step
    ends = ok.copy()
    ends[:-1] &= ~step
    return np.stack([np.flatnonzero(starts), np.flatnonzero(ends)], axis=1).astype(np.int64)


def segment_sums(
    segs: NDArray[np.int64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Sums of x and y over the valid samples of each inclusive row range, and their
    count. Ranges in order without overlap (what detectors return) take one
    ``np.add.reduceat``; others cumulative sums."""
    segs = np.asarray(segs, dtype=np.int64).reshape(-1, 2)
    ok = np.asarray(valid, dtype=bool)
    a, b = segs[:, 0], segs[:, 1] + 1
    if len(segs) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    all_ok = bool(ok.all())
    xs = x if all_ok else np.where(ok, x, 0.0)
    ys = y if all_ok else np.where(ok, y, 0.0)
    if np.all(a[1:] >= b[:-1]) and np.all(b > a):
        idx = np.stack([a, b], axis=1).ravel()
        if idx[-1] >= len(xs):  # the last range runs to the end: reduceat's last sum does
            idx = idx[:-1]
        sx = np.add.reduceat(xs, idx)[::2]
        sy = np.add.reduceat(ys, idx)[::2]
        cnt = (b - a) if all_ok else np.add.reduceat(ok.astype(np.int64), idx)[::2]
        return sx, sy, cnt.astype(np.int64)
    cx = np.r_[0.0, np.cumsum(xs)]
    cy = np.r_[0.0, np.cumsum(ys)]
    cn = np.r_[0, np.cumsum(ok)]
    return cx[b] - cx[a], cy[b] - cy[a], (cn[b] - cn[a]).astype(np.int64)


def segment_centroids(
    segs: NDArray[np.int64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean x and y of the valid samples of each inclusive row range (NaN if none)."""
    sx, sy, n = segment_sums(segs, x, y, valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sx / n, sy / n


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

    Centroids come from per-fixation sums (no pass over samples in the loop); the loop
    is over fixations only.
    """
    segs = np.asarray(segs, dtype=np.int64).reshape(-1, 2)
    if max_gap_ms <= 0 or len(segs) < 2:
        return segs
    sx, sy, sn = (v.tolist() for v in segment_sums(segs, x, y, valid))
    first, last = segs[:, 0].tolist(), segs[:, 1].tolist()
    tf, tl = t[segs[:, 0]].tolist(), t[segs[:, 1]].tolist()
    lim2 = max_dist_px * max_dist_px
    out = [[first[0], last[0]]]
    ax, ay, an, end_t = sx[0], sy[0], sn[0], tl[0]
    for i in range(1, len(first)):
        if tf[i] - end_t <= max_gap_ms and an and sn[i]:
            dx, dy = ax / an - sx[i] / sn[i], ay / an - sy[i] / sn[i]
            if dx * dx + dy * dy <= lim2:
                out[-1][1] = last[i]
                ax, ay, an, end_t = ax + sx[i], ay + sy[i], an + sn[i], tl[i]
                continue
        out.append([first[i], last[i]])
        ax, ay, an, end_t = sx[i], sy[i], sn[i], tl[i]
    return np.array(out, dtype=np.int64)


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
    detector = DETECTORS.get(method)  # a ValueError listing the choices
    unknown = sorted(set(params) - set(THRESHOLD_NAMES))
    if unknown:
        raise TypeError(f"unknown fixation parameter(s) {unknown}; known: {THRESHOLD_NAMES}")
    s = sample_arrays(samples)
    if len(s.time_ms) > 1 and np.any(np.diff(s.time_ms[s.valid]) < 0):
        raise ValueError("sample times must be non-decreasing; sort the samples by time first")
    th = Thresholds(**{k: float(v) for k, v in params.items()})
    segs = detector.detect(s, geometry or DisplayGeometry.from_diagonal(), th)
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
