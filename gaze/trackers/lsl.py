"""Lab Streaming Layer inlet for gaze streams (issue #19; DESIGN "Hardware behind protocols").

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

Calibration is the vendor's, done outside gazelab; :meth:`LSLTracker.calibrate`
reports that with NaN accuracies and gazelab's validation pass measures the
accuracy through the stream (SPEC §2).
"""

from __future__ import annotations

import collections
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gazelab.errors import GazelabError
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
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker

SPEC_PREFIX = "lsl"
SPEC_PROPERTIES = ("type", "name", "source_id")
UNITS = ("pixels", "normalized")
_UNIT_ALIASES = {
    "pixels": "pixels",
    "pixel": "pixels",
    "px": "pixels",
    "normalized": "normalized",
    "normalised": "normalized",
    "norm": "normalized",
}
# Channel types of the XDF/LSL gaze meta-data; per-eye variants are given by the
# channel's <eye> element or folded into the type ("LeftScreenX", "ScreenXRight").
_SCREEN_TYPE = re.compile(r"^(left|right)?screen([xy])(left|right)?$")
TIME_CORRECTION_STEP_S = 0.001
"""A refreshed ``time_correction()`` replaces the one in use only if it moved by more."""
_MAX_CHANNELS = 1024  # metadata is untrusted input: never walk an unbounded tree
MAX_BUFFER_S = 60
"""Longest inlet buffer, seconds, for streams of a modest rate."""
INLET_SLOT_BYTES = 16
"""liblsl's inlet queue preallocates one 16-byte slot per buffered sample: ``buffer s × rate``."""
MAX_INLET_QUEUE_BYTES = 64 * 2**20
"""Most bytes an inlet's queue may preallocate, whatever rate the stream declares."""
MAX_SAMPLE_BYTES = 2**20
"""Largest sample (channels × value size) accepted; a gaze sample is a few dozen bytes."""
MAX_PULL_BYTES = 4 * 2**20
"""Most sample bytes one ``pull_chunk`` may ask room for."""
MAX_PULL_SAMPLES = 4096
MAX_FUTURE_S = 2.0
"""A sample stamped further ahead of this machine's LSL clock is out of time (dropped)."""
MAX_AGE_MARGIN_S = 30.0
"""A sample older than the inlet buffer plus this margin is out of time too."""
_STRING_VALUE_BYTES = 64  # a guess: liblsl keeps one std::string per value of a string stream
_VALUE_BYTES = {1: 4, 2: 8, 3: _STRING_VALUE_BYTES, 4: 4, 5: 2, 6: 1, 7: 8}
"""Bytes per value of each ``pylsl.cf_*`` channel format (float32, double64, string, int32,
int16, int8, int64)."""
_LIBLSL_CONFIG = """[log]
level = -2
[tuning]
InletBufferReserveMs = 0
InletBufferReserveSamples = 128
"""
# InletBufferReserveMs: liblsl preallocates that many ms of samples per inlet (5 s by
# default: 400 MB for a stream that declares 1 MHz); 0 reserves a fixed 128 samples.


def import_pylsl() -> Any:
    """``pylsl``, with liblsl's start-up INFO lines (config loaded, build) kept out of the
    terminal and no per-rate preallocation of inlet samples: unless ``LSLAPICFG`` names the
    user's own liblsl config, gazelab's (warnings and errors only,
    ``InletBufferReserveMs = 0``) is used."""
    if "LSLAPICFG" not in os.environ:
        uid = getattr(os, "getuid", lambda: 0)()
        cfg = Path(tempfile.gettempdir()) / f"gazelab-liblsl-{uid}-v2.cfg"
        try:
            if not cfg.exists() or cfg.read_text() != _LIBLSL_CONFIG:
                tmp = cfg.with_name(f"{cfg.name}.{os.getpid()}.tmp")
                tmp.write_text(_LIBLSL_CONFIG)
                os.replace(tmp, cfg)
            os.environ["LSLAPICFG"] = str(cfg)
        except OSError:  # an unwritable temp folder: liblsl's own defaults, louder
            pass
    import pylsl

    return pylsl


class LSLSpecError(GazelabError, ValueError):
    """An ``lsl:`` tracker spec or a channel override cannot be understood."""


@dataclass(frozen=True)
class LSLStreamQuery:
    """Which stream to resolve: ``prop`` (``type``, ``name`` or ``source_id``) equal to ``value``."""

    prop: str = "type"
    value: str = "Gaze"

    def describe(self) -> str:
        return f"{self.prop}={self.value!r}"


def parse_lsl_spec(spec: str) -> LSLStreamQuery:
    """Read a tracker spec ``lsl``, ``lsl:type=Gaze``, ``lsl:name=Tobii`` or ``lsl:source_id=...``.

    A bare ``lsl`` (or ``lsl:``) means ``type=Gaze``, the type the gaze
    meta-data convention gives gaze streams.

    Examples
    --------
    >>> parse_lsl_spec("lsl:name=Tobii Pro")
    LSLStreamQuery(prop='name', value='Tobii Pro')
    >>> parse_lsl_spec("lsl")
    LSLStreamQuery(prop='type', value='Gaze')
    """
    text = spec.strip()
    head, sep, rest = text.partition(":")
    if head.strip().lower() != SPEC_PREFIX:
        raise LSLSpecError(
            f"tracker spec {spec!r} is not an LSL spec; write lsl:type=Gaze or lsl:name=<stream name>"
        )
    rest = rest.strip()
    if not sep or not rest:
        return LSLStreamQuery()
    prop, eq, value = rest.partition("=")
    prop, value = prop.strip().lower(), value.strip()
    if not eq or prop not in SPEC_PROPERTIES or not value:
        raise LSLSpecError(
            f"tracker spec {spec!r}: expected lsl:<property>=<value> with property one of "
            f"{', '.join(SPEC_PROPERTIES)} (e.g. lsl:type=Gaze, lsl:name=Tobii)"
        )
    if any(ord(c) < 32 for c in value) or len(value) > 256:
        raise LSLSpecError(
            f"tracker spec {spec!r}: the stream {prop} holds control characters or is too long"
        )
    return LSLStreamQuery(prop, value)


@dataclass(frozen=True)
class ChannelMeta:
    """One channel's description (``desc/channels/channel``); empty strings where absent."""

    label: str = ""
    type: str = ""
    unit: str = ""
    eye: str = ""


@dataclass(frozen=True)
class GazeChannelMap:
    """Where x/y are in a sample row and how to turn them into screen pixels.

    Attributes
    ----------
    x, y : tuple of int
        Channel indices whose (NaN-ignoring) mean is the gaze x / y: one index for a
        binocular or single-eye channel, two (left, right) when only per-eye
        channels exist.
    unit : str
        ``"pixels"`` (screen px) or ``"normalized"`` (fraction of the screen,
        (0, 0) top left, (1, 1) bottom right).
    left, right : (int, int) or None
        Per-eye x/y channel indices, when the stream has them.
    """

    x: tuple[int, ...]
    y: tuple[int, ...]
    unit: str
    left: tuple[int, int] | None = None
    right: tuple[int, int] | None = None


def _norm_unit(unit: str, where: str) -> str:
    key = unit.strip().lower()
    if key not in _UNIT_ALIASES:
        raise LSLSpecError(
            f"{where}: unit {unit!r} is not a screen unit; gazelab reads 'pixels' or 'normalized' "
            "(set the tracker's unit override if the stream's metadata is wrong)"
        )
    return _UNIT_ALIASES[key]


def gaze_channel_map(
    channels: Sequence[ChannelMeta],
    channel_count: int,
    *,
    x_channel: int | None = None,
    y_channel: int | None = None,
    unit: str | None = None,
) -> GazeChannelMap:
    """Find the screen x/y channels of a gaze stream (XDF/LSL gaze meta-data).

    Channels of type ``ScreenX`` / ``ScreenY`` (case-insensitive) are used: a
    binocular pair (``eye`` absent or ``both``) first, else the mean of the
    left and right pairs, else the one eye present. ``unit`` is the channels'
    ``<unit>`` (``pixels`` or ``normalized``).

    Overrides beat the metadata: ``x_channel`` / ``y_channel`` (0-based
    indices) and ``unit``. Without metadata both indices and the unit must be
    given.

    Raises
    ------
    LSLSpecError
        No usable x/y channels or unit, with what to set to fix it.
    """
    if (x_channel is None) != (y_channel is None):
        raise LSLSpecError("give both x and y channel overrides, or neither")
    for name, idx in (("x", x_channel), ("y", y_channel)):
        if idx is not None and not 0 <= idx < channel_count:
            raise LSLSpecError(
                f"{name} channel override {idx} is outside the stream's {channel_count} channels "
                f"(0..{channel_count - 1})"
            )
    pairs: dict[str, dict[str, int]] = {}
    units: dict[int, str] = {}
    for i, ch in enumerate(channels[:channel_count]):
        m = _SCREEN_TYPE.match(ch.type.strip().lower().replace("_", ""))
        if m is None:
            continue
        eye = (m.group(1) or m.group(3) or ch.eye.strip().lower() or "both").lower()
        eye = {"binocular": "both", "l": "left", "r": "right"}.get(eye, eye)
        pairs.setdefault(eye, {}).setdefault(m.group(2), i)
        units[i] = ch.unit
    left = (pairs["left"]["x"], pairs["left"]["y"]) if len(pairs.get("left", {})) == 2 else None
    right = (pairs["right"]["x"], pairs["right"]["y"]) if len(pairs.get("right", {})) == 2 else None

    if x_channel is not None and y_channel is not None:
        xs: tuple[int, ...] = (x_channel,)
        ys: tuple[int, ...] = (y_channel,)
    elif len(pairs.get("both", {})) == 2:
        xs, ys = (pairs["both"]["x"],), (pairs["both"]["y"],)
    elif left is not None and right is not None:
        xs, ys = (left[0], right[0]), (left[1], right[1])
    elif left is not None or right is not None:
        eye_xy = left if left is not None else right
        assert eye_xy is not None
        xs, ys = (eye_xy[0],), (eye_xy[1],)
    else:
        raise LSLSpecError(
            "the LSL stream's metadata names no ScreenX/ScreenY channels "
            "(desc/channels/channel/type); give the x and y channel indices and the unit "
            "(pixels or normalized) as tracker overrides"
        )
    if unit is not None:
        resolved = _norm_unit(unit, "unit override")
    else:
        found = {units.get(i, "") for i in xs + ys}
        if found == {""} or "" in found:
            raise LSLSpecError(
                "the LSL stream's ScreenX/ScreenY channels carry no <unit>; give the unit "
                "(pixels or normalized) as a tracker override"
            )
        normed = {_norm_unit(u, f"channel unit {u!r}") for u in found}
        if len(normed) != 1:
            raise LSLSpecError(
                f"the stream's x/y channels disagree on the unit ({sorted(found)}); "
                "give the unit as a tracker override"
            )
        resolved = normed.pop()
    return GazeChannelMap(x=xs, y=ys, unit=resolved, left=left, right=right)


def channel_meta(info: Any) -> list[ChannelMeta]:
    """Read ``desc/channels/channel`` (label, type, unit, eye) of a ``pylsl.StreamInfo``."""
    out: list[ChannelMeta] = []
    channels = info.desc().child("channels")
    if channels.empty():
        return out
    ch = channels.child("channel")
    limit = min(int(info.channel_count()), _MAX_CHANNELS)
    while not ch.empty() and len(out) < limit:
        out.append(
            ChannelMeta(
                label=ch.child_value("label"),
                type=ch.child_value("type"),
                unit=ch.child_value("unit"),
                eye=ch.child_value("eye"),
            )
        )
        ch = ch.next_sibling("channel")
    return out


def to_screen_px(
    data: np.ndarray, cmap: GazeChannelMap, screen_px: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gaze x/y and per-eye x/y, screen px, of an ``(N, C)`` chunk.

    Returns ``(xy, left_xy, right_xy)`` as ``(N, 2)`` float64 arrays (``None`` for an
    eye the stream lacks), with NaN where the stream says nothing.
    """
    arr = np.asarray(data, dtype=np.float64)
    scale = (
        np.array(screen_px, dtype=np.float64)
        if cmap.unit == "normalized"
        else np.ones(2, dtype=np.float64)
    )

    def mean_of(cols: tuple[int, ...]) -> np.ndarray:
        block = arr[:, list(cols)]
        if block.shape[1] == 1:
            return block[:, 0]
        # One eye lost: the other eye's position, as Best-POG style averages do.
        with np.errstate(invalid="ignore"):
            cnt = np.sum(np.isfinite(block), axis=1)
            tot = np.nansum(block, axis=1)
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)

    xy = np.column_stack([mean_of(cmap.x), mean_of(cmap.y)]) * scale
    left = arr[:, list(cmap.left)] * scale if cmap.left is not None else None
    right = arr[:, list(cmap.right)] * scale if cmap.right is not None else None
    return xy, left, right


def dropped_between(timestamps: np.ndarray, last_ts: float | None, srate: float) -> int:
    """Samples missing from ``timestamps`` (s), given the previous one and the nominal rate (Hz).

    A step longer than 1.5 nominal periods means ``round(step * srate) - 1``
    samples were lost; irregular streams (``srate <= 0``) never count drops.
    """
    if srate <= 0 or len(timestamps) == 0:
        return 0
    ts = np.asarray(timestamps, dtype=np.float64)
    if last_ts is not None:
        ts = np.concatenate([[last_ts], ts])
    steps = np.diff(ts) * srate
    big = steps[steps > 1.5]
    return int(np.sum(np.rint(big) - 1)) if big.size else 0


def inlet_buffer_s(nominal_srate: float, channel_count: int, channel_format: int) -> int:
    """Seconds of samples an inlet may buffer (liblsl's ``max_buflen``), so its queue stays
    under :data:`MAX_INLET_QUEUE_BYTES` whatever the stream declares.

    liblsl gives an inlet ``max_buflen × nominal_srate`` queue slots (``max_buflen × 100``
    for an irregular stream), :data:`INLET_SLOT_BYTES` each, allocated up front; the
    samples in them are the stream's own data.

    Raises
    ------
    TrackerError
        A declared rate so high that one second of queue is over the limit, or samples
        over :data:`MAX_SAMPLE_BYTES`.
    """
    value_bytes = _VALUE_BYTES.get(int(channel_format), 8)
    sample_bytes = max(1, int(channel_count)) * value_bytes
    if channel_count < 1 or sample_bytes > MAX_SAMPLE_BYTES:
        raise TrackerError(
            f"the LSL stream declares {channel_count} channels ({sample_bytes} bytes a "
            f"sample, over {MAX_SAMPLE_BYTES}); a gaze stream has a few: check the stream"
        )
    if not math.isfinite(nominal_srate) or nominal_srate < 0:
        raise TrackerError(f"the LSL stream declares a rate of {nominal_srate!r} Hz")
    if nominal_srate == 0:  # irregular: 100 slots per unit
        return MAX_BUFFER_S
    fit = MAX_INLET_QUEUE_BYTES / (INLET_SLOT_BYTES * nominal_srate)
    if fit < 1:
        raise TrackerError(
            f"the LSL stream declares {nominal_srate:g} Hz: one second of its samples would "
            f"need {INLET_SLOT_BYTES * nominal_srate / 2**20:.0f} MiB of inlet queue (limit "
            f"{MAX_INLET_QUEUE_BYTES / 2**20:.0f} MiB); no eye tracker samples that fast, "
            "so check the stream's nominal rate"
        )
    return int(min(MAX_BUFFER_S, fit))


def pull_max_samples(channel_count: int, channel_format: int) -> int:
    """Samples one ``pull_chunk`` asks for: at most :data:`MAX_PULL_SAMPLES`, and room for
    at most :data:`MAX_PULL_BYTES` (pylsl allocates ``max_samples × channels`` values)."""
    sample_bytes = max(1, int(channel_count)) * _VALUE_BYTES.get(int(channel_format), 8)
    return int(max(1, min(MAX_PULL_SAMPLES, MAX_PULL_BYTES // sample_bytes)))


def numeric_rows(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """An ``(N, C)`` chunk as float64 and a mask of the rows holding a value that is not a
    number (a string stream's ``"abc"``, bytes that are not text); those values are NaN.

    Numeric streams pass through; a string stream's values (bytes or str) are parsed one
    by one, so one malformed value spoils one sample, never the chunk.
    """
    arr = np.asarray(data)
    if arr.dtype.kind in "fiub":
        out = arr.astype(np.float64, copy=False)
        return out.reshape(len(out), -1), np.zeros(len(out), dtype=bool)
    rows = arr.reshape(len(arr), -1) if arr.size else np.zeros((len(arr), 0), dtype=object)
    out = np.full(rows.shape, np.nan, dtype=np.float64)
    bad = np.zeros(len(rows), dtype=bool)
    for (i, j), v in np.ndenumerate(rows):
        try:
            out[i, j] = float(v)
        except (TypeError, ValueError, OverflowError):
            bad[i] = True
    return out, bad


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
