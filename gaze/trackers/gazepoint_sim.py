"""A GazePoint Open Gaze API server simulator, sharing the synthetic observer.

:class:`GazePointSimulator` listens on TCP like Gazepoint Control (port 4242
by default; ``port=0`` picks a free one), answers ``GET``/``SET`` with
``ACK``/``NACK``, honours each client's ``ENABLE_SEND_*`` flags, streams
``<REC .../>`` lines at a fixed rate (60 or 150 Hz like the GP3 / GP3 HD, up
to 1000 Hz for stress tests) once ``ENABLE_SEND_DATA`` is on, and runs the
calibration flow (``CALIB_START_PT`` / ``CALIB_RESULT_PT`` per point, then
``CALIB_RESULT``). Gaze comes from a
:class:`~gazelab.gaze.trackers.simulator.SyntheticObserver` (or any gaze
source), asked with tracker time advancing by exactly one period per record,
so ``CNT`` and ``TIME`` let a client check that nothing was lost. Lines are
built by :func:`gazelab.gaze.trackers.gazepoint.element`, the client's own
writer, so both sides speak one dialect.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gazelab.gaze.trackers.base import (
    STATE_TRACKING_FAIL,
    STATE_TRACKING_GAZE,
    STATE_TRACKING_LOST,
)
from gazelab.gaze.trackers.gazepoint import (
    DEFAULT_PORT,
    MAX_LINE_BYTES,
    OpenGazeError,
    element,
    parse_line,
)
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker
from gazelab.gaze.trackers.simulator import GazeSource, SyntheticObserver, TcpSimulatorServer

DEFAULT_CALIBRATION = ((0.5, 0.5), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85), (0.15, 0.15))
"""Gazepoint Control's default 5-point list (``CALIBRATE_RESET``), screen fractions."""
ENABLE_IDS = (
    "ENABLE_SEND_DATA",
    "ENABLE_SEND_COUNTER",
    "ENABLE_SEND_TIME",
    "ENABLE_SEND_TIME_TICK",
    "ENABLE_SEND_POG_FIX",
    "ENABLE_SEND_POG_LEFT",
    "ENABLE_SEND_POG_RIGHT",
    "ENABLE_SEND_POG_BEST",
    "ENABLE_SEND_PUPIL_LEFT",
    "ENABLE_SEND_PUPIL_RIGHT",
    "ENABLE_SEND_CURSOR",
    "ENABLE_SEND_BLINK",
)


class GazePointSimulator(TcpSimulatorServer):
    """A GazePoint server on ``host:port`` speaking the Open Gaze API.

    Parameters
    ----------
    rate_hz : records per second (GP3: 60, GP3 HD: 150; 1..1000).
    screen_px : the tracked screen (``SCREEN_SIZE``), pixels.
    source : gaze source, screen px (default: a :class:`SyntheticObserver`).
    calibration_error_deg : mean simulated error per eye at each calibration point.
    px_per_deg : converts that error to pixels (reference set-up: 52.36).
    calibrate_delay_s, calibrate_timeout_s : animation and dwell time per point
        (``CALIBRATE_DELAY`` / ``CALIBRATE_TIMEOUT``; Gazepoint's defaults are 0.5 / 1.25).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        rate_hz: int = 60,
        screen_px: tuple[int, int] = (1920, 1080),
        source: GazeSource | None = None,
        calibration_error_deg: float = 0.5,
        px_per_deg: float = 52.36,
        calibrate_delay_s: float = 0.5,
        calibrate_timeout_s: float = 1.25,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= rate_hz <= 1000:
            raise ValueError(
                f"rate_hz = {rate_hz} must be in 1..1000 (the GP3 runs 60, the HD 150)"
            )
        self.host, self.port = host, port
        self.rate_hz = rate_hz
        self.screen_px = screen_px
        self.source: GazeSource = source or SyntheticObserver(screen_px, seed=seed)
        self.calibration_error_deg = calibration_error_deg
        self.px_per_deg = px_per_deg
        self.calibrate_delay_s = calibrate_delay_s
        self.calibrate_timeout_s = calibrate_timeout_s
        self.rng = np.random.default_rng(seed + 1)
        self.clock = clock
        self.records_sent = 0
        self.calibration_points: list[tuple[float, float]] = list(DEFAULT_CALIBRATION)
        self.last_calib: dict[str, Any] | None = None
        self._init_server()
        self._t0 = clock()
        self._src_lock = threading.Lock()
        self._fix_id = 0
        self._fix_start_s = 0.0
        self._in_fix = False

    # -- records ---------------------------------------------------------------------------
    def record(self, t_s: float, count: int, flags: dict[str, bool]) -> bytes:
        """The ``<REC>`` line for tracker time ``t_s`` seconds with the enabled fields."""
        with self._src_lock:
            g = self.source.at(t_s * 1000.0)
            ok = bool(g.state & STATE_TRACKING_GAZE) and not g.state & (
                STATE_TRACKING_FAIL | STATE_TRACKING_LOST
            )
            fix = bool(g.fix and ok)
            if fix and not self._in_fix:
                self._fix_id += 1
                self._fix_start_s = t_s
            self._in_fix = fix
        w, h = self.screen_px
        fx, fy = (g.x / w, g.y / h) if ok else (0.0, 0.0)
        attrs: dict[str, object] = {}
        if flags.get("ENABLE_SEND_COUNTER"):
            attrs["CNT"] = count
        if flags.get("ENABLE_SEND_TIME"):
            attrs["TIME"] = t_s
        if flags.get("ENABLE_SEND_POG_FIX"):
            attrs.update(
                FPOGX=fx,
                FPOGY=fy,
                FPOGS=self._fix_start_s,
                FPOGD=t_s - self._fix_start_s if fix else 0.0,
                FPOGID=self._fix_id,
                FPOGV=int(fix),
            )
        for eye in ("LEFT", "RIGHT"):
            if flags.get(f"ENABLE_SEND_POG_{eye}"):
                attrs.update({f"{eye[0]}POGX": fx, f"{eye[0]}POGY": fy, f"{eye[0]}POGV": int(ok)})
        if flags.get("ENABLE_SEND_POG_BEST"):
            attrs.update(BPOGX=fx, BPOGY=fy, BPOGV=int(ok))
        return element("REC", None, **attrs)

    def calib_result(self, points: list[tuple[float, float]]) -> bytes:
        """A ``CALIB_RESULT`` line: each eye's estimate off the target by about the set error."""
        w, h = self.screen_px
        attrs: dict[str, object] = {}
        for i, (cx, cy) in enumerate(points, start=1):
            attrs[f"CALX{i}"], attrs[f"CALY{i}"] = float(cx), float(cy)
            for eye in ("L", "R"):
                err_px = abs(
                    self.rng.normal(self.calibration_error_deg, self.calibration_error_deg / 3)
                )
                err_px *= self.px_per_deg
                ang = self.rng.uniform(0, 2 * math.pi)
                attrs[f"{eye}X{i}"] = cx + err_px * math.cos(ang) / w
                attrs[f"{eye}Y{i}"] = cy + err_px * math.sin(ang) / h
                attrs[f"{eye}V{i}"] = 1
        return element("CAL", "CALIB_RESULT", **attrs)

    # -- per client ------------------------------------------------------------------------
    def _client_loop(self, conn: socket.socket) -> None:
        flags: dict[str, bool] = {ident: False for ident in ENABLE_IDS}
        flags["CALIBRATE_SHOW"] = False
        send_lock = threading.Lock()
        alive = threading.Event()
        alive.set()

        def send(data: bytes) -> None:
            with send_lock:
                conn.sendall(data)

        pusher = threading.Thread(
            target=self._push_loop, args=(send, flags, alive), daemon=True, name="gp-sim-push"
        )
        pusher.start()
        conn.settimeout(0.05)
        buf = b""
        try:
            while not self._stop.is_set() and alive.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                if len(buf) > MAX_LINE_BYTES:
                    buf = b""  # a client flooding one line: drop it
                for line in lines:
                    if line.strip():
                        self._handle(line.decode("utf-8", errors="replace"), send, flags, alive)
        except OSError:
            pass
        finally:
            alive.clear()
            pusher.join(timeout=1.0)
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _handle(
        self,
        line: str,
        send: Callable[[bytes], None],
        flags: dict[str, bool],
        alive: threading.Event,
    ) -> None:
        try:
            tag, attrs = parse_line(line)
        except OpenGazeError:
            send(element("NACK", "UNKNOWN"))
            return
        ident = attrs.get("ID", "")
        if tag not in ("GET", "SET"):
            send(element("NACK", ident or "UNKNOWN"))
            return
        setting = tag == "SET"
        if ident in flags:
            if setting:
                flags[ident] = attrs.get("STATE", "0") == "1"
            send(element("ACK", ident, STATE=int(flags[ident])))
            return
        if ident == "CALIBRATE_START":
            start = setting and attrs.get("STATE") == "1"
            send(element("ACK", ident, STATE=int(start)))
            if start:
                points = list(self.calibration_points)
                t = threading.Thread(
                    target=self._calibrate,
                    args=(points, send, alive),
                    daemon=True,
                    name="gp-sim-cal",
                )
                t.start()
                self._threads.append(t)
            return
        if ident == "SCREEN_SIZE":
            w, h = self.screen_px
            send(element("ACK", ident, X=0, Y=0, WIDTH=w, HEIGHT=h))
        elif ident == "PRODUCT_ID":
            send(
                element(
                    "ACK",
                    ident,
                    VALUE="GP3HD" if self.rate_hz > 60 else "GP3",
                    BUS="USB3",
                    RATE=self.rate_hz,
                )
            )
        elif ident in ("CALIBRATE_TIMEOUT", "CALIBRATE_DELAY"):
            name = "calibrate_timeout_s" if ident == "CALIBRATE_TIMEOUT" else "calibrate_delay_s"
            if setting:
                try:
                    value = float(attrs.get("VALUE", ""))
                except ValueError:
                    value = -1.0
                if not 0 <= value <= 60:
                    send(element("NACK", ident))
                    return
                setattr(self, name, value)
            send(element("ACK", ident, VALUE=float(getattr(self, name))))
        elif ident in ("CALIBRATE_CLEAR", "CALIBRATE_RESET"):
            if setting:
                self.calibration_points = (
                    [] if ident == "CALIBRATE_CLEAR" else list(DEFAULT_CALIBRATION)
                )
            send(element("ACK", ident, PTS=len(self.calibration_points)))
        elif ident == "CALIBRATE_ADDPOINT":
            if setting:
                try:
                    x, y = float(attrs["X"]), float(attrs["Y"])
                except (KeyError, ValueError):
                    send(element("NACK", ident))
                    return
                self.calibration_points.append((x, y))
            listing: dict[str, object] = {"PTS": len(self.calibration_points)}
            for i, (x, y) in enumerate(self.calibration_points, start=1):
                listing[f"X{i}"], listing[f"Y{i}"] = float(x), float(y)
            send(element("ACK", ident, **listing))
        elif ident == "CALIBRATE_RESULT_SUMMARY":
            calib = self.last_calib or {"ave_error_px": 0.0, "valid": 0}
            send(
                element(
                    "ACK",
                    ident,
                    AVE_ERROR=float(calib["ave_error_px"]),
                    VALID_POINTS=calib["valid"],
                )
            )
        else:
            send(element("NACK", ident or "UNKNOWN"))

    def _calibrate(
        self,
        points: list[tuple[float, float]],
        send: Callable[[bytes], None],
        alive: threading.Event,
    ) -> None:
        try:
            for i, (x, y) in enumerate(points, start=1):
                send(element("CAL", "CALIB_START_PT", PT=i, CALX=float(x), CALY=float(y)))
                if (
                    self._stop.wait(self.calibrate_delay_s + self.calibrate_timeout_s)
                    or not alive.is_set()
                ):
                    return
                send(element("CAL", "CALIB_RESULT_PT", PT=i, CALX=float(x), CALY=float(y)))
            line = self.calib_result(points)
            _, attrs = parse_line(line.decode())
            w, h = self.screen_px
            errs = [
                math.hypot((float(attrs[f"LX{i}"]) - x) * w, (float(attrs[f"LY{i}"]) - y) * h)
                for i, (x, y) in enumerate(points, start=1)
            ]
            self.last_calib = {
                "ave_error_px": float(np.mean(errs)) if errs else 0.0,
                "valid": len(points),
            }
            send(line)
        except OSError:
            alive.clear()

    def _push_loop(
        self, send: Callable[[bytes], None], flags: dict[str, bool], alive: threading.Event
    ) -> None:
        period_s = 1.0 / self.rate_hz
        k = 0
        t_start: float | None = None
        while alive.is_set() and not self._stop.is_set():
            if not flags["ENABLE_SEND_DATA"]:
                t_start = None
                time.sleep(0.005)
                continue
            now_s = self.clock() - self._t0
            if t_start is None:
                t_start, k = now_s, 0
            lines = []
            # Send every record that is due; TIME advances by exactly one period each.
            while t_start + k * period_s <= now_s:
                self.records_sent += 1
                lines.append(self.record(t_start + k * period_s, self.records_sent, flags))
                k += 1
            if lines:
                try:
                    send(b"".join(lines))
                except OSError:
                    alive.clear()
                    return
            next_s = t_start + k * period_s
            time.sleep(max(0.0, next_s - (self.clock() - self._t0)))


@register_tracker("gazepoint-sim", "the GazePoint simulator in-process, through the real client",
                  simulated=True, simulates="gazepoint", model="gazelab GazePoint simulator")  # fmt: skip
def open_simulated_gazepoint(request: TrackerRequest) -> OpenTracker:
    from gazelab.gaze.trackers.gazepoint import GazePointTracker

    observer = SyntheticObserver(request.screen_px, seed=request.seed)
    sim = GazePointSimulator("127.0.0.1", 0, rate_hz=request.rate_hz,
                             screen_px=request.screen_px, source=observer).start()  # fmt: skip
    try:
        tracker = GazePointTracker("127.0.0.1", sim.port, clock=request.clock,
                                   screen_px=request.screen_px, geometry=request.geometry)  # fmt: skip
        tracker.connect()
    except BaseException:
        sim.stop()
        raise
    return OpenTracker(tracker, sim, observer)
