"""TCP client for the Eye Tribe server (real ET1000 or the gazelab simulator), SPEC §3.

One reader thread parses newline-separated JSON: pushed frames become
:class:`GazeSample` records in a queue (:meth:`EyeTribeTracker.drain`), replies
are matched to the oldest waiting request of the same category/request,
notifications (800 calibration changed, ...) are kept (the latest few). A
heartbeat thread sends ``{"category": "heartbeat"}`` at the interval the server
reports.

Faults never end the stream silently (issue #16):

- a malformed, truncated or over-long message (over ``max_line_bytes``) is
  counted in :attr:`EyeTribeTracker.stats` and skipped; it never raises;
- a dropped connection, a tracker silent for longer than
  :attr:`EyeTribeTracker.SILENCE_HEARTBEATS` heartbeat intervals, or any
  unexpected failure of the reader is a *fault*: the client records a
  :class:`Gap` (start, end, reason), reconnects and restores push mode;
- the sample queue and the notification list are bounded; samples pushed out of
  a full queue (nobody drained it) are counted and recorded as a gap too;
- with push mode on, a tracker that answers (heartbeats) but sends no frames for
  ``frame_timeout_s`` is asked for push mode again; if frames still do not come within
  as long, that is a fault too (gap, reconnect), and frames that do come back end a gap
  covering the quiet time. So a server that ignored the request restoring push mode
  after a reconnect cannot leave the client "connected" with no gaze.

Memory held per client is therefore bounded by ``max_line_bytes`` plus the two
queue limits, whatever the server sends.
"""

from __future__ import annotations

import collections
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gazelab.gaze.trackers import protocol as P
from gazelab.gaze.trackers.base import (
    CalibrationResult,
    Gap,
    GapLog,
    GazeSample,
    TrackerClient,
    TrackerError,
    TrackerStats,
)
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker

_RECV_BYTES = 65536
_HEARTBEAT_RANGE_MS = (10, 60_000)
"""Heartbeat intervals the client accepts from a server; others keep the 250 ms default."""


@dataclass
class _Pending:
    key: tuple[str, str | None]
    event: threading.Event = field(default_factory=threading.Event)
    response: dict[str, Any] | None = None


class EyeTribeTracker(TrackerClient):
    """Client of the Eye Tribe server; a :class:`~gazelab.gaze.trackers.base.Tracker`.

    Parameters
    ----------
    host, port : where the server listens (default ``127.0.0.1:6555``).
    clock : the session's monotonic clock, seconds.
    reconnect : reconnect automatically after a fault.
    timeout_s : how long a request waits for its reply, and a send may block, seconds.
    transcript : optional text file; every line sent (``> ``) and received (``< ``)
        is written to it with its local time, for replay tests and audits.
    on_gap : called with each :class:`Gap` as it is recorded (from the reader
        thread, or from the thread calling :meth:`drain` for dropped samples).
    max_line_bytes : longest message accepted; longer ones are dropped and counted.
    max_queued_samples : samples kept until :meth:`drain`; older ones are dropped,
        counted and recorded as a gap (default: 60 s at 1000 Hz).
    max_notifications : notifications kept in :attr:`notifications` (the latest).
    frame_timeout_s : with push mode on, this long without a frame makes the client ask
        for push mode again, and twice this long is a fault (gap and reconnect).
    """

    SILENCE_HEARTBEATS = 1.5
    """A tracker that sends nothing for this many heartbeat intervals is silent.

    The server answers every heartbeat, so a live one is never quiet for much more
    than one interval. After one quiet interval the reader sends a heartbeat of its
    own (a probe), so a late heartbeat thread cannot make a live tracker look
    silent; silence is then noticed 1.5-1.75 intervals after the last message,
    within the 2 that issue #16 asks for.
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
        max_line_bytes: int = P.MAX_LINE_BYTES,
        max_queued_samples: int = 60_000,
        max_notifications: int = 100,
        frame_timeout_s: float = 1.0,
    ) -> None:
        if max_queued_samples < 1 or max_notifications < 1:
            raise ValueError("max_queued_samples and max_notifications must be at least 1")
        if not frame_timeout_s > 0:
            raise ValueError(f"frame_timeout_s = {frame_timeout_s} must be positive")
        self.frame_timeout_s = float(frame_timeout_s)
        self.host, self.port = host, port
        self.clock = clock
        self.reconnect = reconnect
        self.timeout_s = timeout_s
        self.transcript = transcript
        self.on_gap = on_gap
        self.stats = TrackerStats()
        self.gap_log = GapLog(self.stats, on_gap)
        self.gaps = self.gap_log.gaps
        """The latest gaps (:class:`~gazelab.gaze.trackers.base.GapLog` keeps 1000)."""
        self.notifications: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=max_notifications
        )
        self.last_fault: str | None = None
        """The latest fault, in words (for a warning on screen); ``None`` if none yet."""
        self.heartbeat_interval_s = 0.25
        self.framerate = 0
        self.screen_px: tuple[int, int] = (2560, 1440)
        self.calibration: CalibrationResult | None = None
        self._samples: collections.deque[GazeSample] = collections.deque(maxlen=max_queued_samples)
        self._drop_run: list[float] | None = None  # [first local_s, last local_s, count]
        self._splitter = P.LineSplitter(max_line_bytes)
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._closing = threading.Event()
        self._heartbeat_paused = threading.Event()
        self._connected = threading.Event()
        self._watchdog = False  # armed once the server's heartbeat interval is known
        self._last_rx_mono = time.monotonic()
        self._last_rx_s = 0.0  # the clock is not read here: a replay's clock has no time yet
        self._probe_mono: float | None = None  # when the reader sent its own heartbeat
        self._fault: tuple[str, float | None] | None = None  # set by a thread that broke the link
        self._push = False
        self._frames_due_mono = 0.0  # frames are expected from then on (push on, a frame)
        self._repush_mono: float | None = None  # when push mode was asked for again
        self._frames_quiet_since: float | None = None  # local time of the last frame, if late
        self._last_frame_s = 0.0
        self._gap_end_s = 0.0
        self._reader: threading.Thread | None = None
        self._heart: threading.Thread | None = None

    # -- Tracker interface -----------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection, read the server's settings, start the heartbeat.

        Raises
        ------
        TrackerError
            The server cannot be reached or does not answer; nothing is left running.
        """
        self._open()
        self._reader = self._start_reader()
        try:
            self._refresh_settings()
        except TrackerError:
            self.close()
            raise
        self._mark_traffic()
        self._watchdog = True
        self._heart = threading.Thread(target=self._heartbeat_loop, name="eyetribe-hb", daemon=True)
        self._heart.start()

    def start(self) -> None:
        """Start pushed frames."""
        self._frames_due_mono = time.monotonic() + self.timeout_s  # the reply may take that
        self._push = True
        self.set(push=True, version=P.PROTOCOL_VERSION)
        self._frames_due_mono = time.monotonic()

    def stop(self) -> None:
        """Stop pushed frames; never raises (a tracker that is gone pushes nothing anyway).

        A failure is kept in :attr:`last_fault`, so that ending a session with a
        broken tracker still commits what was recorded.
        """
        self._push = False
        self._end_frame_quiet("no frames until push mode was stopped")
        if self._connected.is_set():
            try:
                self.set(push=False)
            except TrackerError as exc:
                self.last_fault = f"could not stop push mode: {exc}"

    def drain(self) -> list[GazeSample]:
        """Every queued sample, oldest first; records a gap for samples dropped before."""
        with self._lock:
            out = list(self._samples)
            self._samples.clear()
            run, self._drop_run = self._drop_run, None
        if run is not None:
            first, last, count = run
            self._record_gap(
                Gap(
                    first,
                    last,
                    f"{int(count)} samples dropped: the queue of {self._samples.maxlen} "
                    "was full (not drained in time)",
                )
            )
        return out

    def close(self) -> None:
        """Stop the threads and close the socket; returns within a few seconds at most."""
        self._end_frame_quiet("no frames until close")
        self._closing.set()
        self._connected.clear()
        self._drop_socket(self._sock)
        for t in (self._reader, self._heart):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=2.0)
        with self._lock:
            for p in self._pending:
                p.event.set()

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

    # -- internals: connection ---------------------------------------------------------------
    def _open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except (OSError, OverflowError) as exc:
            raise TrackerError(
                f"cannot reach the Eye Tribe server at {self.host}:{self.port} ({exc}); "
                "is the EyeTribe server (or `gazelab simulate-tracker`) running?"
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Sends give up after timeout_s (a peer that stops reading cannot block a
        # thread for ever); the reader waits in select(), so it never hits this.
        sock.settimeout(self.timeout_s)
        self._splitter.clear()
        self._sock = sock
        self._mark_traffic()
        self._connected.set()

    @staticmethod
    def _drop_socket(sock: socket.socket | None) -> None:
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked on it
        except OSError:
            pass
        sock.close()

    def _break_link(self, reason: str, start_s: float | None = None) -> None:
        """Called from any thread: end the connection; the reader records ``reason`` and reconnects."""
        with self._lock:
            if self._fault is None:
                self._fault = (reason, start_s)
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _take_fault(self) -> tuple[str, float | None] | None:
        with self._lock:
            fault, self._fault = self._fault, None
        return fault

    def _refresh_settings(self) -> None:
        values = self.get(
            "heartbeatinterval", "framerate", "iscalibrated", "screenresw", "screenresh"
        )
        hb = values.get("heartbeatinterval")
        lo, hi = _HEARTBEAT_RANGE_MS
        if isinstance(hb, (int, float)) and not isinstance(hb, bool) and lo <= hb <= hi:
            self.heartbeat_interval_s = float(hb) / 1000.0
        elif hb is not None:
            self.last_fault = (
                f"the tracker reported a heartbeat interval of {P._short(hb)} ms "
                f"(expected {lo}..{hi}); using {self.heartbeat_interval_s * 1000:.0f} ms"
            )
        fr = values.get("framerate")
        if isinstance(fr, int) and not isinstance(fr, bool):
            self.framerate = fr
        w, h = values.get("screenresw"), values.get("screenresh")
        if isinstance(w, int) and isinstance(h, int) and 0 < w < 1 << 16 and 0 < h < 1 << 16:
            self.screen_px = (w, h)

    def _send(self, message: dict[str, Any]) -> None:
        data = P.encode(message)
        sock = self._sock
        if sock is None or not self._connected.is_set():
            raise TrackerError("not connected to the Eye Tribe server")
        with self._send_lock:
            self._log(">", data.decode().rstrip())
            try:
                sock.sendall(data)
            except OSError as exc:
                # A send that failed half-way leaves a broken message in the stream:
                # the connection is unusable, so start over.
                self._break_link(f"sending to the tracker failed ({exc})")
                raise TrackerError(f"sending to the tracker failed: {exc}") from exc

    def _call(self, message: dict[str, Any], *, check: bool = True) -> dict[str, Any]:
        pending = _Pending(key=(message["category"], message.get("request")))
        with self._lock:
            self._pending.append(pending)
        try:
            self._send(message)
        except TrackerError:
            with self._lock:
                if pending in self._pending:
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
                f"tracker refused {message['category']}/{message.get('request')}: status "
                f"{P._short(code)} {P._short(pending.response.get('statusmessage', ''))}".rstrip()
            )
        return pending.response

    def _heartbeat_loop(self) -> None:
        """Send heartbeats on a fixed schedule; restart the reader if it ever ended."""
        next_at = time.monotonic()
        while True:
            interval = self.heartbeat_interval_s
            next_at += interval
            now = time.monotonic()
            if next_at < now - interval:
                next_at = now  # woke very late (a stalled process): no burst of catch-up beats
            if self._closing.wait(max(0.0, next_at - now)):
                return
            self._supervise_reader()
            if self._heartbeat_paused.is_set() or not self._connected.is_set():
                continue
            try:
                self._send(P.request("heartbeat"))
                self.stats.heartbeats_sent += 1
            except TrackerError:
                pass  # the link is broken: the reader records it and reconnects

    def _supervise_reader(self) -> None:
        # The reader catches everything, so this is a last line of defence (a
        # BaseException from a callback): a dead reader would mean no gaze, unnoticed.
        reader = self._reader
        if reader is None or reader.is_alive() or self._closing.is_set() or not self.reconnect:
            return
        self.stats.reader_faults += 1
        self._break_link("the reader thread ended unexpectedly")
        self._reader = self._start_reader(resume=True)

    def _start_reader(self, *, resume: bool = False) -> threading.Thread:
        t = threading.Thread(
            target=self._read_loop, args=(resume,), name="eyetribe-reader", daemon=True
        )
        t.start()
        return t

    # -- internals: the reader thread --------------------------------------------------------
    def _read_loop(self, resume: bool = False) -> None:
        """Read until closed; every way a connection ends is a recorded fault and a reconnect."""
        try:
            self._read_until_closed(resume)
        finally:
            if self._closing.is_set():
                # close() may have run while a reconnect was opening a new socket
                self._drop_socket(self._sock)

    def _read_until_closed(self, resume: bool) -> None:
        fault: tuple[str, float | None] | None = None
        if resume:
            fault = self._take_fault() or ("the reader thread ended unexpectedly", None)
        while not self._closing.is_set():
            if fault is not None:
                try:
                    if not self._on_disconnect(*fault):
                        return
                except Exception as exc:  # e.g. an on_gap callback that raised
                    self.stats.reader_faults += 1
                    self.last_fault = f"reconnecting failed ({_describe(exc)})"
                    self._closing.wait(0.2)
                    if not self._connected.is_set():
                        continue  # still down: try again with the same fault
                fault = None
            try:
                fault = self._read_connection()
            except Exception as exc:  # any reader failure is a fault, not the end
                if self._closing.is_set():
                    return
                self.stats.reader_faults += 1
                fault = self._take_fault() or (f"the reader failed ({_describe(exc)})", None)

    def _read_connection(self) -> tuple[str, float | None]:
        """Read lines from the current socket until it ends; returns why it ended."""
        sock = self._sock
        if sock is None or not self._connected.is_set():
            return self._take_fault() or ("connection lost", None)
        splitter = self._splitter
        try:
            while not self._closing.is_set():
                no_frames = self._frames_watch()
                if no_frames is not None:
                    return no_frames
                readable, _, _ = select.select([sock], [], [], self._watch_period_s())
                if not readable:
                    silent = self._silence()
                    if silent is not None:
                        return silent
                    continue
                chunk = sock.recv(_RECV_BYTES)
                if not chunk:
                    break
                dropped = splitter.dropped
                lines = splitter.feed(chunk)
                if lines:
                    self._mark_traffic()
                for line in lines:
                    self.handle_line(line)
                if splitter.dropped != dropped:
                    self._oversized(splitter.dropped - dropped)
        except (OSError, ValueError):  # ValueError: select() on a socket closed under us
            pass
        if splitter.pending_bytes:
            self._invalid("truncated message at the end of the connection")
        splitter.clear()
        return self._take_fault() or ("connection lost", None)

    def _watch_period_s(self) -> float:
        # 1/8 interval: silence is seen at most 0.125 interval after the limit.
        return min(0.05, max(0.005, self.heartbeat_interval_s / 8))

    def _mark_traffic(self) -> None:
        self._last_rx_mono = time.monotonic()
        self._last_rx_s = self.clock()
        self._probe_mono = None

    def _silence(self) -> tuple[str, float | None] | None:
        if not self._watchdog:
            return None
        now = time.monotonic()
        quiet_s = now - self._last_rx_mono
        interval = self.heartbeat_interval_s
        if quiet_s > interval and self._probe_mono is None:
            self._probe_mono = now
            if not self._heartbeat_paused.is_set():
                try:
                    self._send(P.request("heartbeat"))
                except TrackerError:
                    pass  # the link is broken: this read loop ends at its next turn
            return None
        if quiet_s <= self.SILENCE_HEARTBEATS * interval:
            return None
        if self._probe_mono is not None and now - self._probe_mono < interval / 4:
            return None  # the probe went out late (a stalled thread): give its reply a moment
        self.stats.silences += 1
        return (
            f"the tracker sent nothing for {quiet_s:.2f} s "
            f"(heartbeat interval {self.heartbeat_interval_s * 1000:.0f} ms)",
            self._last_rx_s,
        )

    def _frames_watch(self) -> tuple[str, float | None] | None:
        """With push mode on and the link up: ask again for frames that stopped, and give
        up (a fault from the last frame) when they do not come back."""
        if not (self._push and self._watchdog and self._connected.is_set()):
            return None
        now = time.monotonic()
        quiet_s = now - self._frames_due_mono
        if quiet_s <= self.frame_timeout_s:
            return None
        if self._frames_quiet_since is None:
            self._frames_quiet_since = max(self._last_frame_s, self._gap_end_s)
        if self._repush_mono is None:
            self._repush_mono = now
            try:
                self._send(P.request("tracker", "set", {"push": True, "version": 1}))
            except TrackerError:
                pass  # the link is broken: this read loop ends at its next turn
            return None
        if now - self._repush_mono <= self.frame_timeout_s:
            return None
        self.stats.silences += 1
        start, self._frames_quiet_since = self._frames_quiet_since, None
        return (
            f"the tracker sent no frames for {quiet_s:.1f} s with push mode on "
            "(it answered, but not with gaze)",
            start,
        )

    def _on_frame(self, now: float) -> None:
        self._frames_due_mono = time.monotonic()
        self._last_frame_s = now
        self._repush_mono = None
        if self._frames_quiet_since is not None:
            start, self._frames_quiet_since = self._frames_quiet_since, None
            self._gap_end_s = now
            self._record_gap(Gap(start, now, f"no frames for {now - start:.1f} s; "
                                 "push mode restored"))  # fmt: skip

    def _end_frame_quiet(self, reason: str) -> None:
        if self._frames_quiet_since is not None:
            start, self._frames_quiet_since = self._frames_quiet_since, None
            self._record_gap(Gap(start, self.clock(), reason))

    def _on_disconnect(self, reason: str, start_s: float | None = None) -> bool:
        """Record the fault, reconnect, restore push mode; ``False`` when the reader should end."""
        lost_at = self.clock() if start_s is None else start_s
        if self._frames_quiet_since is not None:  # one gap from the last frame on
            lost_at = min(lost_at, self._frames_quiet_since)
            self._frames_quiet_since = None
        self.last_fault = reason  # before `connected` drops: a warning then names the cause
        self._connected.clear()
        old, self._sock = self._sock, None
        self._drop_socket(old)
        with self._lock:
            for p in self._pending:
                p.event.set()  # waiting calls fail fast
            self._pending.clear()
        if not self.reconnect or self._closing.is_set():
            return False
        while not self._closing.is_set():
            try:
                self._open()
            except TrackerError:
                self._closing.wait(0.2)
                continue
            break
        if self._closing.is_set():
            return False
        self.stats.reconnects += 1
        self._heartbeat_paused.clear()
        self._gap_end_s = self.clock()
        self._record_gap(Gap(start_s=lost_at, end_s=self._gap_end_s, reason=reason))
        # Frames are due again: if the server ignores the request below, the frame
        # watchdog asks again and, failing that, reconnects (never "connected", no gaze).
        self._frames_due_mono = time.monotonic()
        self._repush_mono = None
        if self._push:
            # Restore push mode without waiting here (replies arrive on this thread).
            pending = _Pending(key=("tracker", "set"))
            with self._lock:
                self._pending.append(pending)
            try:
                self._send(P.request("tracker", "set", {"push": True, "version": 1}))
            except TrackerError:
                pass
        return True

    def _record_gap(self, gap: Gap) -> None:
        self.gap_log.record(gap)
        if self.gap_log.callback_error:
            self.last_fault, self.gap_log.callback_error = self.gap_log.callback_error, ""

    def _invalid(self, why: str) -> None:
        self.stats.invalid_messages += 1
        self.stats.last_invalid = why

    def _oversized(self, count: int) -> None:
        self.stats.oversized_lines += count
        self.stats.invalid_messages += count
        self.stats.last_invalid = f"a line longer than {self._splitter.max_line_bytes} bytes"
        # An invalid JSON line, so a transcript replay counts it as the live client did.
        self._log("<", f"<dropped: line over {self._splitter.max_line_bytes} bytes>")

    def _log(self, direction: str, text: str, at_s: float | None = None) -> None:
        """Write one transcript line; ``at_s`` is the time a received line's sample gets."""
        if self.transcript is None:
            return
        try:
            stamp = self.clock() if at_s is None else at_s
            self.transcript.write(f"{stamp!r} {direction} {text}\n")
        except (OSError, ValueError) as exc:  # disk full, file closed: keep tracking
            self.transcript = None
            self.last_fault = f"transcript writing failed ({exc}); transcript stopped"

    # -- messages ------------------------------------------------------------------------------
    def handle_line(self, line: bytes | str) -> None:
        """Process one received line (public so transcripts can be replayed through it).

        Never raises: whatever is wrong with a line, it is counted in
        :attr:`stats` (``invalid_messages``, ``last_invalid``) and skipped.
        """
        now = self.clock()
        try:
            self._handle_message(line, now)
        except Exception as exc:  # one bad line must never end the stream
            self._invalid(f"unexpected {_describe(exc)}")

    def _handle_message(self, line: bytes | str, now: float) -> None:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        self._log("<", text.rstrip(), now)
        if not text.strip():
            self._invalid("empty line")  # the server never sends empty lines
            return
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError) as exc:  # ValueError: also ints over 4300 digits
            self._invalid(f"not JSON ({_describe(exc)})")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("category"), str):
            self._invalid("not an object with a category")
            return
        frame = P.frame_of(msg)
        if frame is not None:
            try:
                sample = P.parse_frame(frame, local_s=now, screen_px=self.screen_px)
            except P.FrameError as exc:
                self._invalid(str(exc))
                return
            self._enqueue(sample)
            self.stats.frames += 1
            self._on_frame(now)
            return
        code = msg.get("statuscode")
        if isinstance(code, int) and code in P.NOTIFICATIONS:
            self.stats.notifications += 1
            if len(self.notifications) == self.notifications.maxlen:
                self.stats.notifications_dropped += 1
            self.notifications.append(msg)
            return
        if msg["category"] == "heartbeat":
            return
        request = msg.get("request")
        key = (msg["category"], request if isinstance(request, str) else None)
        with self._lock:
            match = next((p for p in self._pending if p.key == key), None)
            if match is None:
                return  # a reply nobody waits for (e.g. after a timeout)
            self._pending.remove(match)
        match.response = msg
        match.event.set()

    def _enqueue(self, sample: GazeSample) -> None:
        with self._lock:
            if len(self._samples) == self._samples.maxlen:
                oldest = self._samples[0].local_s  # the deque drops it on append
                self.stats.samples_dropped += 1
                if self._drop_run is None:
                    self._drop_run = [oldest, oldest, 0.0]
                self._drop_run[1] = oldest
                self._drop_run[2] += 1
            self._samples.append(sample)


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, short enough for one line on screen."""
    text = str(exc)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    samples: list[GazeSample] = []
    with Path(path).open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            stamp, _, rest = raw.partition(" ")
            direction, _, payload = rest.partition(" ")
            if direction != "<":
                continue
            try:
                times.append(float(stamp))
            except ValueError:
                client._invalid(f"transcript line without a time stamp: {stamp[:40]!r}")
                continue
            client.handle_line(payload.rstrip("\n"))
            if len(times) >= 10_000:  # drain as we go: the client's queue is bounded
                samples += client.drain()
                del times[:-1]
    return samples + client.drain(), client.stats


@register_tracker(
    "eyetribe",
    "an Eye Tribe server (TCP JSON, port 6555)",
    args="address",
    manufacturer="The Eye Tribe",
    model="ET1000",
)
def open_eyetribe(request: TrackerRequest) -> OpenTracker:
    tracker = EyeTribeTracker(request.host, request.port or P.DEFAULT_PORT, clock=request.clock)
    tracker.connect()
    return OpenTracker(tracker)
