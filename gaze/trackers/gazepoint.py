"""Client of the GazePoint Open Gaze API (XML over TCP, port 4242);
docs/running-a-session.md#trackers.

The protocol (one XML element per line; ``SET``/``GET`` answered by ``ACK``/``NACK``,
``REC`` data records, ``CAL`` calibration reports) is parsed in
:mod:`gazelab.gaze.trackers.opengaze`, whose names are importable from here too; the
connection, reader thread, line framing, reconnection and gaps are the TCP clients'
:class:`~gazelab.gaze.trackers.socket_client.SocketTrackerClient`.

:class:`GazePointTracker` enables ``TIME``, ``COUNTER``, ``POG_BEST``,
``POG_FIX`` and the per-eye POGs, and turns each record into a
:class:`GazeSample`: tracker clock ``TIME`` in ms (kept monotonic across the
server's reset at calibration), best point of gaze scaled to screen pixels by
``SCREEN_SIZE``, ``fix`` from the fixation filter's valid flag. Lines are
parsed one element at a time with :mod:`xml.etree` and never longer than
``max_line_bytes`` (docs/input-hardening.md); malformed lines and
records are counted in :attr:`GazePointTracker.stats` and skipped, the stream
goes on. Dropped connections are handled like the Eye Tribe client's: the
client reconnects, re-enables the data it had asked for and records the
:class:`~gazelab.gaze.trackers.base.Gap`.

A server that goes quiet is noticed too (the Open Gaze API has no heartbeat): while
records are on, ``silence_s`` without a line makes the client ask for
``ENABLE_SEND_DATA``; no answer for twice that is a frozen server (a gap from the last
line, then a reconnect). A server that answers but sends no records gets
``ENABLE_SEND_DATA`` again every ``silence_s``, and the quiet time becomes a gap when
records come back (or at :meth:`GazePointTracker.close`).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.base import (
    CalibrationResult,
    Gap,
    GazeSample,
    TrackerError,
    TrackerStats,
)
from gazelab.gaze.trackers.opengaze import (
    CLIENT_TAGS,
    DATA_FIELDS,
    DEFAULT_PORT,
    MAX_LINE_BYTES,
    MAX_SCREEN_FRACTION,
    MAX_TIME_S,
    SERVER_TAGS,
    OpenGazeError,
    _count,
    _seconds,
    element,
    parse_calib_result,
    parse_line,
    parse_record,
)
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker
from gazelab.gaze.trackers.socket_client import Fault, SocketTrackerClient, describe

SILENCE_S = 1.0
"""Default quiet time (s) while records are on after which the client probes the server."""


@dataclass
class GazePointStats(TrackerStats):
    """:class:`TrackerStats` (``frames`` = records received) plus the Open Gaze counts."""

    samples_lost: int = 0
    """Records the server counted (``CNT``) that never arrived."""
    clock_resets: int = 0
    """Times ``TIME`` ran backwards (the server restarts it at calibration)."""


class GazePointTracker(SocketTrackerClient):
    """Client of a GazePoint server (GP3, GP3 HD, or :class:`GazePointSimulator`).

    A :class:`~gazelab.gaze.trackers.base.Tracker`.

    Parameters
    ----------
    host, port : where the server listens (default ``127.0.0.1:4242``).
    clock : the session's monotonic clock, seconds.
    screen_px : tracked screen size, pixels; default: the server's ``SCREEN_SIZE``.
    geometry : converts calibration errors to degrees (default: 27" reference screen at
        ``screen_px``, 700 mm).
    show_vendor_calibration : let the GazePoint window draw calibration targets
        (``CALIBRATE_SHOW``); by default gazelab draws them (``on_point``).
    max_line_bytes : longer lines are dropped unread and counted.
    max_buffer : samples kept for :meth:`drain`; older ones are dropped, counted and
        recorded as a gap.
    transcript : optional text file; every line sent (``> ``) and received (``< ``) is
        written with its local time.
    silence_s : while records are on, this long without a line makes the client probe the
        server, and twice this long without an answer is a frozen server (gap, reconnect);
        this long without a record (the server answering) re-enables them.
    """

    SERVER = "the GazePoint server"
    PEER = "the GazePoint server"
    READER_NAME = "gazepoint-reader"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        clock: Callable[[], float] = time.monotonic,
        reconnect: bool = True,
        timeout_s: float = 5.0,
        screen_px: tuple[int, int] | None = None,
        geometry: DisplayGeometry | None = None,
        show_vendor_calibration: bool = False,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_buffer: int = 120_000,
        transcript: TextIO | None = None,
        on_gap: Callable[[Gap], None] | None = None,
        silence_s: float = SILENCE_S,
    ) -> None:
        if not silence_s > 0:
            raise ValueError(f"silence_s = {silence_s} must be positive")
        self.stats: GazePointStats
        super().__init__(host, port, clock=clock, reconnect=reconnect, timeout_s=timeout_s,
                         transcript=transcript, on_gap=on_gap, stats=GazePointStats(),
                         max_line_bytes=max_line_bytes, max_queued_samples=max_buffer)  # fmt: skip
        self.silence_s = float(silence_s)
        self._fixed_screen = screen_px is not None
        self.screen_px: tuple[int, int] = screen_px or (1920, 1080)
        self.geometry = geometry
        self.show_vendor_calibration = show_vendor_calibration
        self.framerate = 0
        self.product = ""
        self.calibration: CalibrationResult | None = None
        self._cal_events: queue.Queue[dict[str, str]] = queue.Queue(maxsize=4096)
        self._streaming = False
        self._last_cnt: int | None = None
        self._last_raw_ms: float | None = None
        self._time_offset_ms = 0.0
        # the record watchdog's clocks: time.monotonic() for timing, self.clock() for gaps
        self._last_rec_mono = self._stream_since_mono = time.monotonic()
        self._last_rec_s = 0.0
        self._resend_mono = 0.0
        self._records_quiet_since: float | None = None
        """Local time of the last record while the server answers but sends none."""

    @property
    def last_error(self) -> str:
        """The latest fault that was not raised (e.g. while stopping), in words ("" if none)."""
        return self.last_fault or ""

    @last_error.setter
    def last_error(self, text: str) -> None:
        self.last_fault = text or None

    # -- Tracker interface -----------------------------------------------------------------
    def _handshake(self) -> None:
        """Read the tracked screen's size and the product's rate."""
        size = self.get("SCREEN_SIZE")
        if not self._fixed_screen:
            try:
                w, h = int(size.get("WIDTH", "")), int(size.get("HEIGHT", ""))
            except ValueError:
                w = h = 0
            if not (0 < w <= 100_000 and 0 < h <= 100_000):
                raise TrackerError(
                    f"the GazePoint server reported no usable SCREEN_SIZE ({size}); "
                    "give the screen size in the tracker settings"
                )
            self.screen_px = (w, h)
        product = self.get("PRODUCT_ID", check=False)
        self.product = product.get("VALUE", "")[:64]
        self.framerate = _count(product.get("RATE", ""), limit=100_000)

    def start(self) -> None:
        """Enable time, counter, fixation, best and per-eye POG, then the data stream."""
        self._stream_since_mono = time.monotonic()
        self._streaming = True
        for ident in DATA_FIELDS:
            self.set(ident, STATE=1)
        self.set("ENABLE_SEND_DATA", STATE=1)

    def stop(self) -> None:
        """Stop the data records; never raises (a closed or dropped connection sends
        nothing anyway), so a session can always end."""
        self._streaming = False
        if self._connected.is_set():
            try:
                self.set("ENABLE_SEND_DATA", STATE=0)
            except TrackerError as exc:
                self.last_fault = f"stopping the data records failed: {exc}"

    def close(self) -> None:
        """Close the connection (a quiet time without records still open becomes a gap)."""
        if self._records_quiet_since is not None:
            start, self._records_quiet_since = self._records_quiet_since, None
            self._record_gap(Gap(start, self.clock(), "no data records until close; "
                                 "the server answered"))  # fmt: skip
        super().close()

    # -- requests --------------------------------------------------------------------------
    def get(self, ident: str, *, check: bool = True) -> dict[str, str]:
        """``<GET ID=ident />``; the ACK's attributes (empty on a NACK when ``check`` is false)."""
        return self._call("GET", ident, check=check)

    def set(self, ident: str, *, check: bool = True, **attrs: object) -> dict[str, str]:
        """``<SET ID=ident .../>``; the ACK's attributes."""
        return self._call("SET", ident, check=check, **attrs)

    def calibrate(
        self,
        points_xy: list[tuple[float, float]],
        *,
        dwell_s: float = 0.75,
        on_point: Callable[[int, tuple[float, float]], None] | None = None,
    ) -> CalibrationResult:
        """Calibrate on ``points_xy`` (screen px), ``dwell_s`` seconds each.

        Replaces the server's point list (``CALIBRATE_CLEAR`` + ``CALIBRATE_ADDPOINT``),
        sets ``CALIBRATE_TIMEOUT`` to ``dwell_s`` and starts. ``on_point(i, (x, y))``
        is called, on the caller's thread, as each ``CALIB_START_PT`` arrives;
        the result is parsed from ``CALIB_RESULT`` (errors in degrees through
        :attr:`geometry`).
        """
        if not points_xy:
            raise ValueError("calibration needs at least one point")
        w, h = self.screen_px
        while not self._cal_events.empty():
            self._cal_events.get_nowait()
        self.set("CALIBRATE_CLEAR")
        for x, y in points_xy:
            self.set("CALIBRATE_ADDPOINT", X=float(x) / w, Y=float(y) / h)
        self.set("CALIBRATE_TIMEOUT", VALUE=float(dwell_s))
        delay_s = _seconds(self.get("CALIBRATE_DELAY", check=False).get("VALUE", ""), 1.0)
        self.set("CALIBRATE_SHOW", STATE=int(self.show_vendor_calibration))
        self.set("CALIBRATE_START", STATE=1)
        budget_s = len(points_xy) * (dwell_s + min(delay_s, 10.0)) + self.timeout_s
        deadline = self.clock() + budget_s
        try:
            while True:
                left = deadline - self.clock()
                if left <= 0 or not self._connected.is_set():
                    raise TrackerError(
                        f"no CALIB_RESULT from the GazePoint server within {budget_s:.1f} s"
                        + ("" if self._connected.is_set() else " (connection lost)")
                    )
                try:
                    ev = self._cal_events.get(timeout=min(left, 0.1))
                except queue.Empty:
                    continue
                ident = ev.get("ID", "")
                if ident == "CALIB_START_PT" and on_point is not None:
                    try:
                        pt = int(ev.get("PT", ""))
                        xy = (float(ev["CALX"]) * w, float(ev["CALY"]) * h)
                    except (KeyError, ValueError):
                        self._invalid(f"a calibration point that is not one: {ev}"[:200])
                        continue
                    on_point(pt - 1, xy)
                elif ident == "CALIB_RESULT":
                    geometry = self.geometry or DisplayGeometry.from_diagonal(
                        resolution_px=self.screen_px
                    )
                    try:
                        self.calibration = parse_calib_result(
                            ev, screen_px=self.screen_px, geometry=geometry
                        )
                    except OpenGazeError as exc:
                        raise TrackerError(f"malformed calibration result: {exc}") from exc
                    break
        except BaseException:
            if self._connected.is_set():
                try:
                    self.set("CALIBRATE_START", STATE=0, check=False)
                except TrackerError:
                    pass
            raise
        if self.show_vendor_calibration:
            self.set("CALIBRATE_SHOW", STATE=0, check=False)
        return self.calibration

    # -- internals -------------------------------------------------------------------------
    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"cannot reach the GazePoint server at {self.host}:{self.port} ({exc}); is "
            "Gazepoint Control (or `gazelab simulate-tracker --protocol gazepoint`) running?"
        )

    def _call(self, tag: str, ident: str, *, check: bool, **attrs: object) -> dict[str, str]:
        rtag, rattrs = self._exchange(ident, element(tag, ident, **attrs), f"{tag} {ident}")
        if rtag == "NACK":
            if check:
                raise TrackerError(f"the GazePoint server refused {tag} {ident} (NACK)")
            return {}
        return dict(rattrs)

    def _watch(self) -> Fault | None:
        """The reader's watchdog while records are on: probe a quiet server, give up on a
        frozen one (returns the fault: reason and the local time of the last line), and
        re-enable records that stopped while the server still answers."""
        if not self._streaming or not self._connected.is_set():
            return None
        now = time.monotonic()
        quiet_s = now - self._last_rx_mono
        if quiet_s > self.silence_s:
            if self._probe_mono is None:
                self._probe_mono = now
                self._send_quietly(element("GET", "ENABLE_SEND_DATA"))
            elif quiet_s > 2 * self.silence_s and now - self._probe_mono > self.silence_s / 2:
                self.stats.silences += 1
                return (
                    f"the GazePoint server sent nothing for {quiet_s:.1f} s and did not "
                    "answer (frozen or gone)",
                    self._last_rx_s,
                )
            return None
        records_quiet_s = now - max(self._last_rec_mono, self._stream_since_mono)
        if records_quiet_s > self.silence_s and now - self._resend_mono > self.silence_s:
            if self._records_quiet_since is None:
                self.stats.silences += 1
                self._records_quiet_since = max(self._last_rec_s, self._gap_end_s)
            self._resend_mono = now
            self._send_quietly(element("SET", "ENABLE_SEND_DATA", STATE=1))
        return None

    def _send_quietly(self, data: bytes) -> None:
        try:
            self._send_bytes(data)
        except TrackerError as exc:  # the link is broken: the reader notices at its next turn
            self.last_fault = str(exc)

    def _gap_start(self, lost_at: float) -> float:
        if self._records_quiet_since is not None:  # one gap from the last record on
            lost_at = min(lost_at, self._records_quiet_since)
            self._records_quiet_since = None
        return lost_at

    def _on_reconnected(self) -> None:
        """Re-enable the data records on the new connection."""
        self._last_cnt = None
        self._stream_since_mono = time.monotonic()
        if self._streaming:
            # Re-enable without waiting: the ACKs arrive on this very thread (and records
            # that do not follow are re-enabled by the watchdog).
            try:
                for ident in DATA_FIELDS:
                    self._send_bytes(element("SET", ident, STATE=1))
                self._send_bytes(element("SET", "ENABLE_SEND_DATA", STATE=1))
            except TrackerError:
                pass

    # -- messages ------------------------------------------------------------------------------
    def handle_line(self, line: bytes | str) -> None:
        """Process one received line (public so transcripts can be replayed through it).

        Never raises: whatever is wrong with a line, it is counted in :attr:`stats`
        (``invalid_messages``, ``last_invalid``) and skipped.
        """
        now = self.clock()
        try:
            self._handle_message(line, now)
        except Exception as exc:  # one bad line must never end the stream
            self._invalid(f"unexpected {describe(exc)}")

    def _handle_message(self, line: bytes | str, now: float) -> None:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        text = text.strip()
        self._log("<", text, now)
        if not text:
            return  # a bare CR/LF between records
        try:
            tag, attrs = parse_line(text)
        except OpenGazeError as exc:
            self._invalid(str(exc))
            return
        if tag == "REC":
            self._on_record(attrs, now)
        elif tag in ("ACK", "NACK"):
            # an ACK nobody waits for (re-enable after reconnect, timeouts) is dropped
            self._answer(attrs.get("ID", ""), (tag, attrs))
        elif tag == "CAL":
            try:
                self._cal_events.put_nowait(attrs)
            except queue.Full:
                self._invalid("too many calibration reports unread")
        else:
            self._invalid(f"an element the client does not expect: {tag[:40]}")

    def _on_record(self, attrs: dict[str, str], now: float) -> None:
        try:
            sample = parse_record(
                attrs, local_s=now, screen_px=self.screen_px, time_offset_ms=self._time_offset_ms
            )
            cnt = int(attrs["CNT"]) if "CNT" in attrs else None
        except (OpenGazeError, ValueError) as exc:
            self._invalid(f"a malformed record ({describe(exc)})")
            return
        raw_ms = sample.time_ms - self._time_offset_ms
        if self._last_raw_ms is not None and raw_ms < self._last_raw_ms:
            # TIME restarts at calibration: continue the tracker clock where it was.
            self._time_offset_ms += self._last_raw_ms - raw_ms
            self.stats.clock_resets += 1
            sample = parse_record(
                attrs, local_s=now, screen_px=self.screen_px, time_offset_ms=self._time_offset_ms
            )
        self._last_raw_ms = raw_ms
        if cnt is not None:
            if self._last_cnt is not None and cnt > self._last_cnt + 1:
                self.stats.samples_lost += cnt - self._last_cnt - 1
            self._last_cnt = cnt
        self.stats.frames += 1
        self._last_rec_mono, self._last_rec_s = time.monotonic(), now
        if self._records_quiet_since is not None:
            start, self._records_quiet_since = self._records_quiet_since, None
            self._gap_end_s = now
            self._record_gap(Gap(start, now, f"no data records for {now - start:.1f} s; "
                                 "the server answered"))  # fmt: skip
        self._enqueue(sample)


@register_tracker("gazepoint", "a GazePoint tracker (Open Gaze API, XML over TCP, port 4242)",
                  args="address", manufacturer="Gazepoint", model="Open Gaze API tracker")  # fmt: skip
def open_gazepoint(request: TrackerRequest) -> OpenTracker:
    tracker = GazePointTracker(request.host, request.port or DEFAULT_PORT, clock=request.clock,
                               screen_px=request.screen_px, geometry=request.geometry)  # fmt: skip
    tracker.connect()
    return OpenTracker(tracker)


__all__ = [
    "CLIENT_TAGS",
    "DATA_FIELDS",
    "DEFAULT_PORT",
    "MAX_LINE_BYTES",
    "MAX_SCREEN_FRACTION",
    "MAX_TIME_S",
    "SERVER_TAGS",
    "SILENCE_S",
    "GazePointStats",
    "GazePointTracker",
    "GazeSample",
    "OpenGazeError",
    "element",
    "open_gazepoint",
    "parse_calib_result",
    "parse_line",
    "parse_record",
]
