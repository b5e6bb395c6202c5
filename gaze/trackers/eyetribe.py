"""TCP client for the Eye Tribe server (real ET1000 or the gazelab simulator),
docs/running-a-session.md#the-eye-tribe-protocol.

One reader thread parses newline-separated JSON: pushed frames become
:class:`GazeSample` records in a queue (:meth:`EyeTribeTracker.drain`), replies
are matched to the oldest waiting request of the same category/request,
notifications (800 calibration changed, ...) are kept (the latest few). A
heartbeat thread sends ``{"category": "heartbeat"}`` at the interval the server
reports.

Faults never end the stream silently:

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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from gazelab.gaze.trackers import protocol as P
from gazelab.gaze.trackers.base import (
    CalibrationResult,
    Gap,
    GazeSample,
    TrackerError,
    TrackerStats,
)
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker
from gazelab.gaze.trackers.socket_client import Fault, SocketTrackerClient, describe

_HEARTBEAT_RANGE_MS = (10, 60_000)
"""Heartbeat intervals the client accepts from a server; others keep the 250 ms default."""


class EyeTribeTracker(SocketTrackerClient):
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

    SERVER = "the Eye Tribe server"
    PEER = "the tracker"
    READER_NAME = "eyetribe-reader"

    SILENCE_HEARTBEATS = 1.5
    """A tracker that sends nothing for this many heartbeat intervals is silent.

    The server answers every heartbeat, so a live one is never quiet for much more
    than one interval. After one quiet interval the reader sends a heartbeat of its
    own (a probe), so a late heartbeat thread cannot make a live tracker look
    silent; silence is then noticed 1.5-1.75 intervals after the last message,
    within the 2 intervals allowed.
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
        super().__init__(host, port, clock=clock, reconnect=reconnect, timeout_s=timeout_s,
                         transcript=transcript, on_gap=on_gap, stats=TrackerStats(),
                         max_line_bytes=max_line_bytes,
                         max_queued_samples=max_queued_samples)  # fmt: skip
        self.frame_timeout_s = float(frame_timeout_s)
        self.notifications: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=max_notifications
        )
        self.heartbeat_interval_s = 0.25
        self.framerate = 0
        self.screen_px: tuple[int, int] = (2560, 1440)
        self.calibration: CalibrationResult | None = None
        self._heartbeat_paused = threading.Event()
        self._watchdog = False  # armed once the server's heartbeat interval is known
        self._push = False
        self._frames_due_mono = 0.0  # frames are expected from then on (push on, a frame)
        self._repush_mono: float | None = None  # when push mode was asked for again
        self._frames_quiet_since: float | None = None  # local time of the last frame, if late
        self._last_frame_s = 0.0
        self._heart: threading.Thread | None = None

    # -- Tracker interface -----------------------------------------------------------------
    def _handshake(self) -> None:
        """Read the server's settings (heartbeat interval, frame rate, screen size)."""
        self._refresh_settings()

    def _after_connect(self) -> None:
        """Arm the silence watchdog and start the heartbeat."""
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

    def close(self) -> None:
        """Stop the threads and close the socket; returns within a few seconds at most."""
        self._end_frame_quiet("no frames until close")
        super().close()
        heart = self._heart
        if heart is not None and heart is not threading.current_thread():
            heart.join(timeout=2.0)

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

    # -- internals: the protocol -------------------------------------------------------------
    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"cannot reach the Eye Tribe server at {self.host}:{self.port} ({exc}); "
            "is the EyeTribe server (or `gazelab simulate-tracker`) running?"
        )

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
        self._send_bytes(P.encode(message))

    def _call(self, message: dict[str, Any], *, check: bool = True) -> dict[str, Any]:
        what = f"{message['category']}/{message.get('request')}"
        response: dict[str, Any] = self._exchange(
            (message["category"], message.get("request")), P.encode(message), what
        )
        code = response.get("statuscode")
        if check and code != P.STATUS_OK:
            raise TrackerError(
                f"tracker refused {what}: status "
                f"{P._short(code)} {P._short(response.get('statusmessage', ''))}".rstrip()
            )
        return response

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

    # -- internals: the reader's watchdog ----------------------------------------------------
    def _watch_period_s(self) -> float:
        # 1/8 interval: silence is seen at most 0.125 interval after the limit.
        return min(0.05, max(0.005, self.heartbeat_interval_s / 8))

    def _watch(self) -> Fault | None:
        return self._frames_watch()

    def _idle(self) -> Fault | None:
        return self._silence()

    def _silence(self) -> Fault | None:
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

    def _frames_watch(self) -> Fault | None:
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

    def _gap_start(self, lost_at: float) -> float:
        if self._frames_quiet_since is not None:  # one gap from the last frame on
            lost_at = min(lost_at, self._frames_quiet_since)
            self._frames_quiet_since = None
        return lost_at

    def _on_reconnected(self) -> None:
        """Restore push mode on the new connection."""
        self._heartbeat_paused.clear()
        # Frames are due again: if the server ignores the request below, the frame
        # watchdog asks again and, failing that, reconnects (never "connected", no gaze).
        self._frames_due_mono = time.monotonic()
        self._repush_mono = None
        if self._push:
            # Restore push mode without waiting here (replies arrive on this thread).
            self._expect(("tracker", "set"))
            try:
                self._send(P.request("tracker", "set", {"push": True, "version": 1}))
            except TrackerError:
                pass

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
            self._invalid(f"unexpected {describe(exc)}")

    def _handle_message(self, line: bytes | str, now: float) -> None:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        self._log("<", text.rstrip(), now)
        if not text.strip():
            self._invalid("empty line")  # the server never sends empty lines
            return
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError) as exc:  # ValueError: also ints over 4300 digits
            self._invalid(f"not JSON ({describe(exc)})")
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
        self._answer(key, msg)  # a reply nobody waits for (e.g. after a timeout) is dropped


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
