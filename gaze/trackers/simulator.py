"""A protocol-faithful Eye Tribe server simulator (SPEC §3), and a synthetic observer.

:class:`EyeTribeSimulator` listens on TCP like the real server (port 6555 by
default), answers ``tracker get/set``, ``heartbeat`` and the ``calibration``
flow, pushes frames at 30/60 Hz (or up to 1000 Hz for stress tests), and drops
a client that stops sending heartbeats. Gaze comes from a *gaze source*:

- :class:`SyntheticObserver` — fixations with gamma-distributed durations
  (mean ≈ 250 ms) on targets drawn from a priority map (e.g. the synthetic
  faces' diagnostic regions, placed where the stimulus is on screen), saccades
  between them, measurement noise, blinks and lost frames;
- :class:`ReplaySource` — frames replayed from a JSON-lines file.

Frames carry the tracker clock ``time`` advancing by exactly one period each,
so a client can verify that no frame was lost.

Bad settings (port, rate, heartbeat, replay file) raise
:class:`~gazelab.gaze.trackers.eyetribe.TrackerError` saying what to change. A
client that sends a malformed request gets a 400 reply; one that breaks the
server's handling of it is dropped with one line in the log, never a traceback.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.trackers import protocol as P
from gazelab.gaze.trackers.base import (
    STATE_OK,
    STATE_TRACKING_FAIL,
    STATE_TRACKING_GAZE,
    STATE_TRACKING_LOST,
    STATE_TRACKING_PRESENCE,
)
from gazelab.gaze.trackers.eyetribe import TrackerError
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker

log = logging.getLogger(__name__)

MAX_RATE_HZ = 1000
HEARTBEAT_MS_RANGE = (10, 60_000)
MAX_REPLAY_BYTES = 256 * 1024 * 1024
"""Largest replay file read (about 2 million frames, over 9 hours at 60 Hz)."""


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


class ReplaySource:
    """Replays gaze from a JSON-lines file of ``{"t_ms", "x", "y", "fix", "state"}`` objects.

    Frames are looked up by time (last frame at or before ``t``), looping at the end.
    ``t_ms``, ``x`` and ``y`` are required finite numbers, ``t_ms`` increasing;
    ``fix`` (bool, default false) and ``state`` (0..255, default 7) are optional.

    Raises
    ------
    TrackerError
        The file is missing, unreadable, too large, or a line is not such an
        object (the message names the file and line).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        t, x, y, fix, state = _read_replay(path)
        self.t = np.array(t, dtype=np.float64)
        self.x = np.array(x, dtype=np.float64)
        self.y = np.array(y, dtype=np.float64)
        self.fix = np.array(fix, dtype=bool)
        self.state = np.array(state, dtype=np.int64)
        self.period = float(self.t[-1] - self.t[0]) + (
            float(np.median(np.diff(self.t))) if len(self.t) > 1 else 1.0
        )

    def at(self, t_ms: float) -> GazePoint:
        t = self.t[0] + (t_ms - self.t[0]) % self.period if t_ms >= self.t[0] else self.t[0]
        k = max(int(np.searchsorted(self.t, t, side="right")) - 1, 0)
        return GazePoint(float(self.x[k]), float(self.y[k]), bool(self.fix[k]), int(self.state[k]))


_REPLAY_FORMAT = (
    'each line must be a JSON object like {"t_ms": 0, "x": 640, "y": 360, "fix": true, '
    '"state": 7} with t_ms increasing'
)


def _read_replay(
    path: Path,
) -> tuple[list[float], list[float], list[float], list[bool], list[int]]:
    """Read and check a replay file: (t_ms, x, y, fix, state) columns."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise TrackerError(f"replay file {path} is not a file; give a JSON-lines file")
        if size > MAX_REPLAY_BYTES:
            raise TrackerError(
                f"replay file {path} is {size / 2**20:.0f} MiB, over the "
                f"{MAX_REPLAY_BYTES // 2**20} MiB limit; replay a shorter recording"
            )
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TrackerError(
            f"replay file {path} does not exist; give the path of a JSON-lines gaze file"
        ) from None
    except UnicodeDecodeError as exc:
        raise TrackerError(
            f"replay file {path} is not UTF-8 text (byte {exc.start}); {_REPLAY_FORMAT}"
        ) from None
    except OSError as exc:
        raise TrackerError(f"replay file {path} cannot be read ({exc.strerror})") from None
    t: list[float] = []
    x: list[float] = []
    y: list[float] = []
    fix: list[bool] = []
    state: list[int] = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        t_ms, x_px, y_px, fixated, bits = _replay_row(line, path, line_no)
        if t and t_ms <= t[-1]:
            raise TrackerError(
                f"replay file {path}, line {line_no}: t_ms {t_ms:g} does not increase "
                f"(previous {t[-1]:g}); {_REPLAY_FORMAT}"
            )
        t.append(t_ms)
        x.append(x_px)
        y.append(y_px)
        fix.append(fixated)
        state.append(bits)
    if not t:
        raise TrackerError(f"replay file {path} holds no frames; {_REPLAY_FORMAT}")
    return t, x, y, fix, state


def _replay_row(line: str, path: Path, line_no: int) -> tuple[float, float, float, bool, int]:
    def bad(what: str) -> TrackerError:
        return TrackerError(f"replay file {path}, line {line_no}: {what}; {_REPLAY_FORMAT}")

    try:
        r = json.loads(line)
    except (ValueError, RecursionError):
        raise bad("not JSON") from None
    if not isinstance(r, dict):
        raise bad("not a JSON object")
    nums = []
    for key in ("t_ms", "x", "y"):
        v = r.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(f"{key} must be a number")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise bad(f"{key} must be finite")
        nums.append(f)
    fix = r.get("fix", False)
    if not isinstance(fix, bool):
        raise bad("fix must be true or false")
    state = r.get("state", STATE_OK)
    if isinstance(state, bool) or not isinstance(state, int) or not 0 <= state <= 0xFF:
        raise bad("state must be an integer 0..255 (Eye Tribe state bits)")
    return nums[0], nums[1], nums[2], fix, state


class RunsUntilStopped:
    """``with sim:`` / :meth:`serve_forever` for a simulator with ``start()``, ``stop()`` and a
    ``_stop`` event (the TCP servers and the LSL outlet)."""

    _stop: threading.Event

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run until interrupted (``gazelab simulate-tracker``)."""
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()


class TcpSimulatorServer(RunsUntilStopped):
    """A threaded TCP server: listen on ``host:port`` (0 = a free port), one thread per
    client running :meth:`_client_loop`. Subclasses set ``busy_hint`` (what may hold the
    port) and implement the protocol."""

    busy_hint = "another simulator"
    host: str
    port: int

    def _init_server(self) -> None:
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Any:
        """Listen and serve in background threads.

        Raises
        ------
        TrackerError
            The address cannot be listened on (port in use, unknown host).
        """
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind((self.host, self.port))
        except (OSError, OverflowError) as exc:
            srv.close()
            why = getattr(exc, "strerror", None) or str(exc)
            raise TrackerError(
                f"cannot listen on {self.host}:{self.port} ({why}); is {self.busy_hint} "
                "running? Use --port to choose another port (0: any free one)"
            ) from None
        srv.listen(8)
        srv.settimeout(0.2)
        self._server = srv
        self.port = srv.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="sim-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for t in self._threads:
            t.join(timeout=2.0)

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._client_loop, args=(conn,), daemon=True)
            t.start()
            # keep the accept thread and live clients only: many short clients must not pile up
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)

    def _client_loop(self, conn: socket.socket) -> None:
        raise NotImplementedError


class EyeTribeSimulator(TcpSimulatorServer):
    """An Eye Tribe server on ``host:port`` speaking the real protocol.

    Use as a context manager, or :meth:`start` / :meth:`stop`. ``port=0`` picks
    a free port (see :attr:`port`).
    """

    busy_hint = "another Eye Tribe server"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = P.DEFAULT_PORT,
        *,
        rate_hz: int = 60,
        screen_px: tuple[int, int] = (2560, 1440),
        source: GazeSource | None = None,
        heartbeat_ms: int = 250,
        heartbeat_timeout_factor: float = 4.0,
        calibration_error_deg: float = 0.5,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_int("port", port, 0, 65535, "0 picks a free port; the Eye Tribe default is 6555")
        _check_int("rate", rate_hz, 1, MAX_RATE_HZ, "the ET1000 runs at 30 or 60 Hz")
        lo, hi = HEARTBEAT_MS_RANGE
        _check_int("heartbeat interval (ms)", heartbeat_ms, lo, hi, "the Eye Tribe uses 250")
        if not heartbeat_timeout_factor > 1:
            raise TrackerError(
                f"heartbeat_timeout_factor {heartbeat_timeout_factor} must be above 1 "
                "(the server waits that many intervals before dropping a client)"
            )
        w, h = screen_px
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            raise TrackerError(f"screen size {screen_px} must be two positive integers (pixels)")
        self.host = host
        self.port = port
        self.rate_hz = rate_hz
        self.screen_px = screen_px
        self.source: GazeSource = source or SyntheticObserver(screen_px, seed=seed)
        self.heartbeat_ms = heartbeat_ms
        self.heartbeat_timeout_s = heartbeat_ms / 1000.0 * heartbeat_timeout_factor
        self.calibration_error_deg = calibration_error_deg
        self.rng = np.random.default_rng(seed + 1)
        self.clock = clock
        self.frames_sent = 0
        self.clients_dropped = 0
        self.iscalibrated = False
        self.calibresult: dict[str, Any] | None = None
        self._init_server()
        self._t0 = clock()
        self._epoch0 = time.time()
        self._src_lock = threading.Lock()

    # -- per client ------------------------------------------------------------------------
    def _tracker_time_ms(self) -> float:
        return (self.clock() - self._t0) * 1000.0

    def _tracker_values(self, keys: list[Any], state: dict[str, Any]) -> dict[str, Any]:
        table = {
            "push": state["push"],
            "heartbeatinterval": self.heartbeat_ms,
            "version": P.PROTOCOL_VERSION,
            "trackerstate": 0,
            "framerate": self.rate_hz,
            "iscalibrated": self.iscalibrated,
            "iscalibrating": state["calib"] is not None,
            "screenindex": 0,
            "screenresw": self.screen_px[0],
            "screenresh": self.screen_px[1],
            "screenpsyw": 0.5977,
            "screenpsyh": 0.3362,
        }
        if self.calibresult is not None:
            table["calibresult"] = self.calibresult
        return {k: table[k] for k in keys if isinstance(k, str) and k in table}

    def _client_loop(self, conn: socket.socket) -> None:
        state: dict[str, Any] = {"push": False, "calib": None, "last_hb": self.clock()}
        send_lock = threading.Lock()
        alive = threading.Event()
        alive.set()

        def send(msg: dict[str, Any]) -> None:
            data = P.encode(msg)
            with send_lock:
                conn.sendall(data)

        pusher = threading.Thread(
            target=self._push_loop, args=(send, state, alive), daemon=True, name="sim-push"
        )
        pusher.start()
        conn.settimeout(0.05)
        lines = P.LineSplitter()
        try:
            while not self._stop.is_set() and alive.is_set():
                if self.clock() - state["last_hb"] > self.heartbeat_timeout_s:
                    self.clients_dropped += 1  # no heartbeat: drop, as the real server does
                    break
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                dropped = lines.dropped
                for line in lines.feed(chunk):
                    if line.strip():
                        self._handle(line, send, state)
                if lines.dropped != dropped:
                    send(P.reply("tracker", None, 400, message="request line too long"))
        except OSError:
            pass
        except Exception as exc:  # a request the server cannot handle: drop the client, say why
            self.clients_dropped += 1
            log.warning(
                "Eye Tribe simulator: dropped a client after a request it could not handle "
                "(%s: %.200s)",
                type(exc).__name__,
                str(exc).replace("\n", " "),
            )
        finally:
            alive.clear()
            pusher.join(timeout=1.0)
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _handle(
        self, line: bytes, send: Callable[[dict[str, Any]], None], state: dict[str, Any]
    ) -> None:
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):  # also bad UTF-8 and ints over 4300 digits
            send(P.reply("tracker", None, 400, message="malformed JSON"))
            return
        if not isinstance(msg, dict):
            send(P.reply("tracker", None, 400, message="request must be a JSON object"))
            return
        cat, req, values = msg.get("category"), msg.get("request"), msg.get("values")
        if cat == "heartbeat":
            state["last_hb"] = self.clock()
            send(P.reply("heartbeat", None))
            return
        if cat == "tracker" and req == "get":
            keys = values if isinstance(values, list) else []
            send(P.reply("tracker", "get", values=self._tracker_values(keys, state)))
            return
        if cat == "tracker" and req == "set":
            if not isinstance(values, dict):
                send(P.reply("tracker", "set", 400, message="set needs values"))
                return
            if "push" in values:
                state["push"] = bool(values["push"])
            send(P.reply("tracker", "set"))
            return
        if cat == "calibration":
            self._handle_calibration(req, values, send, state)
            return
        send(P.reply(str(cat), req, 400, message="unknown category or request"))

    def _handle_calibration(
        self, req: Any, values: Any, send: Callable[[dict[str, Any]], None], state: dict[str, Any]
    ) -> None:
        calib = state["calib"]
        if req == "start":
            count = values.get("pointcount") if isinstance(values, dict) else None
            if not isinstance(count, int) or count < 1:
                send(P.reply("calibration", "start", 400, message="pointcount missing"))
                return
            state["calib"] = {"count": count, "points": [], "current": None}
            send(P.reply("calibration", "start"))
        elif req == "pointstart":
            if calib is None or not isinstance(values, dict):
                send(P.reply("calibration", "pointstart", 403, message="calibration not started"))
                return
            xy = (values.get("x", 0), values.get("y", 0))
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xy):
                send(P.reply("calibration", "pointstart", 400, message="x and y must be numbers"))
                return
            try:
                calib["current"] = (float(xy[0]), float(xy[1]))
            except OverflowError:
                send(P.reply("calibration", "pointstart", 400, message="x or y too large"))
                return
            send(P.reply("calibration", "pointstart"))
        elif req == "pointend":
            if calib is None or calib["current"] is None:
                send(P.reply("calibration", "pointend", 403, message="no point started"))
                return
            calib["points"].append(calib["current"])
            calib["current"] = None
            if len(calib["points"]) < calib["count"]:
                send(P.reply("calibration", "pointend"))
                return
            result = self._calibresult(calib["points"])
            self.iscalibrated, self.calibresult = result["result"], result
            state["calib"] = None
            send(P.reply("calibration", "pointend", values={"calibresult": result}))
            send(
                P.reply(
                    "tracker",
                    "get",
                    P.STATUS_CALIBRATION_CHANGED,
                    values={"iscalibrated": self.iscalibrated, "calibresult": result},
                )
            )
        elif req in ("abort", "clear"):
            state["calib"] = None
            if req == "clear":
                self.iscalibrated, self.calibresult = False, None
            send(P.reply("calibration", req))
        else:
            send(P.reply("calibration", req, 400, message="unknown calibration request"))

    def _calibresult(self, points: list[tuple[float, float]]) -> dict[str, Any]:
        px_per_deg = 52.36
        cps: list[dict[str, Any]] = []
        for x, y in points:
            err = abs(self.rng.normal(self.calibration_error_deg, self.calibration_error_deg / 3))
            errl = abs(err + self.rng.normal(0, 0.1))
            errr = abs(err + self.rng.normal(0, 0.1))
            ang = self.rng.uniform(0, 2 * math.pi)
            mx, my = x + err * px_per_deg * math.cos(ang), y + err * px_per_deg * math.sin(ang)
            cps.append(
                {
                    "state": 2,
                    "cp": {"x": x, "y": y},
                    "mecp": {"x": mx, "y": my},
                    "acd": {"ad": err, "adl": errl, "adr": errr},
                    "mepix": {
                        "mep": err * px_per_deg,
                        "mepl": errl * px_per_deg,
                        "mepr": errr * px_per_deg,
                    },
                    "asdp": {"asd": 8.0, "asdl": 9.0, "asdr": 9.0},
                }
            )
        deg = float(np.mean([c["acd"]["ad"] for c in cps]))
        return {
            "result": deg < 1.5,
            "deg": deg,
            "degl": float(np.mean([c["acd"]["adl"] for c in cps])),
            "degr": float(np.mean([c["acd"]["adr"] for c in cps])),
            "calibpoints": cps,
        }

    def frame(self, t_ms: float) -> dict[str, Any]:
        """The pushed frame for tracker time ``t_ms`` (also used to write replay files)."""
        with self._src_lock:
            g = self.source.at(t_ms)
        ok = g.state & STATE_TRACKING_GAZE and not g.state & (
            STATE_TRACKING_FAIL | STATE_TRACKING_LOST
        )
        x, y = (g.x, g.y) if ok else (0.0, 0.0)
        eye = {
            "raw": {"x": x, "y": y},
            "avg": {"x": x, "y": y},
            "psize": 22.0 if ok else 0.0,
            "pcenter": {"x": 0.45 if ok else 0.0, "y": 0.5 if ok else 0.0},
        }
        return {
            "timestamp": P.timestamp_string(self._epoch0 + t_ms / 1000.0),
            "time": int(round(t_ms)),
            "fix": bool(g.fix),
            "state": int(g.state),
            "raw": {"x": x, "y": y},
            "avg": {"x": x, "y": y},
            "lefteye": eye,
            "righteye": eye,
        }

    def _push_loop(
        self, send: Callable[[dict[str, Any]], None], state: dict[str, Any], alive: threading.Event
    ) -> None:
        period_ms = 1000.0 / self.rate_hz
        k = 0
        t_start: float | None = None
        while alive.is_set() and not self._stop.is_set():
            if not state["push"]:
                t_start = None
                time.sleep(0.005)
                continue
            now_ms = self._tracker_time_ms()
            if t_start is None:
                t_start, k = now_ms, 0
            # Send every frame that is due; frame times advance by exactly one period.
            while t_start + k * period_ms <= now_ms and state["push"]:
                t = t_start + k * period_ms
                try:
                    send(P.reply("tracker", "get", values={"frame": self.frame(t)}))
                except OSError:
                    alive.clear()
                    return
                except Exception as exc:  # a gaze source that fails: end this client, say why
                    log.warning(
                        "Eye Tribe simulator: stopped pushing frames (%s: %.200s)",
                        type(exc).__name__,
                        exc,
                    )
                    alive.clear()
                    return
                self.frames_sent += 1
                k += 1
            next_ms = t_start + k * period_ms
            time.sleep(max(0.0, (next_ms - self._tracker_time_ms()) / 1000.0))


def _check_int(name: str, value: object, lo: int, hi: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise TrackerError(f"simulator {name} {value!r} must be an integer in {lo}..{hi} ({hint})")


@register_tracker("sim", "the Eye Tribe simulator in-process, through the real TCP client",
                  simulated=True, model="gazelab Eye Tribe simulator")  # fmt: skip
def open_simulated_eyetribe(request: TrackerRequest) -> OpenTracker:
    from gazelab.gaze.trackers.eyetribe import EyeTribeTracker

    observer = SyntheticObserver(request.screen_px, seed=request.seed)
    sim = EyeTribeSimulator(port=0, rate_hz=request.rate_hz, screen_px=request.screen_px,
                            source=observer).start()  # fmt: skip
    try:
        tracker = EyeTribeTracker("127.0.0.1", sim.port, clock=request.clock)
        tracker.connect()
    except BaseException:
        sim.stop()
        raise
    return OpenTracker(tracker, sim, observer)
