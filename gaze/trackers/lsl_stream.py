"""A Lab Streaming Layer gaze stream as data: which stream an ``lsl:`` spec names
(:func:`parse_lsl_spec`), which channels hold screen x/y in the XDF/LSL *Gaze* meta-data
convention (:func:`gaze_channel_map`), how a chunk becomes screen pixels
(:func:`to_screen_px`) and lost samples (:func:`dropped_between`), and how large an inlet
may be whatever the stream declares (:func:`inlet_buffer_s`, :func:`pull_max_samples`:
liblsl preallocates ``buffer s × rate`` 16-byte slots, so the buffer is sized by bytes).

No inlet here: the tracker is :class:`gazelab.gaze.trackers.lsl.LSLTracker`; these names
are importable from :mod:`gazelab.gaze.trackers.lsl` too.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gazelab.errors import GazelabError
from gazelab.gaze.trackers.base import TrackerError

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
