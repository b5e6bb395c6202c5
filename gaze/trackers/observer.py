"""A synthetic observer: a plausible gaze signal looking at a priority map, with the
measurement noise of a class of eye tracker (the simulators' gaze source).

Fixations have gamma-distributed durations (mean ≈ 250 ms) on targets drawn from a
priority map (e.g. the synthetic faces' diagnostic regions, placed where the stimulus is
on screen), with saccades between them, measurement noise (white, or drift plus white
noise to match a tracker's RMS-S2S and STD, :class:`Precision`), a calibration offset,
blinks and lost frames. A *gaze source* is anything with ``at(t_ms) -> GazePoint``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.trackers.base import STATE_OK, STATE_TRACKING_FAIL, STATE_TRACKING_PRESENCE


@dataclass(frozen=True)
class GazePoint:
    """What a gaze source says for one frame: screen px, fixation flag, state bits."""

    x: float
    y: float
    fix: bool
    state: int


class GazeSource(Protocol):
    def at(self, t_ms: float) -> GazePoint: ...


DRIFT_TAU_MS = 100.0
"""Default time constant of the simulated drift (ms). A third figure besides RMS-S2S
and STD fixes it per class: the 20 ms Savitzky–Golay speed during fixations, what the
velocity detectors see (EyeLink recordings: median about 2 °/s, given by 100 ms; the
TX300's: about 11 °/s, given by 15 ms)."""


@dataclass(frozen=True)
class Precision:
    """A tracker's precision during fixations at one sampling rate (Holmqvist et al. 2012).

    ``rms_s2s_deg`` is the RMS of the 2-D sample-to-sample distances, ``std_deg`` the
    2-D standard deviation ``sqrt(var x + var y)``, both in degrees. Their ratio says
    how coloured the signal is: white noise has ``rms_s2s = √2 · std``; a filtered
    signal with drift (EyeLink) has a far smaller ratio (Niehorster et al. 2020).
    """

    rate_hz: float
    rms_s2s_deg: float
    std_deg: float
    drift_tau_ms: float = DRIFT_TAU_MS

    def components(self) -> tuple[float, float, float]:
        """``(drift_sd, white_sd, rho)`` per axis (degrees; per-sample coefficient) of the
        noise model *drift + white*: an Ornstein–Uhlenbeck drift of time constant
        ``drift_tau_ms`` and independent white noise, which together give this RMS-S2S
        and STD.

        With ``a = 1 − rho`` and ``rho = exp(−dt / tau)``:
        ``STD² = 2 (d² + w²)`` and ``RMS-S2S² = 4 w² + 4 a d²``, so
        ``d² = (2 STD² − RMS²) / (4 (1 − a))``. A ratio of √2 or more is white noise.
        """
        rho = math.exp(-1000.0 / self.rate_hz / self.drift_tau_ms)
        a = 1.0 - rho
        rms2, std2 = self.rms_s2s_deg**2, self.std_deg**2
        d2 = max(2.0 * std2 - rms2, 0.0) / (4.0 * (1.0 - a))
        d2 = min(d2, std2 / 2.0)
        if d2 < 1e-3 * std2:  # white to within 0.1 %
            d2 = 0.0
        w2 = max(std2 / 2.0 - d2, 0.0)
        return math.sqrt(d2), math.sqrt(w2), rho


TRACKER_PRECISION: dict[str, tuple[Precision, ...]] = {
    # 30-60 Hz consumer trackers (Eye Tribe, Gazepoint GP3): the Eye Tribe's stated
    # 0.1° RMS and up; white noise of 0.15° STD, gazelab's simulator noise so far.
    "consumer": (Precision(30.0, 0.2121, 0.15), Precision(60.0, 0.2121, 0.15)),
    # Remote research trackers at 300 Hz: a Tobii TX300, measured per eye in the
    # fixations of the I2MC example recordings (medians of 12 eye-recordings: 0.21-0.37°
    # RMS-S2S, 0.18-0.26° STD; a 15 ms drift gives its fixations' velocity noise).
    "remote": (Precision(300.0, 0.27, 0.23, 15.0),),
    # Tower / desktop-mount EyeLink 1000 (head stabilised, heuristic filter 2), measured
    # in the EFIX fixations of the eyelinker example recordings at each rate.
    "tower": (
        Precision(250.0, 0.033, 0.089),
        Precision(500.0, 0.024, 0.075),
        Precision(1000.0, 0.0145, 0.074),
        Precision(2000.0, 0.018, 0.085),
    ),
}
"""Published-style precision (RMS-S2S, STD, degrees) of each tracker class by sampling
rate; see ``docs/fixations.md`` ("Simulated noise") for how each was obtained."""


def tracker_class(rate_hz: float) -> str:
    """The class of tracker that usually runs at ``rate_hz``: up to 150 Hz
    ``"consumer"`` (Eye Tribe 30/60, Gazepoint 60/150), up to 600 Hz ``"remote"``
    (Tobii TX300, Pro Spectrum), above ``"tower"`` (EyeLink 1000/2000)."""
    return "consumer" if rate_hz <= 150 else "remote" if rate_hz <= 600 else "tower"


def precision_at(kind: str, rate_hz: float) -> Precision:
    """The precision of tracker class ``kind`` at ``rate_hz``: interpolated linearly in
    log-rate between the measured rates, the nearest one outside them.

    >>> p = precision_at("tower", 1000)
    >>> (p.rms_s2s_deg, p.std_deg)
    (0.0145, 0.074)
    """
    if kind not in TRACKER_PRECISION:
        raise ValueError(
            f"unknown tracker class {kind!r}; choose one of {sorted(TRACKER_PRECISION)}"
        )
    table = TRACKER_PRECISION[kind]
    rates = np.log([p.rate_hz for p in table])
    r = math.log(max(float(rate_hz), 1e-9))
    rms = float(np.interp(r, rates, [p.rms_s2s_deg for p in table]))
    std = float(np.interp(r, rates, [p.std_deg for p in table]))
    return Precision(float(rate_hz), rms, std, table[0].drift_tau_ms)


def tracker_noise(n: int, precision: Precision, rng: np.random.Generator) -> NDArray[np.float64]:
    """``(n, 2)`` noise in degrees, sampled at ``precision.rate_hz``: per axis an
    Ornstein–Uhlenbeck drift plus white noise (:meth:`Precision.components`), so both
    the RMS-S2S and the STD of a fixation match the tracker's (stationary from the
    first sample on).

    >>> e = tracker_noise(200_000, precision_at("remote", 300), np.random.default_rng(0))
    >>> rms = np.sqrt(np.mean(np.sum(np.diff(e, axis=0) ** 2, axis=1)))
    >>> round(float(rms), 2), round(float(np.sqrt(e.var(axis=0).sum())), 2)
    (0.27, 0.23)
    """
    from scipy.signal import lfilter

    d, w, rho = precision.components()
    out = rng.normal(0.0, w, (n, 2)) if w > 0 else np.zeros((n, 2))
    if d > 0 and n:
        inn = rng.normal(0.0, d * math.sqrt(1.0 - rho * rho), (n, 2))
        inn[0] /= math.sqrt(1.0 - rho * rho)  # start in the stationary distribution
        out += lfilter([1.0], [1.0, -rho], inn, axis=0)
    return out


@dataclass(frozen=True)
class ObserverSettings:
    """Parameters of the synthetic observer (all times in ms, angles in degrees).

    The measurement noise has 2-D STD ``noise_deg`` and, when ``noise_rms_s2s_deg`` is
    set, that sample-to-sample RMS at ``rate_hz`` (drift plus white noise, see
    :meth:`Precision.components`); unset, it is white. :meth:`like` takes both from the tracker
    class table :data:`TRACKER_PRECISION`.
    """

    fixation_shape: float = 4.0  # gamma shape; mean duration = shape * scale
    fixation_scale_ms: float = 62.5
    min_fixation_ms: float = 80.0
    noise_deg: float = 0.15  # 2-D STD of the sample noise (precision)
    noise_rms_s2s_deg: float | None = None  # None: white noise (RMS-S2S = √2 noise_deg)
    rate_hz: float = 60.0  # the rate the noise's RMS-S2S holds at
    noise_drift_ms: float = DRIFT_TAU_MS  # time constant of the noise's drift
    offset_deg: float = 0.3  # systematic calibration offset (accuracy)
    blink_rate_hz: float = 0.25
    blink_ms: float = 150.0
    lost_probability: float = 0.005
    px_per_deg: float = 52.36  # reference set-up

    @classmethod
    def like(cls, kind: str, rate_hz: float, **kw: Any) -> ObserverSettings:
        """Settings whose noise is tracker class ``kind``'s at ``rate_hz``
        (:func:`precision_at`): ``"consumer"``, ``"remote"``, ``"tower"``, or ``"auto"``
        for the class that usually runs at that rate (:func:`tracker_class`)."""
        p = precision_at(tracker_class(rate_hz) if kind == "auto" else kind, rate_hz)
        return cls(noise_deg=p.std_deg, noise_rms_s2s_deg=p.rms_s2s_deg, rate_hz=rate_hz,
                   noise_drift_ms=p.drift_tau_ms, **kw)  # fmt: skip

    def precision(self) -> Precision:
        """The noise's :class:`Precision` at :attr:`rate_hz`."""
        rms = self.noise_rms_s2s_deg
        return Precision(self.rate_hz, math.sqrt(2.0) * self.noise_deg if rms is None else rms,
                         self.noise_deg, self.noise_drift_ms)  # fmt: skip


class SyntheticObserver:
    """Generates a plausible gaze signal looking at a priority map.

    The map is a ``(H, W)`` non-negative array placed on screen at ``rect``
    ``(x, y, width, height)``; fixation targets are drawn with probability
    proportional to it. Without a map, targets follow a centre-biased Gaussian.
    Deterministic for a seed; :meth:`at` must be called with increasing times.
    """

    def __init__(
        self,
        screen_px: tuple[int, int] = (2560, 1440),
        *,
        seed: int = 0,
        settings: ObserverSettings | None = None,
    ) -> None:
        self.screen_px = screen_px
        self.s = settings = settings or ObserverSettings()
        self.rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._map: NDArray[np.float64] | None = None
        self._rect = (0.0, 0.0, float(screen_px[0]), float(screen_px[1]))
        self._cdf: NDArray[np.float64] | None = None
        self._offset = self.rng.normal(
            0, settings.offset_deg * settings.px_per_deg / math.sqrt(2), 2
        )
        w, h = screen_px
        self._cur = np.array([w / 2.0, h / 2.0])
        self._prev = self._cur.copy()
        self._fix_start = 0.0
        self._sacc_ms = 0.0
        self._fix_end = self._fix_start + self._draw_duration()
        self._blink_until = -1.0
        self._next_blink = self._draw_blink_gap()
        self.fixations: list[tuple[float, float, float, float]] = []  # onset, offset, x, y
        drift, white, self._rho = settings.precision().components()
        self._drift_px, self._white_px = drift * settings.px_per_deg, white * settings.px_per_deg
        if settings.noise_rms_s2s_deg is None:  # white, the same draws as ever
            self._white_px = settings.noise_deg * settings.px_per_deg / math.sqrt(2)
        self._drift: NDArray[np.float64] | None = None

    def _noise_px(self) -> NDArray[np.float64]:
        """The next sample's measurement noise, px: white, plus a drift when the
        settings' precision asks for one (:meth:`Precision.components`)."""
        e = self.rng.normal(0, self._white_px, 2)
        if self._drift_px <= 0.0:
            return e
        rho = self._rho
        if self._drift is None:
            self._drift = self.rng.normal(0, self._drift_px, 2)  # stationary start
        else:
            step = self.rng.normal(0, self._drift_px * math.sqrt(1 - rho * rho), 2)
            self._drift = rho * self._drift + step
        return e + self._drift

    def set_priority_map(
        self, priority: NDArray[np.floating] | None, rect: tuple[float, float, float, float]
    ) -> None:
        """Look at ``priority`` shown at screen ``rect``; ``None`` = centre-biased free viewing."""
        with self._lock:
            if priority is None:
                self._map, self._cdf = None, None
            else:
                p = np.clip(np.asarray(priority, dtype=np.float64), 0, None)
                total = p.sum()
                if total <= 0:
                    p = np.ones_like(p)
                    total = p.sum()
                self._map = p
                self._cdf = np.cumsum(p.ravel()) / total
            self._rect = tuple(float(v) for v in rect)  # type: ignore[assignment]

    def look_at(self, xy: tuple[float, float]) -> None:
        """Fixate one screen point (a cross, a calibration target)."""
        point = np.zeros((9, 9), dtype=np.float64)
        point[4, 4] = 1.0
        self.set_priority_map(point, (xy[0] - 4.5, xy[1] - 4.5, 9.0, 9.0))

    def look_at_image(
        self,
        regions: NDArray[np.floating] | None,
        shape: tuple[int, int],
        rect: tuple[float, float, float, float],
    ) -> None:
        """View an image of ``shape`` shown at ``rect``: its diagnostic ``regions`` when
        known, else the whole image uniformly."""
        prio = np.ones(shape) if regions is None else np.asarray(regions, dtype=np.float64)
        self.set_priority_map(prio, rect)

    def _draw_blink_gap(self) -> float:
        if self.s.blink_rate_hz <= 0:
            return math.inf
        return float(self.rng.exponential(1000.0 / self.s.blink_rate_hz))

    def _draw_duration(self) -> float:
        d = self.rng.gamma(self.s.fixation_shape, self.s.fixation_scale_ms)
        return float(max(d, self.s.min_fixation_ms))

    def _draw_target(self) -> NDArray[np.float64]:
        x0, y0, rw, rh = self._rect
        if self._cdf is not None and self._map is not None:
            h, w = self._map.shape
            k = int(np.searchsorted(self._cdf, self.rng.random()))
            k = min(k, h * w - 1)
            r, c = divmod(k, w)
            jitter = self.rng.random(2)
            return np.array([x0 + (c + jitter[0]) * rw / w, y0 + (r + jitter[1]) * rh / h])
        sw, sh = self.screen_px
        target = self.rng.normal([sw / 2, sh / 2], [sw / 8, sh / 8])
        return np.clip(target, [0, 0], [sw - 1, sh - 1])

    def at(self, t_ms: float) -> GazePoint:
        with self._lock:
            while t_ms >= self._fix_end:
                # end this fixation; saccade to the next target (main sequence ~2.2 ms/deg + 21 ms)
                self.fixations.append((self._fix_start, self._fix_end, *self._cur))
                self._prev = self._cur
                self._cur = self._draw_target()
                amp_deg = float(np.hypot(*(self._cur - self._prev))) / self.s.px_per_deg
                self._sacc_ms = 21.0 + 2.2 * amp_deg
                self._fix_start = self._fix_end + self._sacc_ms
                self._fix_end = self._fix_start + self._draw_duration()
            if t_ms >= self._next_blink:  # blinks as a Poisson process
                self._blink_until = t_ms + self.s.blink_ms
                self._next_blink = self._blink_until + self._draw_blink_gap()
            if t_ms < self._blink_until:
                return GazePoint(0.0, 0.0, False, STATE_TRACKING_PRESENCE)
            if self.rng.random() < self.s.lost_probability:
                return GazePoint(0.0, 0.0, False, STATE_TRACKING_FAIL | STATE_TRACKING_PRESENCE)
            if t_ms < self._fix_start:  # in flight
                frac = 1.0 - (self._fix_start - t_ms) / self._sacc_ms
                frac = 0.5 - 0.5 * math.cos(math.pi * min(max(frac, 0.0), 1.0))
                pos = self._prev + frac * (self._cur - self._prev)
                fix = False
            else:
                pos = self._cur
                fix = t_ms - self._fix_start >= 60.0  # the tracker flags fixations after a delay
            x, y = pos + self._offset + self._noise_px()
            return GazePoint(float(x), float(y), fix, STATE_OK)
