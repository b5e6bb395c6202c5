"""Client of the GazePoint Open Gaze API (XML over TCP, port 4242), issue #19.

The Open Gaze API (v2) exchanges one XML element per line, each line ended by
``\\r\\n``. The client sends ``<SET ID="..." .../>`` and ``<GET ID="..." />``;
the server answers ``<ACK ID="..." .../>`` or ``<NACK ID="..." />``, streams
``<REC .../>`` data records once ``ENABLE_SEND_DATA`` is on, and reports a
calibration with ``<CAL ID="CALIB_START_PT" PT CALX CALY />``,
``CALIB_RESULT_PT`` and finally ``<CAL ID="CALIB_RESULT" CALX1 CALY1 LX1 LY1
LV1 RX1 RY1 RV1 ... />``. All positions are fractions of the tracked screen
((0, 0) top left, (1, 1) bottom right); ``TIME`` is seconds since the server
started (or last calibrated).

:class:`GazePointTracker` enables ``TIME``, ``COUNTER``, ``POG_BEST``,
``POG_FIX`` and the per-eye POGs, and turns each record into a
:class:`GazeSample`: tracker clock ``TIME`` in ms (kept monotonic across the
server's reset at calibration), best point of gaze scaled to screen pixels by
``SCREEN_SIZE``, ``fix`` from the fixation filter's valid flag. Lines are
parsed one element at a time with :mod:`xml.etree` and never longer than
``max_line_bytes`` (DESIGN "Untrusted files stay data"); malformed lines and
records are counted in :attr:`GazePointTracker.stats` and skipped, the stream
goes on. Dropped connections are handled like the Eye Tribe client's: the
client reconnects, re-enables the data it had asked for and records the
:class:`~gazelab.gaze.trackers.eyetribe.Gap`.

A server that goes quiet is noticed too (the Open Gaze API has no heartbeat): while
records are on, ``silence_s`` without a byte makes the client ask for
``ENABLE_SEND_DATA``; no answer for twice that is a frozen server (a gap from the last
byte, then a reconnect). A server that answers but sends no records gets
``ENABLE_SEND_DATA`` again every ``silence_s``, and the quiet time becomes a gap when
records come back (or at :meth:`GazePointTracker.close`).
"""

from __future__ import annotations

import collections
import math
import queue
import select
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from gazelab.errors import GazelabError
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.base import (
    STATE_OK,
    STATE_TRACKING_FAIL,
    STATE_TRACKING_PRESENCE,
    CalibrationPoint,
    CalibrationResult,
    Gap,
    GapLog,
    GazeSample,
    TrackerClient,
    TrackerError,
    TrackerStats,
    sample_is_valid,
)
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker

DEFAULT_PORT = 4242
MAX_LINE_BYTES = 64 * 1024
SERVER_TAGS = ("ACK", "NACK", "CAL", "REC")
CLIENT_TAGS = ("SET", "GET")
DATA_FIELDS = (
    "ENABLE_SEND_COUNTER",
    "ENABLE_SEND_TIME",
    "ENABLE_SEND_POG_FIX",
    "ENABLE_SEND_POG_BEST",
    "ENABLE_SEND_POG_LEFT",
    "ENABLE_SEND_POG_RIGHT",
)

"""The data records the client enables before ``ENABLE_SEND_DATA``."""
MAX_SCREEN_FRACTION = 100.0
"""Positions beyond ±100 screen widths are not gaze but garbage: such records are malformed."""
MAX_TIME_S = 1e9
SILENCE_S = 1.0
"""Default quiet time (s) while records are on after which the client probes the server."""
_WATCH_PERIOD_S = 0.05


class OpenGazeError(GazelabError, ValueError):
    """A line or record of the Open Gaze API is malformed; the client counts and skips it."""


def element(tag: str, ident: str | None = None, **attrs: object) -> bytes:
    """One Open Gaze API line: ``<TAG ID="ident" K="v" ... />\\r\\n``.

    Floats are written with 5 decimals, as the GazePoint server does.

    Examples
    --------
    >>> element("SET", "ENABLE_SEND_DATA", STATE=1)
    b'<SET ID="ENABLE_SEND_DATA" STATE="1" />\\r\\n'
    """
    parts = [tag]
    items: list[tuple[str, object]] = [("ID", ident)] if ident is not None else []
    items += list(attrs.items())
    for key, value in items:
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, float):
            text = f"{value:.5f}"
        else:
            text = str(value)
        text = text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        parts.append(f'{key}="{text}"')
    return ("<" + " ".join(parts) + " />\r\n").encode("utf-8")


def parse_line(text: str) -> tuple[str, dict[str, str]]:
    """Parse one line into ``(tag, attributes)``.

    Only a single empty element is accepted: no DOCTYPE, entities, comments,
    children or text, so the parser never expands or recurses into anything.

    Raises
    ------
    OpenGazeError
        Not one well-formed Open Gaze element.
    """
    s = text.strip()
    if not s.startswith("<") or "<!" in s or "<?" in s:
        raise OpenGazeError(f"not an Open Gaze element: {s[:60]!r}")
    try:
        el = ET.fromstring(s)
    except ET.ParseError as exc:
        raise OpenGazeError(f"malformed XML ({exc}): {s[:60]!r}") from exc
    if len(el) or (el.text or "").strip():
        raise OpenGazeError(f"an Open Gaze element has no children or text: {s[:60]!r}")
    return el.tag, {k: v.strip() for k, v in el.attrib.items()}


def _number(attrs: Mapping[str, str], key: str, *, limit: float = math.inf) -> float:
    raw = attrs.get(key)
    if raw is None:
        raise OpenGazeError(f"record lacks {key}")
    try:
        v = float(raw)
    except ValueError as exc:
        raise OpenGazeError(f"{key}={raw[:32]!r} is not a number") from exc
    if not math.isfinite(v) or abs(v) > limit:
        raise OpenGazeError(f"{key}={raw[:32]!r} is out of range")
    return v


def _count(text: str, limit: int = 1_000_000) -> int:
    """A plain decimal count (``"150"``) from the server, else 0: ``"²"`` or ``"1e9"`` are
    not rates (``str.isdigit`` accepts superscripts that ``int`` refuses)."""
    t = text.strip()
    if not (t.isascii() and t.isdigit() and len(t) <= 9):
        return 0
    v = int(t)
    return v if v <= limit else 0


def _seconds(text: str, default: float, limit: float = 3600.0) -> float:
    """A finite, non-negative number of seconds from the server, else ``default``."""
    try:
        v = float(text)
    except ValueError:
        return default
    return v if math.isfinite(v) and 0 <= v <= limit else default


def _flag(attrs: Mapping[str, str], key: str) -> bool:
    raw = attrs.get(key)
    if raw not in ("0", "1"):
        raise OpenGazeError(f"{key} must be 0 or 1, got {raw!r}")
    return raw == "1"


def _optional_xy(
    attrs: Mapping[str, str], prefix: str, screen_px: tuple[int, int]
) -> tuple[float, float]:
    """Per-eye POG (``LPOGX``/``LPOGY``/``LPOGV``) in px, NaN when absent or invalid."""
    keys = (f"{prefix}X", f"{prefix}Y", f"{prefix}V")
    if not all(k in attrs for k in keys) or not _flag(attrs, keys[2]):
        return math.nan, math.nan
    return (
        _number(attrs, keys[0], limit=MAX_SCREEN_FRACTION) * screen_px[0],
        _number(attrs, keys[1], limit=MAX_SCREEN_FRACTION) * screen_px[1],
    )


def parse_record(
    attrs: Mapping[str, str],
    *,
    local_s: float,
    screen_px: tuple[int, int],
    time_offset_ms: float = 0.0,
) -> GazeSample:
    """Turn a ``<REC>``'s attributes into a :class:`GazeSample`.

    Needs ``TIME`` (s) and ``BPOGX``/``BPOGY``/``BPOGV`` (best point of gaze,
    screen fractions, valid flag). ``fix`` is the fixation filter's valid flag
    ``FPOGV`` (true only while a fixation is detected); per-eye positions come
    from ``LPOG*``/``RPOG*`` when sent.

    Parameters
    ----------
    screen_px : (width, height) of the tracked screen, pixels (``SCREEN_SIZE``).
    time_offset_ms : added to ``TIME`` (keeps the clock monotonic over server resets).

    Raises
    ------
    OpenGazeError
        A required attribute is missing, not a number, or absurd.
    """
    t_s = _number(attrs, "TIME", limit=MAX_TIME_S)
    if t_s < 0:
        raise OpenGazeError(f"TIME={t_s} must not be negative")
    bx = _number(attrs, "BPOGX", limit=MAX_SCREEN_FRACTION)
    by = _number(attrs, "BPOGY", limit=MAX_SCREEN_FRACTION)
    bv = _flag(attrs, "BPOGV")
    fix = _flag(attrs, "FPOGV") if "FPOGV" in attrs else False
    lx, ly = _optional_xy(attrs, "LPOG", screen_px)
    rx, ry = _optional_xy(attrs, "RPOG", screen_px)
    w, h = screen_px
    x, y = bx * w, by * h
    state = STATE_OK if bv else STATE_TRACKING_FAIL | STATE_TRACKING_PRESENCE
    return GazeSample(
        time_ms=t_s * 1000.0 + time_offset_ms,
        local_s=local_s,
        x=x,
        y=y,
        fix=bool(fix and bv),
        state=state,
        valid=sample_is_valid(state, x, y, screen_px),
        left_x=lx,
        left_y=ly,
        right_x=rx,
        right_y=ry,
    )


def parse_calib_result(
    attrs: Mapping[str, str], *, screen_px: tuple[int, int], geometry: DisplayGeometry
) -> CalibrationResult:
    """Turn ``<CAL ID="CALIB_RESULT" ...>`` into a :class:`CalibrationResult`.

    Point ``i`` (1-based) has its target ``CALXi``/``CALYi`` and each eye's
    estimated gaze ``LXi``/``LYi`` (valid ``LVi``) and ``RXi``/``RYi`` (``RVi``),
    screen fractions. Per point: error of each valid eye, degrees through
    ``geometry``; ``accuracy_deg`` is their mean and ``state`` 2 when an eye is
    valid, else 0. ``result`` is true when every point has a valid eye (the
    vendor's "valid point"); whether the accuracy is good enough is the
    session's decision.
    """
    w, h = screen_px
    points: list[CalibrationPoint] = []
    i = 1
    while f"CALX{i}" in attrs and i <= 1000:
        tx = _number(attrs, f"CALX{i}", limit=MAX_SCREEN_FRACTION) * w
        ty = _number(attrs, f"CALY{i}", limit=MAX_SCREEN_FRACTION) * h
        errs: dict[str, float] = {}
        for eye in ("L", "R"):
            if attrs.get(f"{eye}V{i}") == "1":
                ex = _number(attrs, f"{eye}X{i}", limit=MAX_SCREEN_FRACTION) * w
                ey = _number(attrs, f"{eye}Y{i}", limit=MAX_SCREEN_FRACTION) * h
                errs[eye] = math.hypot(ex - tx, ey - ty)
        err_px = sum(errs.values()) / len(errs) if errs else math.nan
        to_deg = geometry.px_to_deg
        points.append(
            CalibrationPoint(
                x=tx,
                y=ty,
                accuracy_deg=to_deg(err_px) if errs else math.nan,
                accuracy_left_deg=to_deg(errs["L"]) if "L" in errs else math.nan,
                accuracy_right_deg=to_deg(errs["R"]) if "R" in errs else math.nan,
                mean_error_px=err_px,
                state=2 if errs else 0,
            )
        )
        i += 1
    if not points:
        raise OpenGazeError("CALIB_RESULT lists no calibration points (CALX1 missing)")

    def mean(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else math.nan

    return CalibrationResult(
        result=all(p.state == 2 for p in points),
        deg=mean([p.accuracy_deg for p in points]),
        degl=mean([p.accuracy_left_deg for p in points]),
        degr=mean([p.accuracy_right_deg for p in points]),
        points=tuple(points),
    )


@dataclass
class GazePointStats(TrackerStats):
    """:class:`TrackerStats` (``frames`` = records received) plus the Open Gaze counts."""

    samples_lost: int = 0
    """Records the server counted (``CNT``) that never arrived."""
    clock_resets: int = 0
    """Times ``TIME`` ran backwards (the server restarts it at calibration)."""


@dataclass
class _Pending:
    ident: str
    event: threading.Event = field(default_factory=threading.Event)
    reply: tuple[str, dict[str, str]] | None = None


class GazePointTracker(TrackerClient):
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
    max_buffer : samples kept for :meth:`drain`; older ones are dropped and counted.
    transcript : optional text file; every line sent (``> ``) and received (``< ``) is
        written with its local time.
    silence_s : while records are on, this long without a byte makes the client probe the
        server, and twice this long without an answer is a frozen server (gap, reconnect);
        this long without a record (the server answering) re-enables them.
    """

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
        self.host, self.port = host, port
        self.silence_s = float(silence_s)
        self.clock = clock
        self.reconnect = reconnect
        self.timeout_s = timeout_s
        self._fixed_screen = screen_px is not None
        self.screen_px: tuple[int, int] = screen_px or (1920, 1080)
        self.geometry = geometry
        self.show_vendor_calibration = show_vendor_calibration
        self.max_line_bytes = max_line_bytes
        self.transcript = transcript
        self.stats = GazePointStats()
        self.gap_log = GapLog(self.stats, on_gap)
        self.gaps = self.gap_log.gaps
        self.last_error = ""
        """The latest fault that was not raised (e.g. while stopping), in words."""
        """The latest gaps (:class:`~gazelab.gaze.trackers.base.GapLog` keeps 1000)."""
        self.framerate = 0
        self.product = ""
        self.calibration: CalibrationResult | None = None
        self._samples: collections.deque[GazeSample] = collections.deque(maxlen=max_buffer)
        self._cal_events: queue.Queue[dict[str, str]] = queue.Queue(maxsize=4096)
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._closing = threading.Event()
        self._connected = threading.Event()
        self._streaming = False
        self._reader: threading.Thread | None = None
        self._last_cnt: int | None = None
        self._last_raw_ms: float | None = None
        self._time_offset_ms = 0.0
        # the watchdog's clocks: time.monotonic() for timing, self.clock() for gaps
        self._last_rx_mono = self._last_rec_mono = self._stream_since_mono = time.monotonic()
        self._last_rx_s = self._last_rec_s = self._gap_end_s = 0.0
        self._probe_mono: float | None = None
        self._resend_mono = 0.0
        self._records_quiet_since: float | None = None
        """Local time of the last record while the server answers but sends none."""

    # -- Tracker interface -----------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection and read the tracked screen's size and the product's rate."""
        self._open()
        self._reader = threading.Thread(
            target=self._read_loop, name="gazepoint-reader", daemon=True
        )
        self._reader.start()
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
                self.last_error = f"stopping the data records failed: {exc}"

    def drain(self) -> list[GazeSample]:
        with self._lock:
            out = list(self._samples)
            self._samples.clear()
        return out

    def close(self) -> None:
        self._closing.set()
        self._connected.clear()
        if self._records_quiet_since is not None:
            start, self._records_quiet_since = self._records_quiet_since, None
            self.gap_log.record(Gap(start, self.clock(), "no data records until close; "
                                    "the server answered"))  # fmt: skip
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        with self._lock:
            for p in self._pending:
                p.event.set()

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
                        self.stats.invalid_messages += 1
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
    def _open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise TrackerError(
                f"cannot reach the GazePoint server at {self.host}:{self.port} ({exc}); is "
                "Gazepoint Control (or `gazelab simulate-tracker --protocol gazepoint`) running?"
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Sends give up after timeout_s (a frozen server stops reading); the reader
        # waits in select(), so it never hits this.
        sock.settimeout(self.timeout_s)
        self._sock = sock
        self._mark_rx()
        self._connected.set()

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None or not self._connected.is_set():
            raise TrackerError("not connected to the GazePoint server")
        with self._send_lock:
            if self.transcript is not None:
                self.transcript.write(f"{self.clock()!r} > {data.decode().rstrip()}\n")
            try:
                sock.sendall(data)
            except OSError as exc:
                raise TrackerError(f"sending to the GazePoint server failed: {exc}") from exc

    def _call(self, tag: str, ident: str, *, check: bool, **attrs: object) -> dict[str, str]:
        pending = _Pending(ident)
        with self._lock:
            self._pending.append(pending)
        try:
            self._send(element(tag, ident, **attrs))
        except TrackerError:
            with self._lock:
                self._pending.remove(pending)
            raise
        if not pending.event.wait(self.timeout_s) or pending.reply is None:
            with self._lock:
                if pending in self._pending:
                    self._pending.remove(pending)
            raise TrackerError(
                f"no reply from the GazePoint server to {tag} {ident} within {self.timeout_s:.1f} s"
            )
        rtag, rattrs = pending.reply
        if rtag == "NACK":
            if check:
                raise TrackerError(f"the GazePoint server refused {tag} {ident} (NACK)")
            return {}
        return rattrs

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            sock = self._sock
            buf = bytearray()
            skipping = False  # inside an over-long line: drop bytes up to its newline
            fault: tuple[str, float] | None = None
            try:
                while sock is not None and not self._closing.is_set():
                    fault = self._watch()
                    if fault is not None:
                        break
                    readable, _, _ = select.select([sock], [], [], _WATCH_PERIOD_S)
                    if not readable:
                        continue
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    self._mark_rx()
                    start = 0
                    while True:
                        nl = chunk.find(b"\n", start)
                        piece = chunk[start:] if nl < 0 else chunk[start:nl]
                        if not skipping:
                            buf += piece
                            if len(buf) > self.max_line_bytes:
                                self.stats.oversized_lines += 1
                                self.stats.invalid_messages += 1
                                buf.clear()
                                skipping = True
                        if nl < 0:
                            break
                        if not skipping:
                            self.handle_line(bytes(buf))
                        buf.clear()
                        skipping = False
                        start = nl + 1
            except (OSError, ValueError):  # ValueError: select() on a socket closed under us
                pass
            if buf.strip():
                self.stats.invalid_messages += 1  # truncated last line
            if self._closing.is_set():
                return
            self._on_disconnect(*(fault or ("connection lost", self.clock())))

    def _mark_rx(self) -> None:
        self._last_rx_mono = time.monotonic()
        self._last_rx_s = self.clock()
        self._probe_mono = None

    def _watch(self) -> tuple[str, float] | None:
        """The reader's watchdog while records are on: probe a quiet server, give up on a
        frozen one (returns the fault: reason and the local time of the last byte), and
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
            self._send(data)
        except TrackerError as exc:  # the link is broken: the reader notices at its next turn
            self.last_error = str(exc)

    def _on_disconnect(self, reason: str = "connection lost", lost_at: float | None = None) -> None:
        lost_at = self.clock() if lost_at is None else lost_at
        if self._records_quiet_since is not None:  # one gap from the last record on
            lost_at = min(lost_at, self._records_quiet_since)
            self._records_quiet_since = None
        self.last_error = reason
        self._connected.clear()
        old, self._sock = self._sock, None
        if old is not None:
            try:
                old.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            old.close()
        with self._lock:
            for p in self._pending:
                p.event.set()
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
        self._last_cnt = None
        self._gap_end_s = self.clock()
        self._stream_since_mono = time.monotonic()
        self.gap_log.record(Gap(start_s=lost_at, end_s=self._gap_end_s, reason=reason))
        if self._streaming:
            # Re-enable without waiting: the ACKs arrive on this very thread (and records
            # that do not follow are re-enabled by the watchdog).
            try:
                for ident in DATA_FIELDS:
                    self._send(element("SET", ident, STATE=1))
                self._send(element("SET", "ENABLE_SEND_DATA", STATE=1))
            except TrackerError:
                pass

    def handle_line(self, line: bytes | str) -> None:
        """Process one received line (public so transcripts can be replayed through it)."""
        now = self.clock()
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        text = text.strip()
        if self.transcript is not None:
            self.transcript.write(f"{now!r} < {text}\n")
        if not text:
            return  # a bare CR/LF between records
        try:
            tag, attrs = parse_line(text)
        except OpenGazeError:
            self.stats.invalid_messages += 1
            return
        if tag == "REC":
            self._on_record(attrs, now)
        elif tag in ("ACK", "NACK"):
            ident = attrs.get("ID", "")
            with self._lock:
                match = next((p for p in self._pending if p.ident == ident), None)
                if match is None:
                    return  # an ACK nobody waits for (re-enable after reconnect, timeouts)
                self._pending.remove(match)
            match.reply = (tag, attrs)
            match.event.set()
        elif tag == "CAL":
            try:
                self._cal_events.put_nowait(attrs)
            except queue.Full:
                self.stats.invalid_messages += 1
        else:
            self.stats.invalid_messages += 1

    def _on_record(self, attrs: dict[str, str], now: float) -> None:
        try:
            sample = parse_record(
                attrs, local_s=now, screen_px=self.screen_px, time_offset_ms=self._time_offset_ms
            )
            cnt = int(attrs["CNT"]) if "CNT" in attrs else None
        except (OpenGazeError, ValueError):
            self.stats.invalid_messages += 1
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
            self.gap_log.record(Gap(start, now, f"no data records for {now - start:.1f} s; "
                                    "the server answered"))  # fmt: skip
        with self._lock:
            if self._samples.maxlen is not None and len(self._samples) == self._samples.maxlen:
                self.stats.samples_dropped += 1
            self._samples.append(sample)


@register_tracker("gazepoint", "a GazePoint tracker (Open Gaze API, XML over TCP, port 4242)",
                  args="address", manufacturer="Gazepoint", model="Open Gaze API tracker")  # fmt: skip
def open_gazepoint(request: TrackerRequest) -> OpenTracker:
    tracker = GazePointTracker(request.host, request.port or DEFAULT_PORT, clock=request.clock,
                               screen_px=request.screen_px, geometry=request.geometry)  # fmt: skip
    tracker.connect()
    return OpenTracker(tracker)
