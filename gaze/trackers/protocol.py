"""The Eye Tribe server's TCP JSON protocol: message building and tolerant parsing
(docs/running-a-session.md#the-eye-tribe-protocol).

Messages are JSON objects separated by newlines. Requests carry
``category`` (``tracker`` / ``calibration`` / ``heartbeat``), ``request`` and
``values``; replies add ``statuscode`` (200 ok; 800/801/802 are calibration /
screen / tracker change notifications; others are errors with an optional
``statusmessage``). Pushed frames are tracker ``get`` replies whose values hold
``frame``. Everything here is pure: it never touches a socket.

Received bytes are split into lines by :class:`LineSplitter`, which caps the
length of one line, so a peer that never sends a newline cannot make either
side buffer without limit.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from gazelab.errors import GazelabError
from gazelab.gaze.trackers.base import (
    CalibrationPoint,
    CalibrationResult,
    GazeSample,
    sample_is_valid,
)

PROTOCOL_VERSION = 1
DEFAULT_PORT = 6555
MAX_LINE_BYTES = 64 * 1024
"""Longest message either side accepts; real ones stay under 8 KiB (a 16-point calibresult)."""
STATUS_OK = 200
STATUS_CALIBRATION_CHANGED = 800
STATUS_SCREEN_CHANGED = 801
STATUS_TRACKER_CHANGED = 802
NOTIFICATIONS = (STATUS_CALIBRATION_CHANGED, STATUS_SCREEN_CHANGED, STATUS_TRACKER_CHANGED)

TRACKER_KEYS = (
    "push",
    "heartbeatinterval",
    "version",
    "trackerstate",
    "framerate",
    "iscalibrated",
    "iscalibrating",
    "calibresult",
    "frame",
    "screenindex",
    "screenresw",
    "screenresh",
    "screenpsyw",
    "screenpsyh",
)


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")


class FrameError(GazelabError, ValueError):
    """A pushed frame is malformed; the client counts and skips it."""


class LineSplitter:
    """Splits a received byte stream into newline-terminated lines of bounded length.

    Parameters
    ----------
    max_line_bytes : int
        A line longer than this (without its newline) is dropped whole and
        counted in :attr:`dropped`; at most this many bytes are ever buffered.

    Notes
    -----
    The partial line lives in one ``bytearray`` that grows in place, so a long
    line costs linear time (``bytes += chunk`` would copy it on every chunk).
    Once a line is over the limit, bytes are discarded up to its newline.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes = {max_line_bytes} must be at least 1")
        self.max_line_bytes = max_line_bytes
        self.dropped = 0
        self._partial = bytearray()
        self._skipping = False

    @property
    def pending_bytes(self) -> int:
        """Bytes of the unfinished line held now (never more than ``max_line_bytes``)."""
        return len(self._partial)

    def clear(self) -> None:
        """Forget the unfinished line (a new connection starts clean)."""
        self._partial.clear()
        self._skipping = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add received bytes; return the complete lines they finish, without newlines."""
        lines: list[bytes] = []
        start = 0
        limit = self.max_line_bytes
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                break
            if self._skipping:
                self._skipping = False  # the newline ends the dropped line
            elif len(self._partial) + (nl - start) > limit:
                self.dropped += 1
                self._partial.clear()
            elif self._partial:
                self._partial += chunk[start:nl]
                lines.append(bytes(self._partial))
                self._partial.clear()
            else:
                lines.append(chunk[start:nl])
            start = nl + 1
        rest = len(chunk) - start
        if rest and not self._skipping:
            if len(self._partial) + rest > limit:
                self.dropped += 1
                self._partial.clear()
                self._skipping = True
            else:
                self._partial += memoryview(chunk)[start:]
        return lines


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")


def request(category: str, req: str | None = None, values: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"category": category}
    if req is not None:
        msg["request"] = req
    if values is not None:
        msg["values"] = values
    return msg


def reply(
    category: str,
    req: str | None,
    statuscode: int = STATUS_OK,
    values: Any = None,
    message: str | None = None,
) -> dict[str, Any]:
    msg = request(category, req, values)
    msg["statuscode"] = statuscode
    if message is not None:
        msg["statusmessage"] = message
    return msg


def timestamp_string(epoch_s: float) -> str:
    """Eye Tribe frame timestamp ``YYYY-MM-DD HH:MM:SS.mmm`` (local time)."""
    dt = datetime.fromtimestamp(epoch_s)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def _xy(obj: Any, where: str) -> tuple[float, float]:
    if not isinstance(obj, dict):
        raise FrameError(f"{where} must be an object with x and y")
    x, y = obj.get("x"), obj.get("y")
    if isinstance(x, bool) or isinstance(y, bool):
        raise FrameError(f"{where}.x/.y must be numbers")
    if not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
        raise FrameError(f"{where}.x/.y must be numbers")
    return _to_float(x, f"{where}.x"), _to_float(y, f"{where}.y")


def _to_float(v: int | float, where: str) -> float:
    # A JSON integer has no size limit; float() of one with hundreds of digits overflows.
    try:
        return float(v)
    except OverflowError:
        raise FrameError(
            f"{where} is too large for a number ({int(v).bit_length()} bits)"
        ) from None


def _number(obj: dict[str, Any], key: str, where: str) -> float:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FrameError(f"{where}.{key} must be a number, got {_short(v)}")
    return _to_float(v, f"{where}.{key}")


def _short(v: Any, limit: int = 60) -> str:
    """``repr`` of a received value, cut so an error message stays one short line."""
    try:
        text = repr(v)
    except ValueError:  # an int past Python's digit limit for str()
        return "an integer with too many digits"
    except RecursionError:
        return "a too deeply nested value"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_frame(
    frame: Any, *, local_s: float, screen_px: tuple[int, int] = (2560, 1440)
) -> GazeSample:
    """Turn a pushed ``values.frame`` object into a :class:`GazeSample`.

    Raises :class:`FrameError` for anything malformed (missing keys, wrong types,
    non-finite numbers); the caller counts and skips such frames.
    """
    if not isinstance(frame, dict):
        raise FrameError("frame must be an object")
    t = _number(frame, "time", "frame")
    if not t >= 0:
        raise FrameError(f"frame.time must be a non-negative number of ms, got {_short(t)}")
    state = frame.get("state")
    if isinstance(state, bool) or not isinstance(state, int) or not 0 <= state <= 0xFF:
        raise FrameError(f"frame.state must be an integer of bit flags, got {_short(state)}")
    fix = frame.get("fix")
    if not isinstance(fix, bool):
        raise FrameError(f"frame.fix must be true/false, got {_short(fix)}")
    ts = frame.get("timestamp")
    if not isinstance(ts, str) or not _TIMESTAMP.match(ts):
        raise FrameError(f"frame.timestamp must read 'YYYY-MM-DD HH:MM:SS.mmm', got {_short(ts)}")
    ax, ay = _xy(frame.get("avg"), "frame.avg")
    rx, ry = _xy(frame.get("raw"), "frame.raw")
    eyes: dict[str, tuple[float, float, float, float, float]] = {}
    for side in ("lefteye", "righteye"):
        eye = frame.get(side)
        if not isinstance(eye, dict):
            raise FrameError(f"frame.{side} must be an object")
        ex, ey = _xy(eye.get("avg"), f"frame.{side}.avg")
        ps = _number(eye, "psize", f"frame.{side}")
        pcx, pcy = _xy(eye.get("pcenter"), f"frame.{side}.pcenter")
        eyes[side] = (ex, ey, ps, pcx, pcy)
    values = (t, ax, ay, rx, ry, *eyes["lefteye"], *eyes["righteye"])
    if not all(math.isfinite(v) for v in values):
        raise FrameError("frame holds a non-finite number")
    le, re_ = eyes["lefteye"], eyes["righteye"]
    return GazeSample(
        time_ms=t,
        local_s=local_s,
        x=ax,
        y=ay,
        fix=fix,
        state=state,
        valid=sample_is_valid(state, ax, ay, screen_px),
        raw_x=rx,
        raw_y=ry,
        left_x=le[0],
        left_y=le[1],
        left_psize=le[2],
        left_pcx=le[3],
        left_pcy=le[4],
        right_x=re_[0],
        right_y=re_[1],
        right_psize=re_[2],
        right_pcx=re_[3],
        right_pcy=re_[4],
    )


def frame_of(message: Any) -> Any | None:
    """The ``values.frame`` of a pushed-frame message, or ``None`` if it is something else."""
    if not isinstance(message, dict) or message.get("category") != "tracker":
        return None
    values = message.get("values")
    if isinstance(values, dict) and "frame" in values:
        return values["frame"]
    return None


def parse_calibresult(obj: Any) -> CalibrationResult:
    """Parse a ``calibresult`` object (from the last ``pointend`` reply or an 800 notification).

    Missing accuracy values become NaN; present ones of the wrong type raise
    :class:`FrameError`, as for frames.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("result"), bool):
        raise FrameError("calibresult must be an object with a boolean 'result'")
    cps = obj.get("calibpoints", []) or []
    if not isinstance(cps, list):
        raise FrameError("calibresult.calibpoints must be a list")
    points = []
    for cp in cps:
        if not isinstance(cp, dict):
            raise FrameError("calibresult.calibpoints entries must be objects")
        x, y = _xy(cp.get("cp"), "calibpoint.cp")
        acd_raw, mep_raw = cp.get("acd"), cp.get("mepix")
        acd: dict[str, Any] = acd_raw if isinstance(acd_raw, dict) else {}
        mep: dict[str, Any] = mep_raw if isinstance(mep_raw, dict) else {}
        state = cp.get("state", 2)
        if isinstance(state, bool) or not isinstance(state, int) or not 0 <= state <= 2:
            raise FrameError(f"calibpoint.state must be 0, 1 or 2, got {_short(state)}")
        points.append(
            CalibrationPoint(
                x=x,
                y=y,
                accuracy_deg=_optional_number(acd, "ad", "calibpoint.acd"),
                accuracy_left_deg=_optional_number(acd, "adl", "calibpoint.acd"),
                accuracy_right_deg=_optional_number(acd, "adr", "calibpoint.acd"),
                mean_error_px=_optional_number(mep, "mep", "calibpoint.mepix"),
                state=state,
            )
        )
    return CalibrationResult(
        result=obj["result"],
        deg=_optional_number(obj, "deg", "calibresult"),
        degl=_optional_number(obj, "degl", "calibresult"),
        degr=_optional_number(obj, "degr", "calibresult"),
        points=tuple(points),
    )


def _optional_number(obj: dict[str, Any], key: str, where: str) -> float:
    return math.nan if obj.get(key) is None else _number(obj, key, where)


def calibration_points(
    count: int, screen_px: tuple[int, int], margin: float = 0.1
) -> list[tuple[float, float]]:
    """Target positions for a 5/9/12/16-point calibration, screen pixels, row by row."""
    grids = {5: None, 9: (3, 3), 12: (4, 3), 16: (4, 4)}
    if count not in grids:
        raise ValueError(f"calibration point count {count} must be one of 5, 9, 12, 16")
    w, h = screen_px
    x0, x1, y0, y1 = w * margin, w * (1 - margin), h * margin, h * (1 - margin)
    if count == 5:
        return [(x0, y0), (x1, y0), (w / 2, h / 2), (x0, y1), (x1, y1)]
    cols, rows = grids[count]  # type: ignore[misc]
    return [
        (x0 + (x1 - x0) * c / (cols - 1), y0 + (y1 - y0) * r / (rows - 1))
        for r in range(rows)
        for c in range(cols)
    ]
