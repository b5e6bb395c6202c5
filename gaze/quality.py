"""Eye-tracking data quality: accuracy, precision (RMS-S2S, STD) and data loss.

The measures eye-tracking papers must report, with the
standard definitions of Holmqvist, Nyström & Mulvey (2012), "Eye tracker data
quality: what it is and how to measure it", and Holmqvist & Andersson (2017):

- **accuracy** (degrees): the angular distance between the target and the
  *mean gaze position* of the valid samples recorded while the participant looked
  at it (the offset of the mean, not the mean of per-sample offsets: noise does
  not inflate it);
- **precision, RMS sample-to-sample** (degrees): ``sqrt(mean(theta_i ** 2))`` over
  the angular distances ``theta_i`` between successive samples, using only pairs
  of adjacent samples that are both valid (for white noise of ``sigma`` degrees
  per axis it is ``2 sigma``);
- **precision, STD** (degrees): ``sqrt(var_x + var_y)`` of the gaze positions
  in angular coordinates (population variance; ``sigma * sqrt(2)`` for white
  noise of ``sigma`` per axis);
- **data loss** (%): the share of the *expected* samples (nominal rate ×
  duration) that are missing or invalid. Without an expected count, the share
  of the given samples that are invalid.

Angles come from the screen's geometry: a :class:`gaze.geometry.DisplayGeometry` or a
trial's :class:`gaze.geometry.StimulusPlacement` (its screen and millimetres per pixel).
The eye sits on the normal through the screen centre at ``distance_mm``. A pixel
``(x, y)`` is the direction ``((x - cx) pw, (y - cy) ph, D)`` in millimetres, with the
pixel's own width ``pw`` and height ``ph`` (pixels need not be square: a Tobii Studio
screen of 1280×1024 px on 0.25 × 0.35 mm pixels is measured in each axis with its own
pitch, never one mean pitch); angular distances are the angles between such directions
(exact, also off centre), and the angular coordinates used for STD are
``atan((x - cx) pw / D)``, ``atan((y - cy) ph / D)`` in degrees.

Examples
--------
>>> from gazelab.gaze.geometry import DisplayGeometry
>>> g = DisplayGeometry.from_diagonal(27.0, (2560, 1440), 700.0)
>>> n = 100
>>> q = point_quality((1280.0, 720.0), np.full(n, 1300.0), np.full(n, 720.0),
...                   np.ones(n, bool), g, expected_samples=125)
>>> round(q.accuracy_deg, 3), q.rms_s2s_deg, q.loss_pct
(0.382, 0.0, 20.0)

On 0.25 × 0.35 mm pixels at 60 cm, a gaze ``600 tan 1° / 0.35`` px below the target is
1° off (one mean pitch of 0.30 mm would say 0.86°):

>>> tall = DisplayGeometry(1280 * 0.25, 1024 * 0.35, (1280, 1024), 600.0)
>>> dy = 600.0 * math.tan(math.radians(1.0)) / 0.35
>>> round(float(angular_distance_deg((640.0, 512.0), (640.0, 512.0 + dy), tall)), 9)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.gaze.geometry import DisplayGeometry, StimulusPlacement

Screen = DisplayGeometry | StimulusPlacement
"""What angles are measured on: a display, or a trial's placement (its screen, millimetres
per pixel in x and y, and viewing distance)."""


@dataclass(frozen=True)
class PointQuality:
    """Data quality while the participant looked at one target.

    Attributes
    ----------
    target_px : (float, float)
        Target ``(x, y)``, screen pixels.
    offset_px : (float, float)
        Mean valid gaze minus target, screen pixels (NaN without valid samples).
    accuracy_deg : float
        Angular distance target -> mean gaze position, degrees.
    rms_s2s_deg : float
        Precision, RMS of the angular distances between successive valid samples.
    std_deg : float
        Precision, ``sqrt(var_x + var_y)`` in angular coordinates, degrees.
    n_samples : int
        Valid samples used.
    loss_pct : float
        Missing or invalid samples, percent of the expected ones.
    n_expected : int
        Samples expected (the given ones when no expected count was passed).
    """

    target_px: tuple[float, float]
    offset_px: tuple[float, float]
    accuracy_deg: float
    rms_s2s_deg: float
    std_deg: float
    n_samples: int
    loss_pct: float
    n_expected: int = 0


@dataclass(frozen=True)
class ValidationQuality:
    """Data quality of one validation run (all its targets).

    ``mean_accuracy_deg`` and ``max_accuracy_deg`` are over the targets with data;
    ``rms_s2s_deg`` and ``std_deg`` are the means of the targets' values;
    ``loss_pct`` is the missing share of all the targets' expected samples.
    """

    points: tuple[PointQuality, ...]
    mean_accuracy_deg: float
    max_accuracy_deg: float
    rms_s2s_deg: float
    std_deg: float
    loss_pct: float


def pixel_pitch_xy(geometry: Screen) -> tuple[float, float]:
    """The size of one screen pixel in x and in y, millimetres (never one mean pitch)."""
    if isinstance(geometry, StimulusPlacement):
        return (float(geometry.mm_per_px[0]), float(geometry.mm_per_px[1]))
    w, h = geometry.resolution_px
    return (geometry.width_mm / w, geometry.height_mm / h)


def display_with_pitch(
    display: DisplayGeometry, mm_per_px: tuple[float, float] | None
) -> DisplayGeometry:
    """``display`` with pixels ``mm_per_px`` (x, y) in size: the screen's width and height
    in millimetres become ``mm_per_px`` × its resolution. ``None``, or the display's own
    pitch, returns ``display`` itself."""
    if mm_per_px is None:
        return display
    w, h = display.resolution_px
    mx, my = float(mm_per_px[0]), float(mm_per_px[1])
    if (mx, my) == (display.width_mm / w, display.height_mm / h):
        return display
    return DisplayGeometry(mx * w, my * h, display.resolution_px, display.distance_mm)


def _centred_mm(
    x_px: NDArray[np.float64], y_px: NDArray[np.float64], geometry: Screen
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    w, h = geometry.screen_px if isinstance(geometry, StimulusPlacement) else geometry.resolution_px
    pw, ph = pixel_pitch_xy(geometry)
    return (x_px - w / 2.0) * pw, (y_px - h / 2.0) * ph


def angular_distance_deg(
    a_xy_px: ArrayLike, b_xy_px: ArrayLike, geometry: Screen
) -> NDArray[np.float64]:
    """Angle, degrees, between the lines of sight to screen points ``a`` and ``b``.

    Parameters
    ----------
    a_xy_px, b_xy_px : (..., 2) float, screen pixels
        Broadcast against each other.
    geometry : DisplayGeometry or StimulusPlacement
        The screen, its pixels' size in x and y; the eye is on the normal through the
        screen centre, ``distance_mm`` away.

    Returns
    -------
    (...) float64, degrees
    """
    a = np.asarray(a_xy_px, dtype=np.float64)
    b = np.asarray(b_xy_px, dtype=np.float64)
    ax, ay = _centred_mm(a[..., 0], a[..., 1], geometry)
    bx, by = _centred_mm(b[..., 0], b[..., 1], geometry)
    d = geometry.distance_mm
    va = np.stack([ax, ay, np.full_like(ax, d)], axis=-1)
    vb = np.stack([bx, by, np.full_like(bx, d)], axis=-1)
    cross = np.linalg.norm(np.cross(va, vb), axis=-1)
    dot = np.sum(va * vb, axis=-1)
    return np.degrees(np.arctan2(cross, dot))


def angular_position_deg(
    x_px: ArrayLike, y_px: ArrayLike, geometry: Screen
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Horizontal and vertical gaze angles, degrees, from the screen centre's normal."""
    mx, my = _centred_mm(
        np.asarray(x_px, dtype=np.float64), np.asarray(y_px, dtype=np.float64), geometry
    )
    d = geometry.distance_mm
    return np.degrees(np.arctan2(mx, d)), np.degrees(np.arctan2(my, d))


def _valid_mask(
    x: NDArray[np.float64], y: NDArray[np.float64], valid: ArrayLike
) -> NDArray[np.bool_]:
    v = np.asarray(valid, dtype=bool)
    if v.shape != x.shape or x.shape != y.shape:
        raise ValueError(
            f"x_px {x.shape}, y_px {y.shape} and valid {v.shape} must have the same shape"
        )
    return v & np.isfinite(x) & np.isfinite(y)


def precision_deg(
    x_px: ArrayLike, y_px: ArrayLike, valid: ArrayLike, geometry: Screen
) -> tuple[float, float]:
    """``(rms_s2s_deg, std_deg)`` of a run of samples (module docstring definitions).

    RMS-S2S uses adjacent pairs that are both valid (NaN with none); STD the valid
    samples (NaN with fewer than two).
    """
    x = np.asarray(x_px, dtype=np.float64).ravel()
    y = np.asarray(y_px, dtype=np.float64).ravel()
    m = _valid_mask(x, y, np.asarray(valid).ravel())
    pair = m[1:] & m[:-1]
    if pair.any():
        xy = np.column_stack([x, y])
        theta = angular_distance_deg(xy[:-1][pair], xy[1:][pair], geometry)
        rms = float(np.sqrt(np.mean(theta**2)))
    else:
        rms = math.nan
    if int(m.sum()) >= 2:
        ax, ay = angular_position_deg(x[m], y[m], geometry)
        std = float(np.sqrt(np.var(ax) + np.var(ay)))
    else:
        std = math.nan
    return rms, std


def data_loss_pct(valid: ArrayLike, expected_samples: int | None = None) -> float:
    """Missing or invalid samples, percent of ``expected_samples`` (default: of those given).

    More valid samples than expected (a tracker running fast) count as no loss.
    """
    v = np.asarray(valid, dtype=bool).ravel()
    n_valid = int(v.sum())
    expected = v.size if expected_samples is None else int(expected_samples)
    if expected < 0:
        raise ValueError(f"expected_samples = {expected_samples} must be >= 0")
    if expected == 0:
        return 0.0 if v.size == 0 else math.nan
    return 100.0 * max(0, expected - n_valid) / expected


def point_quality(
    target_px: tuple[float, float],
    x_px: ArrayLike,
    y_px: ArrayLike,
    valid: ArrayLike,
    geometry: Screen,
    *,
    expected_samples: int | None = None,
) -> PointQuality:
    """Accuracy, precision and data loss of the samples recorded on one target.

    Parameters
    ----------
    target_px : (float, float)
        Target ``(x, y)``, screen pixels.
    x_px, y_px : (N,) float, screen pixels
        Gaze samples in time order (already without the saccade to the target).
    valid : (N,) bool
        The tracker's validity flag; non-finite coordinates count as invalid too.
    geometry : DisplayGeometry or StimulusPlacement
        Pixels -> degrees, each axis with its own pixel size.
    expected_samples : int, optional
        Nominal rate × window duration; default ``N``.
    """
    x = np.asarray(x_px, dtype=np.float64).ravel()
    y = np.asarray(y_px, dtype=np.float64).ravel()
    m = _valid_mask(x, y, np.asarray(valid).ravel())
    tx, ty = float(target_px[0]), float(target_px[1])
    n = int(m.sum())
    if n:
        gx, gy = float(np.mean(x[m])), float(np.mean(y[m]))
        offset = (gx - tx, gy - ty)
        accuracy = float(angular_distance_deg((tx, ty), (gx, gy), geometry))
    else:
        offset = (math.nan, math.nan)
        accuracy = math.nan
    rms, std = precision_deg(x, y, m, geometry)
    expected = x.size if expected_samples is None else int(expected_samples)
    return PointQuality(
        target_px=(tx, ty),
        offset_px=offset,
        accuracy_deg=accuracy,
        rms_s2s_deg=rms,
        std_deg=std,
        n_samples=n,
        loss_pct=data_loss_pct(m, expected),
        n_expected=expected,
    )


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def validation_quality(points: Sequence[PointQuality]) -> ValidationQuality:
    """Summary of one validation run from its targets' :class:`PointQuality`."""
    pts = tuple(points)
    acc = [p.accuracy_deg for p in pts]
    finite_acc = [a for a in acc if math.isfinite(a)]
    expected = sum(p.n_expected for p in pts)
    if expected > 0:
        missing = sum(p.loss_pct / 100.0 * p.n_expected for p in pts)
        loss = 100.0 * missing / expected
    else:
        loss = _nanmean([p.loss_pct for p in pts])
    return ValidationQuality(
        points=pts,
        mean_accuracy_deg=_nanmean(acc),
        max_accuracy_deg=max(finite_acc) if finite_acc else math.nan,
        rms_s2s_deg=_nanmean([p.rms_s2s_deg for p in pts]),
        std_deg=_nanmean([p.std_deg for p in pts]),
        loss_pct=loss,
    )


def validation_run_quality(
    samples: Mapping[str, ArrayLike],
    targets: Sequence[tuple[float, float]],
    windows: Sequence[tuple[float, float]],
    geometry: Screen,
    *,
    rate_hz: float | None = None,
    settle_s: float = 0.5,
) -> ValidationQuality:
    """Quality of a validation run from its samples (a store table: ``local_s``, ``x``,
    ``y``, ``valid``), its targets (screen px) and each target's ``(start, end)`` window
    in local seconds.

    The first ``settle_s`` of each window (the saccade to the target) is left out; with
    ``rate_hz``, ``rate_hz × (end - start - settle_s)`` samples are expected per target.
    """
    t = np.asarray(samples["local_s"], dtype=np.float64)
    x = np.asarray(samples["x"], dtype=np.float64)
    y = np.asarray(samples["y"], dtype=np.float64)
    valid = np.asarray(samples["valid"], dtype=bool)
    points = []
    for target, (t0, t1) in zip(targets, windows, strict=True):
        m = (t >= t0 + settle_s) & (t <= t1)
        expected = None if rate_hz is None else max(0, round(rate_hz * (t1 - t0 - settle_s)))
        points.append(point_quality(target, x[m], y[m], valid[m], geometry,
                                    expected_samples=expected))  # fmt: skip
    return validation_quality(points)


@dataclass(frozen=True)
class TrialQuality:
    """Data quality of one trial's image phase (accuracy belongs to the validations).

    Attributes
    ----------
    trial_index : int
    duration_s : float
        Length of the image phase, seconds.
    n_samples : int
        Valid samples recorded in it.
    n_expected : int
        ``round(rate_hz * duration_s)``.
    loss_pct : float
        Missing or invalid samples, percent of ``n_expected``.
    rms_s2s_deg, std_deg : float
        Precision during fixations (:func:`fixation_precision_deg`), degrees.
    """

    trial_index: int
    duration_s: float
    n_samples: int
    n_expected: int
    loss_pct: float
    rms_s2s_deg: float
    std_deg: float


def fixation_precision_deg(
    x_px: ArrayLike,
    y_px: ArrayLike,
    valid: ArrayLike,
    t_s: ArrayLike,
    geometry: Screen,
    velocity_deg_s: float = 30.0,
) -> tuple[float, float]:
    """``(rms_s2s_deg, std_deg)`` during fixations of a free-viewing recording.

    Over a trial the eyes move, so precision is measured only where they stand still
    (Holmqvist et al. 2012): pairs of adjacent valid samples whose angular velocity is at
    most ``velocity_deg_s`` (the I-VT threshold, docs/algorithms.md#fixations) are fixation steps.
    RMS-S2S is over those steps; STD is pooled over the runs of samples they link
    (``sqrt`` of the summed squared deviations from each run's own mean, in angular
    coordinates, over the samples of runs of two or more). NaN where there are none.
    """
    x = np.asarray(x_px, dtype=np.float64).ravel()
    y = np.asarray(y_px, dtype=np.float64).ravel()
    t = np.asarray(t_s, dtype=np.float64).ravel()
    m = _valid_mask(x, y, np.asarray(valid).ravel())
    if t.shape != x.shape:
        raise ValueError(f"t_s {t.shape} and x_px {x.shape} must have the same shape")
    if x.size < 2:
        return math.nan, math.nan
    xy = np.column_stack([x, y])
    theta = angular_distance_deg(xy[:-1], xy[1:], geometry)
    dt = np.diff(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        still = m[1:] & m[:-1] & (dt > 0) & (theta <= velocity_deg_s * dt)
    rms = float(np.sqrt(np.mean(theta[still] ** 2))) if still.any() else math.nan
    # runs of samples linked by fixation steps: a new run starts after every non-step
    run = np.concatenate([[0], np.cumsum(~still)])
    ax, ay = angular_position_deg(x, y, geometry)
    linked = np.zeros(x.size, dtype=bool)
    linked[1:] |= still
    linked[:-1] |= still
    if not linked.any():
        return rms, math.nan
    r = run[linked]
    sizes = np.bincount(r)
    ss = 0.0
    for a in (ax[linked], ay[linked]):
        sums = np.bincount(r, weights=a)
        means = np.divide(sums, sizes, out=np.zeros_like(sums), where=sizes > 0)
        ss += float(np.sum((a - means[r]) ** 2))
    return rms, math.sqrt(ss / int(linked.sum()))


def trial_quality(
    trial_index: int,
    x_px: ArrayLike,
    y_px: ArrayLike,
    valid: ArrayLike,
    t_s: ArrayLike,
    geometry: Screen,
    *,
    rate_hz: float,
    duration_s: float,
    velocity_deg_s: float = 30.0,
) -> TrialQuality:
    """Data loss and fixation precision of one trial's image-phase samples.

    ``duration_s`` is the phase's length on screen; ``rate_hz`` the tracker's nominal
    rate: ``round(rate_hz * duration_s)`` samples are expected.
    """
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz = {rate_hz!r} must be a positive number")
    x = np.asarray(x_px, dtype=np.float64).ravel()
    y = np.asarray(y_px, dtype=np.float64).ravel()
    m = _valid_mask(x, y, np.asarray(valid).ravel())
    expected = max(0, round(rate_hz * max(0.0, duration_s)))
    rms, std = fixation_precision_deg(x, y, m, t_s, geometry, velocity_deg_s)
    return TrialQuality(
        trial_index=int(trial_index),
        duration_s=float(duration_s),
        n_samples=int(m.sum()),
        n_expected=expected,
        loss_pct=data_loss_pct(m, expected),
        rms_s2s_deg=rms,
        std_deg=std,
    )


@dataclass(frozen=True)
class QualityThresholds:
    """Limits a validation must meet before the trials start.

    ``max_loss_pct`` (optional) also bounds the run's data loss.
    """

    mean_accuracy_deg: float = 1.0
    max_point_accuracy_deg: float = 1.5
    max_loss_pct: float | None = None

    def problems(self, v: ValidationQuality) -> list[str]:
        """One line per unmet limit; empty when the validation passes."""
        out: list[str] = []
        if not v.points:
            return ["no validation targets were measured"]
        missing = [i for i, p in enumerate(v.points, 1) if not math.isfinite(p.accuracy_deg)]
        if missing:
            out.append(f"no valid gaze on target(s) {', '.join(map(str, missing))}")
        if not math.isfinite(v.mean_accuracy_deg):
            return out
        if v.mean_accuracy_deg > self.mean_accuracy_deg:
            out.append(
                f"mean accuracy {v.mean_accuracy_deg:.2f}° exceeds {self.mean_accuracy_deg:.2f}°"
            )
        for i, p in enumerate(v.points, 1):
            if math.isfinite(p.accuracy_deg) and p.accuracy_deg > self.max_point_accuracy_deg:
                out.append(
                    f"target {i} accuracy {p.accuracy_deg:.2f}° exceeds "
                    f"{self.max_point_accuracy_deg:.2f}°"
                )
        if self.max_loss_pct is not None and v.loss_pct > self.max_loss_pct:
            out.append(f"data loss {v.loss_pct:.1f}% exceeds {self.max_loss_pct:.1f}%")
        return out
