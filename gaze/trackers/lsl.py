"""Lab Streaming Layer inlet for gaze streams (docs/architecture.md#rules-of-the-house).

Most of today's trackers (Tobii, EyeLink, Pupil Labs, SMI, ...) publish gaze
on the Lab Streaming Layer through the vendors' or the community's LSL apps.
:class:`LSLTracker` resolves such a stream by ``type`` / ``name`` /
``source_id`` (:func:`parse_lsl_spec` reads ``lsl:type=Gaze``), maps its
channels to screen x/y following the XDF/LSL *Gaze* meta-data convention
(:func:`gaze_channel_map`), and turns chunks into :class:`GazeSample` records:

- tracker clock: the LSL timestamp plus the inlet's ``time_correction()``
  (the outlet's clock mapped onto this machine's LSL clock), in ms; the
  correction is re-read every 5 s and adopted when it moved by over 1 ms;
- ``local_s``: the session's monotonic clock when the chunk was pulled;
- lost samples: timestamp steps over ``1.5 / nominal_srate`` count the
  missing periods (:attr:`LSLStats.samples_lost`);
- stream loss (``LostError`` from the inlet, or no data for many nominal
  periods while the stream no longer resolves): ``connected`` turns false,
  and when a stream with the same ``source_id`` (or, without one, the same
  name) is back, the inlet is rebuilt and the period is recorded as a
  :class:`~gazelab.gaze.trackers.eyetribe.Gap`.

The stream's description (spec, channel map, conversion to pixels, inlet sizing) is
:mod:`gazelab.gaze.trackers.lsl_stream`; its names are importable from here too.

Calibration is the vendor's, done outside gazelab; :meth:`LSLTracker.calibrate`
reports that with NaN accuracies and gazelab's validation pass measures the
accuracy through the stream (docs/running-a-session.md#the-protocol).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gazelab.gaze.trackers.base import (
    STATE_OK,
    STATE_TRACKING_FAIL,
    STATE_TRACKING_PRESENCE,
    CalibrationResult,
    Gap,
    GapLog,
    GazeSample,
    TrackerClient,
    TrackerError,
    TrackerStats,
    sample_is_valid,
)
from gazelab.gaze.trackers.lsl_stream import (
    INLET_SLOT_BYTES,
    MAX_AGE_MARGIN_S,
    MAX_BUFFER_S,
    MAX_FUTURE_S,
    MAX_INLET_QUEUE_BYTES,
    MAX_PULL_BYTES,
    MAX_PULL_SAMPLES,
    MAX_SAMPLE_BYTES,
    SPEC_PREFIX,
    SPEC_PROPERTIES,
    TIME_CORRECTION_STEP_S,
    UNITS,
    ChannelMeta,
    GazeChannelMap,
    LSLSpecError,
    LSLStreamQuery,
    _norm_unit,
    channel_meta,
    dropped_between,
    gaze_channel_map,
    import_pylsl,
    inlet_buffer_s,
    numeric_rows,
    parse_lsl_spec,
    pull_max_samples,
    to_screen_px,
)
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker


@dataclass
class LSLStats(TrackerStats):
    """:class:`TrackerStats` (``frames`` = samples received) plus the LSL-specific counts."""

    chunks: int = 0
    samples_lost: int = 0
    """Samples missing from the stream: timestamp steps over 1.5 nominal periods."""
    invalid_samples: int = 0
    """Samples with NaN or off-screen gaze (kept, with ``valid=False``)."""
    out_of_time: int = 0
    """Samples stamped over :data:`MAX_FUTURE_S` ahead of this machine's LSL clock, or older
    than the inlet's buffer (dropped: their time says nothing)."""


class LSLTracker(TrackerClient):
    """Gaze from a Lab Streaming Layer stream; a :class:`~gazelab.gaze.trackers.base.Tracker`.

    Parameters
    ----------
    query : LSLStreamQuery or str, optional
        The stream to resolve, or a spec string (``lsl:type=Gaze``); default ``type=Gaze``.
    screen_px : (int, int)
        Display resolution, pixels: normalised coordinates are scaled by it and
        off-screen samples are invalid.
    x_channel, y_channel, unit : overrides of the stream's channel metadata
        (0-based channel indices; ``"pixels"`` or ``"normalized"``).
    clock : the session's monotonic clock, seconds.
    resolve_timeout_s : how long :meth:`connect` looks for the stream.
    stall_periods : no data for this many nominal periods (at least 1 s) makes the
        tracker check whether the stream still resolves; if not, it is lost.
    max_buffer : samples kept for :meth:`drain`; older ones are dropped and counted.
    reconnect : look for the stream again after a loss.
    on_gap : called (from the reader thread) with each recorded :class:`Gap`.
    """

    def __init__(
        self,
        query: LSLStreamQuery | str | None = None,
        *,
        screen_px: tuple[int, int] = (2560, 1440),
        x_channel: int | None = None,
        y_channel: int | None = None,
        unit: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        resolve_timeout_s: float = 5.0,
        stall_periods: int = 50,
        max_buffer: int = 120_000,
        reconnect: bool = True,
        on_gap: Callable[[Gap], None] | None = None,
    ) -> None:
        if query is None:
            query = LSLStreamQuery()
        self.query = parse_lsl_spec(query) if isinstance(query, str) else query
        self.screen_px = screen_px
        self.x_channel, self.y_channel, self.unit = x_channel, y_channel, unit
        if unit is not None:
            _norm_unit(unit, "unit override")
        self.clock = clock
        self.resolve_timeout_s = resolve_timeout_s
        self.stall_periods = stall_periods
        self.reconnect = reconnect
        self.stats = LSLStats()
        self.gap_log = GapLog(self.stats, on_gap)
        self.gaps = self.gap_log.gaps
        """The latest gaps (:class:`~gazelab.gaze.trackers.base.GapLog` keeps 1000)."""
        self.lost_since: float | None = None
        """Local time the stream was last heard from, while it is lost; else ``None``."""
        self.stalled_since: float | None = None
        """Local time of the last data while a stream that still resolves sends none."""
        self.last_error = ""
        self._lost_reason = ""
        self.calibration: CalibrationResult | None = None
        self.name = ""
        self.source_id = ""
        self.stream_type = ""
        self.nominal_srate = 0.0
        self.channel_map: GazeChannelMap | None = None
        self.time_correction_s = 0.0
        self._samples: collections.deque[GazeSample] = collections.deque(maxlen=max_buffer)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connected = threading.Event()
        self._running = False
        self._opened = False
        self._inlet: Any = None
        self._reader: threading.Thread | None = None
        self._last_ts: float | None = None
        self._last_time_ms = -math.inf
        self._last_data_s = 0.0
        self._tc_at = -math.inf
        self._buffer_s = MAX_BUFFER_S
        self._pull_samples = MAX_PULL_SAMPLES

    # -- Tracker interface -----------------------------------------------------------------
    def connect(self) -> None:
        """Resolve the stream, read its metadata and clock offset, and create the inlet.

        Raises
        ------
        TrackerError
            No stream matching the query within ``resolve_timeout_s``.
        LSLSpecError
            The stream's channels cannot be mapped to screen x/y.
        """
        pylsl = import_pylsl()

        found = pylsl.resolve_byprop(
            self.query.prop, self.query.value, minimum=1, timeout=self.resolve_timeout_s
        )
        if not found:
            raise TrackerError(
                f"no LSL stream with {self.query.describe()} found within "
                f"{self.resolve_timeout_s:.1f} s; is the tracker's LSL app streaming on this "
                "network (check with an LSL viewer), and is the name/type spelled as it shows?"
            )
        self._open(found[0], self.resolve_timeout_s)

    def start(self) -> None:
        """Open the data stream and keep the samples that arrive from now on (until :meth:`stop`).

        The reader thread starts here; it watches for loss and reconnects until :meth:`close`.
        """
        if self._inlet is not None and not self._opened:
            self._inlet.open_stream(timeout=self.resolve_timeout_s)
            self._opened = True
        self._running = True
        if self._reader is None:
            self._reader = threading.Thread(target=self._read_loop, name="lsl-reader", daemon=True)
            self._reader.start()

    def stop(self) -> None:
        self._running = False

    def drain(self) -> list[GazeSample]:
        with self._lock:
            out = list(self._samples)
            self._samples.clear()
        return out

    def calibrate(
        self,
        points_xy: list[tuple[float, float]],
        *,
        dwell_s: float = 0.75,
        on_point: Callable[[int, tuple[float, float]], None] | None = None,
    ) -> CalibrationResult:
        """Report the vendor's calibration: done outside gazelab, accuracy unknown here.

        LSL carries gaze, not calibration commands: the tracker is calibrated in
        its own software. This returns ``result=True`` with NaN degrees and no
        points; gazelab's validation pass (targets shown, gaze measured through
        the stream) measures the accuracy.
        """
        self.calibration = CalibrationResult(
            result=True, deg=math.nan, degl=math.nan, degr=math.nan, points=()
        )
        return self.calibration

    def close(self) -> None:
        self._closing.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=3.0)
        if self.lost_since is not None:
            self._record_gap(self.lost_since, f"{self._lost_reason}; not back before close")
        elif self.stalled_since is not None:
            self._record_gap(self.stalled_since, "no data until close; the stream stayed")
            self.stalled_since = None
        self._inlet = None
        self._connected.clear()

    # -- internals -------------------------------------------------------------------------
    def _open(self, info: Any, timeout_s: float) -> None:
        """Build the inlet for a resolved stream and map its channels."""
        pylsl = import_pylsl()

        # The declared rate and channels size liblsl's buffers: bound them by bytes first.
        buffer_s = inlet_buffer_s(
            float(info.nominal_srate()), int(info.channel_count()), int(info.channel_format())
        )
        # recover=False: a vanished outlet raises LostError at once, so the gap is
        # ours to record; liblsl's silent recovery would hide it.
        inlet = pylsl.StreamInlet(info, max_buflen=buffer_s, recover=False)
        self._buffer_s = buffer_s
        self._pull_samples = pull_max_samples(int(info.channel_count()), int(info.channel_format()))
        full = inlet.info(timeout=timeout_s)  # the resolve reply has no <desc>
        cmap = gaze_channel_map(
            channel_meta(full),
            int(full.channel_count()),
            x_channel=self.x_channel,
            y_channel=self.y_channel,
            unit=self.unit,
        )
        # Data flows (and an outlet sees a consumer) only from start() on; after a
        # reconnect it flows at once.
        self._opened = self._reader is not None
        if self._opened:
            inlet.open_stream(timeout=timeout_s)
        self.channel_map = cmap
        self.name, self.source_id = full.name(), full.source_id()
        self.stream_type = full.type()
        self.nominal_srate = float(full.nominal_srate())
        self.time_correction_s = float(inlet.time_correction(timeout=timeout_s))
        self._tc_at = self.clock()
        self._inlet = inlet
        self._last_ts = None
        self._last_data_s = self.clock()
        self._connected.set()

    def _stall_s(self) -> float:
        if self.nominal_srate <= 0:
            return 5.0
        return max(1.0, self.stall_periods / self.nominal_srate)

    def _read_loop(self) -> None:
        pylsl = import_pylsl()
        from pylsl.util import LostError

        while not self._closing.is_set():
            try:
                self._read_once(pylsl, LostError)
            except Exception as exc:  # whatever went wrong, the reader goes on: a gap, reconnect
                if self._closing.is_set():
                    return
                self.stats.reader_faults += 1
                self._on_lost(f"the reader failed ({_describe(exc)})")
                self._closing.wait(0.1)

    def _read_once(self, pylsl: Any, lost_error: type[Exception]) -> None:
        """One turn of the reader: pull a chunk and ingest it, or watch for a stall/loss."""
        inlet = self._inlet
        if inlet is None:
            self._try_reconnect()
            return
        try:
            data, ts = inlet.pull_chunk(timeout=0.02, max_samples=self._pull_samples, as_numpy=True)
        except lost_error:
            self._on_lost("stream lost")
            return
        now = self.clock()
        if len(ts):
            if self.stalled_since is not None:
                quiet_s = now - self.stalled_since
                self._record_gap(
                    self.stalled_since, f"no data for {quiet_s:.1f} s; the stream stayed"
                )
                self.stalled_since = None
            self._ingest(data, ts, now, lsl_now=float(pylsl.local_clock()))
            return
        if now - self._last_data_s > self._stall_s() and self.stalled_since is None:
            if self._still_there():
                # A tracker app that stopped sending but kept its outlet: the samples
                # it skips show as lost (timestamps jump) and the silence as a gap.
                self.stalled_since = self._last_data_s
            else:
                self._on_lost("no data and the stream no longer resolves")

    def _ingest(self, data: Any, ts: Any, now: float, *, lsl_now: float | None = None) -> None:
        """Turn one pulled chunk into samples.

        ``lsl_now`` is this machine's LSL clock at the pull, s: samples stamped over
        :data:`MAX_FUTURE_S` after it (or older than the buffer) are dropped and counted in
        ``stats.out_of_time``; one wild stamp must not move the tracker clock (kept
        monotonic) days ahead of every later sample.
        """
        assert self.channel_map is not None
        if now - self._tc_at > 5.0:  # the clock offset drifts slowly; refresh it now and then
            try:
                tc = float(self._inlet.time_correction(timeout=0.5))
            except Exception:  # a timeout keeps the previous estimate
                tc = self.time_correction_s
            # Adopt only real drift: the estimate's own noise (tens of µs) would jitter
            # the tracker clock, and fixation durations with it.
            if abs(tc - self.time_correction_s) > TIME_CORRECTION_STEP_S:
                self.time_correction_s = tc
            self._tc_at = now
        stamps = np.asarray(ts, dtype=np.float64).reshape(-1)
        values, malformed = numeric_rows(data)
        self._last_data_s = now
        self.stats.chunks += 1
        self.stats.frames += len(stamps)
        local = stamps + self.time_correction_s
        in_time = np.isfinite(local)
        if lsl_now is not None:
            oldest = lsl_now - self._buffer_s - MAX_AGE_MARGIN_S
            with np.errstate(invalid="ignore"):
                in_time &= (local <= lsl_now + MAX_FUTURE_S) & (local >= oldest)
        if not in_time.all():
            n_out = int(np.sum(~in_time))
            self.stats.out_of_time += n_out
            self.stats.invalid_messages += n_out
            bad_s = float(local[~in_time][0]) - (lsl_now or 0.0)
            self.stats.last_invalid = (
                f"a sample stamped {bad_s:+.3g} s from this machine's LSL clock (dropped)"
            )
            stamps, values, malformed = stamps[in_time], values[in_time], malformed[in_time]
            if not len(stamps):
                return
        if malformed.any():
            self.stats.invalid_messages += int(malformed.sum())
            self.stats.last_invalid = "a sample value that is not a number (kept as invalid)"
        self.stats.samples_lost += dropped_between(stamps, self._last_ts, self.nominal_srate)
        self._last_ts = float(stamps[-1])
        xy, left, right = to_screen_px(values, self.channel_map, self.screen_px)
        t_ms = (stamps + self.time_correction_s) * 1000.0
        out: list[GazeSample] = []
        for i in range(len(stamps)):
            x, y = float(xy[i, 0]), float(xy[i, 1])
            # A refreshed time correction must not let the tracker clock run backwards.
            t = max(float(t_ms[i]), self._last_time_ms)
            self._last_time_ms = t
            state = (
                STATE_OK
                if math.isfinite(x) and math.isfinite(y)
                else (STATE_TRACKING_FAIL | STATE_TRACKING_PRESENCE)
            )
            valid = sample_is_valid(state, x, y, self.screen_px)
            if not valid:
                self.stats.invalid_samples += 1
            out.append(
                GazeSample(
                    time_ms=t,
                    local_s=now,
                    x=x,
                    y=y,
                    state=state,
                    valid=valid,
                    left_x=float(left[i, 0]) if left is not None else math.nan,
                    left_y=float(left[i, 1]) if left is not None else math.nan,
                    right_x=float(right[i, 0]) if right is not None else math.nan,
                    right_y=float(right[i, 1]) if right is not None else math.nan,
                )
            )
        if not self._running:
            return
        with self._lock:
            maxlen = self._samples.maxlen or 0
            over = len(self._samples) + len(out) - maxlen
            if maxlen and over > 0:
                self.stats.samples_dropped += over
            self._samples.extend(out)

    def _resolve_same(self, timeout_s: float) -> Any | None:
        """The stream we had (same source_id, or same name and type without one), if it resolves."""
        pylsl = import_pylsl()

        prop, value = ("source_id", self.source_id) if self.source_id else ("name", self.name)
        for info in pylsl.resolve_byprop(prop, value, minimum=1, timeout=timeout_s):
            if info.name() == self.name and info.type() == self.stream_type:
                return info
        return None

    def _still_there(self) -> bool:
        try:
            return self._resolve_same(0.5) is not None
        except Exception:  # a failing resolver says nothing about the stream
            return True

    def _on_lost(self, reason: str) -> None:
        self.stalled_since = None
        self._connected.clear()
        self._inlet = None
        self.lost_since = self._last_data_s
        self.last_error = self._lost_reason = reason
        if not self.reconnect:
            self._closing.set()

    def _try_reconnect(self) -> None:
        try:
            info = self._resolve_same(0.3)
        except Exception as exc:  # keep trying until closed
            self.last_error = f"resolving the stream failed: {exc}"
            info = None
        if info is None:
            self._closing.wait(0.1)
            return
        try:
            # Short timeouts: just after a loss the resolver may still answer with
            # the vanished outlet, whose inlet then fails; the next round finds the new one.
            self._open(info, 1.0)
        except Exception as exc:  # stale answer, or back with other channels
            self.last_error = f"the stream resolved but cannot be opened: {exc}"
            self._inlet = None
            self._connected.clear()
            self._closing.wait(0.1)
            return
        self.stats.reconnects += 1
        assert self.lost_since is not None
        self._record_gap(self.lost_since, self._lost_reason)

    def _record_gap(self, start_s: float, reason: str) -> None:
        self.lost_since = None
        self.gap_log.record(Gap(start_s=start_s, end_s=self.clock(), reason=reason))


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, short enough for one line on screen."""
    text = str(exc)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@register_tracker("lsl", "a gaze stream on the Lab Streaming Layer (vendors' LSL apps)",
                  args="stream", manufacturer="Lab Streaming Layer",
                  model="LSL gaze stream")  # fmt: skip
def open_lsl(request: TrackerRequest) -> OpenTracker:
    tracker = LSLTracker(f"lsl:{request.stream}" if request.stream else None,
                         screen_px=request.screen_px, clock=request.clock)  # fmt: skip
    tracker.connect()
    return OpenTracker(tracker)


__all__ = [
    "ChannelMeta",
    "GazeChannelMap",
    "INLET_SLOT_BYTES",
    "LSLSpecError",
    "LSLStats",
    "LSLStreamQuery",
    "LSLTracker",
    "MAX_AGE_MARGIN_S",
    "MAX_BUFFER_S",
    "MAX_FUTURE_S",
    "MAX_INLET_QUEUE_BYTES",
    "MAX_PULL_BYTES",
    "MAX_PULL_SAMPLES",
    "MAX_SAMPLE_BYTES",
    "SPEC_PREFIX",
    "SPEC_PROPERTIES",
    "TIME_CORRECTION_STEP_S",
    "UNITS",
    "channel_meta",
    "dropped_between",
    "gaze_channel_map",
    "import_pylsl",
    "inlet_buffer_s",
    "numeric_rows",
    "open_lsl",
    "parse_lsl_spec",
    "pull_max_samples",
    "to_screen_px",
]
