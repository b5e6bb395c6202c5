"""The GazePoint Open Gaze API (v2) as data: one XML element per line, ended by
``\\r\\n``; what the client sends (:func:`element`), how a received line is parsed
(:func:`parse_line`, bounded and without entities), and a data record or a calibration
result turned into gazelab's types (:func:`parse_record`, :func:`parse_calib_result`).

The client sends ``<SET ID="..." .../>`` and ``<GET ID="..." />``; the server answers
``<ACK ID="..." .../>`` or ``<NACK ID="..." />``, streams ``<REC .../>`` data records once
``ENABLE_SEND_DATA`` is on, and reports a calibration with ``<CAL ID="CALIB_START_PT" PT
CALX CALY />``, ``CALIB_RESULT_PT`` and finally ``<CAL ID="CALIB_RESULT" CALX1 CALY1 LX1
LY1 LV1 RX1 RY1 RV1 ... />``. All positions are fractions of the tracked screen ((0, 0)
top left, (1, 1) bottom right); ``TIME`` is seconds since the server started (or last
calibrated). Pure functions: no socket here (the client is
:mod:`gazelab.gaze.trackers.gazepoint`, the simulator :mod:`~gazelab.gaze.trackers.gazepoint_sim`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from gazelab.errors import GazelabError
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.base import (
    STATE_OK,
    STATE_TRACKING_FAIL,
    STATE_TRACKING_PRESENCE,
    CalibrationPoint,
    CalibrationResult,
    GazeSample,
    sample_is_valid,
)

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
