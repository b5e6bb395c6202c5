"""A protocol-faithful Eye Tribe server simulator
(docs/running-a-session.md#the-eye-tribe-protocol), and a synthetic observer.

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

The gaze model lives in :mod:`~gazelab.gaze.trackers.observer`, the replayed source in
:mod:`~gazelab.gaze.trackers.replay_source` and the TCP server machinery in
:mod:`~gazelab.gaze.trackers.sim_server`; their names are importable from here too.

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
from typing import Any

import numpy as np

from gazelab.gaze.trackers import protocol as P
from gazelab.gaze.trackers.base import (
    STATE_TRACKING_FAIL,
    STATE_TRACKING_GAZE,
    STATE_TRACKING_LOST,
    TrackerError,
)
from gazelab.gaze.trackers.observer import (
    DRIFT_TAU_MS,
    TRACKER_PRECISION,
    GazePoint,
    GazeSource,
    ObserverSettings,
    Precision,
    SyntheticObserver,
    precision_at,
    tracker_class,
    tracker_noise,
)
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker
from gazelab.gaze.trackers.replay_source import MAX_REPLAY_BYTES, ReplaySource
from gazelab.gaze.trackers.sim_server import RunsUntilStopped, TcpSimulatorServer, _check_int

log = logging.getLogger(__name__)

MAX_RATE_HZ = 1000
HEARTBEAT_MS_RANGE = (10, 60_000)


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


@register_tracker("sim", "the Eye Tribe simulator in-process, through the real TCP client",
                  simulated=True, simulates="eyetribe", model="gazelab Eye Tribe simulator")  # fmt: skip
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


__all__ = [
    "DRIFT_TAU_MS",
    "HEARTBEAT_MS_RANGE",
    "MAX_RATE_HZ",
    "MAX_REPLAY_BYTES",
    "TRACKER_PRECISION",
    "EyeTribeSimulator",
    "GazePoint",
    "GazeSource",
    "ObserverSettings",
    "Precision",
    "ReplaySource",
    "RunsUntilStopped",
    "SyntheticObserver",
    "TcpSimulatorServer",
    "TrackerError",
    "open_simulated_eyetribe",
    "precision_at",
    "tracker_class",
    "tracker_noise",
]
