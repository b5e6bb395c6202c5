"""What the TCP tracker clients (Eye Tribe, GazePoint) share: one connection to a server
that sends newline-ended lines, read by one thread, with bounded buffers, a watchdog,
reconnection and gaps.

:class:`SocketTrackerClient` owns the socket and the machinery around it; a client
subclass adds its protocol: :meth:`~SocketTrackerClient.handle_line` for each received
line, the hand-shake after connecting (:meth:`~SocketTrackerClient._handshake`), what to
watch while reading (:meth:`~SocketTrackerClient._watch`,
:meth:`~SocketTrackerClient._idle`) and what to restore after a reconnect
(:meth:`~SocketTrackerClient._on_reconnected`).

Faults never end the stream silently:

- lines are framed by :class:`~gazelab.gaze.trackers.protocol.LineSplitter`: one longer
  than ``max_line_bytes`` is dropped unread and counted (``oversized_lines`` and
  ``invalid_messages``), and so is a line cut off by the end of a connection;
- a dropped connection, a failed send, a fault the watchdog reports, or any unexpected
  failure of the reader is a *fault*: the client records a
  :class:`~gazelab.gaze.trackers.base.Gap` (start, end, reason), reconnects (every
  0.2 s until it succeeds or is closed) and lets the subclass restore its stream;
- requests wait at most ``timeout_s`` for their reply, and fail at once when the
  connection drops;
- the sample queue is bounded: samples pushed out of a full queue (nobody drained it)
  are counted and recorded as a gap at the next :meth:`~SocketTrackerClient.drain`.

So the memory held per client is bounded by ``max_line_bytes`` plus the queue limits,
whatever the server sends.
"""

from __future__ import annotations

import collections
import select
import socket
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TextIO

from gazelab.gaze.trackers import protocol as P
from gazelab.gaze.trackers.base import (
    Gap,
    GapLog,
    GazeSample,
    TrackerClient,
    TrackerError,
    TrackerStats,
)

Fault = tuple[str, float | None]
"""Why a connection ended, and the local time (s) the gap starts (``None``: now)."""

RECV_BYTES = 65536
RECONNECT_WAIT_S = 0.2


@dataclass
class PendingReply:
    """A request waiting for its reply: the reader thread sets :attr:`reply` and the event."""

    key: Hashable
    event: threading.Event = field(default_factory=threading.Event)
    reply: Any = None


class SocketTrackerClient(TrackerClient):
    """A tracker client on one TCP connection; subclasses speak the protocol.

    Parameters
    ----------
    host, port : where the server listens.
    clock : the session's monotonic clock, seconds (sample times, gaps).
    reconnect : reconnect automatically after a fault.
    timeout_s : how long a request waits for its reply, and a send may block, seconds.
    transcript : optional text file; every line sent (``> ``) and received (``< ``) is
        written to it with its local time.
    on_gap : called with each :class:`Gap` as it is recorded (from the reader thread, or
        from the thread calling :meth:`drain` for dropped samples).
    stats : the client's counters (a :class:`TrackerStats` or a subclass of it).
    max_line_bytes : longest line accepted; longer ones are dropped and counted.
    max_queued_samples : samples kept until :meth:`drain`; older ones are dropped,
        counted and recorded as a gap.
    """

    SERVER = "the server"
    """The server in messages: "not connected to the Eye Tribe server"."""
    PEER = "the server"
    """Who did not answer, or could not be sent to, in messages."""
    READER_NAME = "tracker-reader"
    WATCH_PERIOD_S = 0.05
    """Longest wait for data before the watchdog looks again, seconds."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        reconnect: bool = True,
        timeout_s: float = 5.0,
        transcript: TextIO | None = None,
        on_gap: Callable[[Gap], None] | None = None,
        stats: TrackerStats | None = None,
        max_line_bytes: int = P.MAX_LINE_BYTES,
        max_queued_samples: int = 60_000,
    ) -> None:
        if max_queued_samples < 1:
            raise ValueError("max_queued_samples must be at least 1")
        self.host, self.port = host, port
        self.clock = clock
        self.reconnect = reconnect
        self.timeout_s = timeout_s
        self.transcript = transcript
        self.on_gap = on_gap
        self.stats = stats if stats is not None else TrackerStats()
        self.gap_log = GapLog(self.stats, on_gap)
        self.gaps = self.gap_log.gaps
        """The latest gaps (:class:`~gazelab.gaze.trackers.base.GapLog` keeps 1000)."""
        self.last_fault: str | None = None
        """The latest fault, in words (for a warning on screen); ``None`` if none yet."""
        self._samples: collections.deque[GazeSample] = collections.deque(maxlen=max_queued_samples)
        self._drop_run: list[float] | None = None  # [first local_s, last local_s, count]
        self._splitter = P.LineSplitter(max_line_bytes)
        self._pending: list[PendingReply] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._closing = threading.Event()
        self._connected = threading.Event()
        self._reader: threading.Thread | None = None
        self._fault: Fault | None = None  # set by a thread that broke the link
        # the watchdog's clocks: time.monotonic() for timing, self.clock() for gaps
        self._last_rx_mono = time.monotonic()
        self._last_rx_s = 0.0  # the clock is not read here: a replay's clock has no time yet
        self._probe_mono: float | None = None  # when the watchdog probed a quiet server
        self._gap_end_s = 0.0  # local time the latest gap ended

    @property
    def max_line_bytes(self) -> int:
        """Longest line accepted, bytes."""
        return self._splitter.max_line_bytes

    # -- for subclasses ----------------------------------------------------------------------
    def handle_line(self, line: bytes | str) -> None:
        """Process one received line (without its newline); must never raise."""
        raise NotImplementedError

    def _unreachable(self, exc: BaseException) -> str:
        """The one-line error when the server cannot be reached (what to check)."""
        return f"cannot reach {self.SERVER} at {self.host}:{self.port} ({exc})"

    def _handshake(self) -> None:
        """Read what the client needs after connecting (raises :class:`TrackerError`)."""

    def _after_connect(self) -> None:
        """Start what runs beside the reader once the hand-shake succeeded."""

    def _watch(self) -> Fault | None:
        """Called by the reader before each wait for data: a fault ends the connection."""
        return None

    def _idle(self) -> Fault | None:
        """Called by the reader when no data came for :meth:`_watch_period_s`."""
        return None

    def _watch_period_s(self) -> float:
        return self.WATCH_PERIOD_S

    def _gap_start(self, lost_at: float) -> float:
        """Where the gap of a lost connection starts (a quiet time before it may be folded in)."""
        return lost_at

    def _on_reconnected(self) -> None:
        """Restore the stream on a new connection, without waiting for replies (they
        arrive on the reader thread, which calls this)."""

    # -- Tracker interface -------------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection, start the reader and do the hand-shake.

        Raises
        ------
        TrackerError
            The server cannot be reached or does not answer; nothing is left running.
        """
        self._open()
        self._reader = self._start_reader()
        try:
            self._handshake()
        except TrackerError:
            self.close()
            raise
        self._after_connect()

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
        """Stop the reader and close the socket; returns within a few seconds at most."""
        self._closing.set()
        self._connected.clear()
        self._drop_socket(self._sock)
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=2.0)
        with self._lock:
            for p in self._pending:
                p.event.set()

    # -- the connection ----------------------------------------------------------------------
    def _open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except (OSError, OverflowError) as exc:
            raise TrackerError(self._unreachable(exc)) from exc
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

    def _take_fault(self) -> Fault | None:
        with self._lock:
            fault, self._fault = self._fault, None
        return fault

    def _on_disconnect(self, reason: str, start_s: float | None = None) -> bool:
        """Record the fault, reconnect, restore the stream; ``False`` when the reader should end."""
        lost_at = self._gap_start(self.clock() if start_s is None else start_s)
        self.last_fault = reason  # before `connected` drops: a warning then names the cause
        self._connected.clear()
        old, self._sock = self._sock, None
        self._drop_socket(old)
        self._fail_pending()
        if not self.reconnect or self._closing.is_set():
            return False
        while not self._closing.is_set():
            try:
                self._open()
            except TrackerError:
                self._closing.wait(RECONNECT_WAIT_S)
                continue
            break
        if self._closing.is_set():
            return False
        self.stats.reconnects += 1
        self._gap_end_s = self.clock()
        self._record_gap(Gap(start_s=lost_at, end_s=self._gap_end_s, reason=reason))
        self._on_reconnected()
        return True

    # -- requests and replies ----------------------------------------------------------------
    def _send_bytes(self, data: bytes) -> None:
        sock = self._sock
        if sock is None or not self._connected.is_set():
            raise TrackerError(f"not connected to {self.SERVER}")
        with self._send_lock:
            self._log(">", data.decode().rstrip())
            try:
                sock.sendall(data)
            except OSError as exc:
                # A send that failed half-way leaves a broken message in the stream:
                # the connection is unusable, so start over.
                self._break_link(f"sending to {self.PEER} failed ({exc})")
                raise TrackerError(f"sending to {self.PEER} failed: {exc}") from exc

    def _exchange(self, key: Hashable, data: bytes, what: str) -> Any:
        """Send ``data`` and wait for the reply :meth:`_answer` gets for ``key``; ``what``
        names the request in the error when none comes within ``timeout_s``."""
        pending = PendingReply(key)
        with self._lock:
            self._pending.append(pending)
        try:
            self._send_bytes(data)
        except TrackerError:
            with self._lock:
                if pending in self._pending:
                    self._pending.remove(pending)
            raise
        if not pending.event.wait(self.timeout_s) or pending.reply is None:
            with self._lock:
                if pending in self._pending:
                    self._pending.remove(pending)
            raise TrackerError(f"no reply from {self.PEER} to {what} within {self.timeout_s:.1f} s")
        return pending.reply

    def _expect(self, key: Hashable) -> None:
        """Consume the next reply for ``key`` without waiting for it (a request sent from
        the reader thread, whose reply nobody needs)."""
        with self._lock:
            self._pending.append(PendingReply(key))

    def _answer(self, key: Hashable, reply: Any) -> bool:
        """Give ``reply`` to the oldest request waiting for ``key``; ``False`` if none waits
        (e.g. after a timeout)."""
        with self._lock:
            match = next((p for p in self._pending if p.key == key), None)
            if match is None:
                return False
            self._pending.remove(match)
        match.reply = reply
        match.event.set()
        return True

    def _fail_pending(self) -> None:
        """Wake every waiting request (they fail at once) and forget them."""
        with self._lock:
            for p in self._pending:
                p.event.set()
            self._pending.clear()

    # -- the reader thread -------------------------------------------------------------------
    def _start_reader(self, *, resume: bool = False) -> threading.Thread:
        t = threading.Thread(
            target=self._read_loop, args=(resume,), name=self.READER_NAME, daemon=True
        )
        t.start()
        return t

    def _supervise_reader(self) -> None:
        """Restart a reader that ended (with a gap): the reader catches everything, so this
        is a last line of defence (a BaseException from a callback); a dead reader would
        mean no gaze, unnoticed."""
        reader = self._reader
        if reader is None or reader.is_alive() or self._closing.is_set() or not self.reconnect:
            return
        self.stats.reader_faults += 1
        self._break_link("the reader thread ended unexpectedly")
        self._reader = self._start_reader(resume=True)

    def _read_loop(self, resume: bool = False) -> None:
        """Read until closed; every way a connection ends is a recorded fault and a reconnect."""
        try:
            self._read_until_closed(resume)
        finally:
            if self._closing.is_set():
                # close() may have run while a reconnect was opening a new socket
                self._drop_socket(self._sock)

    def _read_until_closed(self, resume: bool) -> None:
        fault: Fault | None = None
        if resume:
            fault = self._take_fault() or ("the reader thread ended unexpectedly", None)
        while not self._closing.is_set():
            if fault is not None:
                try:
                    if not self._on_disconnect(*fault):
                        return
                except Exception as exc:  # e.g. an on_gap callback that raised
                    self.stats.reader_faults += 1
                    self.last_fault = f"reconnecting failed ({describe(exc)})"
                    self._closing.wait(RECONNECT_WAIT_S)
                    if not self._connected.is_set():
                        continue  # still down: try again with the same fault
                fault = None
            try:
                fault = self._read_connection()
            except Exception as exc:  # any reader failure is a fault, not the end
                if self._closing.is_set():
                    return
                self.stats.reader_faults += 1
                fault = self._take_fault() or (f"the reader failed ({describe(exc)})", None)

    def _read_connection(self) -> Fault:
        """Read lines from the current socket until it ends; returns why it ended."""
        sock = self._sock
        if sock is None or not self._connected.is_set():
            return self._take_fault() or ("connection lost", None)
        splitter = self._splitter
        try:
            while not self._closing.is_set():
                watched = self._watch()
                if watched is not None:
                    return watched
                readable, _, _ = select.select([sock], [], [], self._watch_period_s())
                if not readable:
                    quiet = self._idle()
                    if quiet is not None:
                        return quiet
                    continue
                chunk = sock.recv(RECV_BYTES)
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

    def _mark_traffic(self) -> None:
        self._last_rx_mono = time.monotonic()
        self._last_rx_s = self.clock()
        self._probe_mono = None

    # -- bookkeeping -------------------------------------------------------------------------
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
        self.stats.last_invalid = f"a line longer than {self.max_line_bytes} bytes"
        # An invalid line in the transcript, so a replay counts it as the live client did.
        self._log("<", f"<dropped: line over {self.max_line_bytes} bytes>")

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


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, short enough for one line on screen."""
    text = str(exc)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["Fault", "PendingReply", "SocketTrackerClient", "describe"]
