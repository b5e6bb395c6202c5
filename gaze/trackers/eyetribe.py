"""TCP client for the Eye Tribe server (real ET1000 or the gazelab simulator), SPEC §3.

One reader thread parses newline-separated JSON: pushed frames become
:class:`GazeSample` records in a queue (:meth:`EyeTribeTracker.drain`), replies
are matched to the oldest waiting request of the same category/request,
notifications (800 calibration changed, ...) are kept. A heartbeat thread sends
``{"category": "heartbeat"}`` at the interval the server reports. When the
connection drops, the client reconnects, restores push mode and records the
gap (start, end) so the session can mark it. Malformed or truncated messages
are counted in :attr:`stats` and skipped; they never raise.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gazelab.gaze.trackers import protocol as P
from gazelab.gaze.trackers.base import CalibrationResult, GazeSample


class TrackerError(RuntimeError):
    """The tracker did not answer, refused a request, or cannot be reached."""


@dataclass
class TrackerStats:
    frames: int = 0
    invalid_messages: int = 0
    notifications: int = 0
    reconnects: int = 0
    heartbeats_sent: int = 0


@dataclass(frozen=True)
class Gap:
    """A period without connection, local monotonic seconds."""

    start_s: float
    end_s: float
    reason: str


@dataclass
class _Pending:
    key: tuple[str, str | None]
    event: threading.Event = field(default_factory=threading.Event)
    response: dict[str, Any] | None = None


class EyeTribeTracker:
    """Client of the Eye Tribe server; a :class:`~gazelab.gaze.trackers.base.Tracker`.

    Parameters
    ----------
    host, port : where the server listens (default ``127.0.0.1:6555``).
    clock : the session's monotonic clock, seconds.
    reconnect : reconnect automatically after a dropped connection.
    transcript : optional text file; every line sent (``> ``) and received (``< ``)
        is written to it with its local time, for replay tests and audits.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = P.DEFAULT_PORT,
        *,
        clock: Callable[[], float] = time.monotonic,
        reconnect: bool = True,
        timeout_s: float = 5.0,
        transcript: TextIO | None = None,
        on_gap: Callable[[Gap], None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.clock = clock
        self.reconnect = reconnect
        self.timeout_s = timeout_s
        self.transcript = transcript
        self.on_gap = on_gap
        self.stats = TrackerStats()
        self.gaps: list[Gap] = []
        self.notifications: list[dict[str, Any]] = []
        self.heartbeat_interval_s = 0.25
        self.framerate = 0
        self.screen_px: tuple[int, int] = (2560, 1440)
        self.calibration: CalibrationResult | None = None
        self._samples: collections.deque[GazeSample] = collections.deque()
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._closing = threading.Event()
        self._heartbeat_paused = threading.Event()
        self._connected = threading.Event()
        self._push = False
        self._reader: threading.Thread | None = None
        self._heart: threading.Thread | None = None

    # -- Tracker interface -----------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection, read the server's settings, start the heartbeat."""
        self._open()
        self._reader = threading.Thread(target=self._read_loop, name="eyetribe-reader", daemon=True)
        self._reader.start()
        self._refresh_settings()
        self._heart = threading.Thread(target=self._heartbeat_loop, name="eyetribe-hb", daemon=True)
        self._heart.start()

    def start(self) -> None:
        """Start pushed frames."""
        self._push = True
        self.set(push=True, version=P.PROTOCOL_VERSION)

    def stop(self) -> None:
        self._push = False
        if self._connected.is_set():
            self.set(push=False)

    def drain(self) -> list[GazeSample]:
        out: list[GazeSample] = []
        with self._lock:
            while self._samples:
                out.append(self._samples.popleft())
        return out

    def close(self) -> None:
        self._closing.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for t in (self._reader, self._heart):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=2.0)
        with self._lock:
            for p in self._pending:
                p.event.set()

    def __enter__(self) -> EyeTribeTracker:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------
    def get(self, *keys: str) -> dict[str, Any]:
        resp = self._call(P.request("tracker", "get", list(keys)))
        values = resp.get("values")
        return values if isinstance(values, dict) else {}

    def set(self, **values: Any) -> None:
        self._call(P.request("tracker", "set", values))

    def calibrate(
        self,
        points_xy: list[tuple[float, float]],
        *,
        dwell_s: float = 0.75,
        on_point: Callable[[int, tuple[float, float]], None] | None = None,
    ) -> CalibrationResult:
        """Run a calibration: ``start``, then ``pointstart``/``pointend`` per target.

        The display is the caller's job: ``on_point(i, (x, y))`` is called just
        before target ``i``'s dwell starts, so a view can show it. Returns the
        ``calibresult`` of the last ``pointend``.
        """
        if not points_xy:
            raise ValueError("calibration needs at least one point")
        self._call(P.request("calibration", "start", {"pointcount": len(points_xy)}))
        resp: dict[str, Any] = {}
        try:
            for i, (x, y) in enumerate(points_xy):
                if on_point is not None:
                    on_point(i, (x, y))
                self._call(P.request("calibration", "pointstart", {"x": int(x), "y": int(y)}))
                time.sleep(dwell_s)
                resp = self._call(P.request("calibration", "pointend"))
        except TrackerError:
            self._call(P.request("calibration", "abort"), check=False)
            raise
        values = resp.get("values")
        if not isinstance(values, dict) or "calibresult" not in values:
            raise TrackerError("the last calibration 'pointend' reply carried no calibresult")
        try:
            self.calibration = P.parse_calibresult(values["calibresult"])
        except P.FrameError as exc:
            raise TrackerError(f"malformed calibration result: {exc}") from exc
        return self.calibration

    # -- test hooks ------------------------------------------------------------------------
    def pause_heartbeat(self, paused: bool = True) -> None:
        """Stop (or resume) sending heartbeats, to test the server's drop-out handling."""
        if paused:
            self._heartbeat_paused.set()
        else:
            self._heartbeat_paused.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- internals -------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise TrackerError(
                f"cannot reach the Eye Tribe server at {self.host}:{self.port} ({exc}); "
                "is the EyeTribe server (or `gazelab simulate-tracker`) running?"
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        self._sock = sock
        self._connected.set()

    def _refresh_settings(self) -> None:
        values = self.get(
            "heartbeatinterval", "framerate", "iscalibrated", "screenresw", "screenresh"
        )
        hb = values.get("heartbeatinterval")
        if isinstance(hb, (int, float)) and hb > 0:
            self.heartbeat_interval_s = float(hb) / 1000.0
        fr = values.get("framerate")
        if isinstance(fr, int):
            self.framerate = fr
        w, h = values.get("screenresw"), values.get("screenresh")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            self.screen_px = (w, h)

    def _send(self, message: dict[str, Any]) -> None:
        data = P.encode(message)
        sock = self._sock
        if sock is None or not self._connected.is_set():
            raise TrackerError("not connected to the Eye Tribe server")
        with self._send_lock:
            if self.transcript is not None:
                self.transcript.write(f"{self.clock()!r} > {data.decode().rstrip()}\n")
            try:
                sock.sendall(data)
            except OSError as exc:
                raise TrackerError(f"sending to the tracker failed: {exc}") from exc

    def _call(self, message: dict[str, Any], *, check: bool = True) -> dict[str, Any]:
        pending = _Pending(key=(message["category"], message.get("request")))
        with self._lock:
            self._pending.append(pending)
        try:
            self._send(message)
        except TrackerError:
            with self._lock:
                self._pending.remove(pending)
            raise
        if not pending.event.wait(self.timeout_s) or pending.response is None:
            with self._lock:
                if pending in self._pending:
                    self._pending.remove(pending)
            raise TrackerError(
                f"no reply from the tracker to {message['category']}/{message.get('request')} "
                f"within {self.timeout_s:.1f} s"
            )
        code = pending.response.get("statuscode")
        if check and code != P.STATUS_OK:
            raise TrackerError(
                f"tracker refused {message['category']}/{message.get('request')}: status {code} "
                f"{pending.response.get('statusmessage', '')}".rstrip()
            )
        return pending.response

    def _heartbeat_loop(self) -> None:
        while not self._closing.wait(self.heartbeat_interval_s):
            if self._heartbeat_paused.is_set() or not self._connected.is_set():
                continue
            try:
                self._send(P.request("heartbeat"))
                self.stats.heartbeats_sent += 1
            except TrackerError:
                pass

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            sock = self._sock
            buf = b""
            try:
                while sock is not None:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        self.handle_line(line)
            except OSError:
                pass
            if buf.strip():
                self.stats.invalid_messages += 1  # truncated last message
            if self._closing.is_set():
                return
            self._on_disconnect()

    def _on_disconnect(self) -> None:
        lost_at = self.clock()
        self._connected.clear()
        with self._lock:
            for p in self._pending:
                p.event.set()  # waiting calls fail fast
            self._pending.clear()
        if not self.reconnect:
            return
        while not self._closing.is_set():
            try:
                self._open()
            except TrackerError:
                self._closing.wait(0.2)
                continue
            break
        if self._closing.is_set():
            return
        self.stats.reconnects += 1
        self._heartbeat_paused.clear()
        gap = Gap(start_s=lost_at, end_s=self.clock(), reason="connection lost")
        self.gaps.append(gap)
        if self.on_gap is not None:
            self.on_gap(gap)
        if self._push:
            # Restore push mode without waiting here (replies arrive on this thread).
            pending = _Pending(key=("tracker", "set"))
            with self._lock:
                self._pending.append(pending)
            try:
                self._send(P.request("tracker", "set", {"push": True, "version": 1}))
            except TrackerError:
                pass

    def handle_line(self, line: bytes | str) -> None:
        """Process one received line (public so transcripts can be replayed through it)."""
        now = self.clock()
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        if self.transcript is not None:
            self.transcript.write(f"{now!r} < {text.rstrip()}\n")
        if not text.strip():
            self.stats.invalid_messages += 1  # the server never sends empty lines
            return
        try:
            msg = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            self.stats.invalid_messages += 1
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("category"), str):
            self.stats.invalid_messages += 1
            return
        frame = P.frame_of(msg)
        if frame is not None:
            try:
                sample = P.parse_frame(frame, local_s=now, screen_px=self.screen_px)
            except P.FrameError:
                self.stats.invalid_messages += 1
                return
            with self._lock:
                self._samples.append(sample)
            self.stats.frames += 1
            return
        code = msg.get("statuscode")
        if code in P.NOTIFICATIONS:
            self.stats.notifications += 1
            self.notifications.append(msg)
            return
        if msg["category"] == "heartbeat":
            return
        key = (msg["category"], msg.get("request"))
        with self._lock:
            match = next((p for p in self._pending if p.key == key), None)
            if match is None:
                return  # a reply nobody waits for (e.g. after a timeout)
            self._pending.remove(match)
        match.response = msg
        match.event.set()


def replay_transcript(
    path: str | Path, *, screen_px: tuple[int, int] = (2560, 1440)
) -> tuple[list[GazeSample], TrackerStats]:
    """Feed the received lines of a transcript through the client's parser (no socket).

    Each line's recorded local time becomes the sample's ``local_s``, so a replay
    reproduces the recorded samples exactly.
    """
    times: list[float] = []
    client = EyeTribeTracker(clock=lambda: times[-1])
    client.screen_px = screen_px
    with Path(path).open(encoding="utf-8") as fh:
        for raw in fh:
            stamp, _, rest = raw.partition(" ")
            direction, _, payload = rest.partition(" ")
            if direction != "<":
                continue
            times.append(float(stamp))
            client.handle_line(payload.rstrip("\n"))
    return client.drain(), client.stats
