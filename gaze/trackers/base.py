"""The tracker interface and the gaze sample record (SPEC §3, DESIGN "Hardware behind protocols")."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

# Eye Tribe `state` bit flags (SPEC §3).
STATE_TRACKING_GAZE = 0x01
STATE_TRACKING_EYES = 0x02
STATE_TRACKING_PRESENCE = 0x04
STATE_TRACKING_FAIL = 0x08
STATE_TRACKING_LOST = 0x10
STATE_OK = STATE_TRACKING_GAZE | STATE_TRACKING_EYES | STATE_TRACKING_PRESENCE
"""Gaze, eyes and presence tracked: the state of a normal sample."""


@dataclass(frozen=True, slots=True)
class GazeSample:
    """One gaze sample.

    Attributes
    ----------
    time_ms : float
        Tracker clock, milliseconds (Eye Tribe ``time``).
    local_s : float
        Local monotonic clock at reception, seconds (the session's one clock).
    x, y : float
        Smoothed (``avg``) gaze position, screen pixels.
    fix : bool
        The tracker's fixation flag.
    state : int
        Eye Tribe state bit flags.
    valid : bool
        Usable sample: gaze tracked, not failed/lost, and on screen.
    raw_x, raw_y : float
        Unsmoothed gaze position, screen pixels.
    left_x, left_y, right_x, right_y : float
        Per-eye smoothed gaze, screen pixels.
    left_psize, right_psize : float
        Pupil size, tracker units.
    left_pcx, left_pcy, right_pcx, right_pcy : float
        Pupil centre, normalised camera coordinates (0..1).
    """

    time_ms: float
    local_s: float
    x: float
    y: float
    fix: bool = False
    state: int = STATE_OK
    valid: bool = True
    raw_x: float = math.nan
    raw_y: float = math.nan
    left_x: float = math.nan
    left_y: float = math.nan
    right_x: float = math.nan
    right_y: float = math.nan
    left_psize: float = math.nan
    right_psize: float = math.nan
    left_pcx: float = math.nan
    left_pcy: float = math.nan
    right_pcx: float = math.nan
    right_pcy: float = math.nan


SAMPLE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(GazeSample))


def sample_is_valid(state: int, x: float, y: float, screen_px: tuple[int, int]) -> bool:
    """SPEC §4: failed/lost states, untracked gaze, or off-screen positions are invalid."""
    if state & (STATE_TRACKING_FAIL | STATE_TRACKING_LOST):
        return False
    if not state & STATE_TRACKING_GAZE:
        return False
    if not (math.isfinite(x) and math.isfinite(y)):
        return False
    w, h = screen_px
    return 0 <= x < w and 0 <= y < h


@dataclass(frozen=True)
class CalibrationPoint:
    x: float
    y: float
    accuracy_deg: float
    accuracy_left_deg: float = math.nan
    accuracy_right_deg: float = math.nan
    mean_error_px: float = math.nan
    state: int = 2  # Eye Tribe: 0 no data, 1 resample, 2 ok


@dataclass(frozen=True)
class CalibrationResult:
    """Outcome of a calibration (Eye Tribe ``calibresult``)."""

    result: bool
    deg: float
    degl: float
    degr: float
    points: tuple[CalibrationPoint, ...]


@runtime_checkable
class Tracker(Protocol):
    """What the app needs from an eye tracker; all implementations are used the same way."""

    def connect(self) -> None: ...
    def start(self) -> None: ...
    def drain(self) -> list[GazeSample]:
        """Every sample received since the last drain, oldest first."""
        ...

    def calibrate(
        self,
        points_xy: list[tuple[float, float]],
        *,
        dwell_s: float = 0.75,
        on_point: Callable[[int, tuple[float, float]], None] | None = None,
    ) -> CalibrationResult:
        """Calibrate on the given screen targets, ``dwell_s`` seconds each.

        ``on_point(i, (x, y))`` is called as target ``i``'s dwell starts (to show it).
        """
        ...

    def stop(self) -> None: ...
    def close(self) -> None: ...
