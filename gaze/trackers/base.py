"""The tracker interface and the gaze sample record (docs/running-a-session.md#trackers,
docs/architecture.md#rules-of-the-house)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol, Self, runtime_checkable

from gazelab.errors import GazelabError

# Eye Tribe `state` bit flags (docs/running-a-session.md#the-eye-tribe-protocol).
STATE_TRACKING_GAZE = 0x01
STATE_TRACKING_EYES = 0x02
STATE_TRACKING_PRESENCE = 0x04
STATE_TRACKING_FAIL = 0x08
STATE_TRACKING_LOST = 0x10
STATE_OK = STATE_TRACKING_GAZE | STATE_TRACKING_EYES | STATE_TRACKING_PRESENCE
"""Gaze, eyes and presence tracked: the state of a normal sample."""


class TrackerError(GazelabError, RuntimeError):
    """The tracker did not answer, refused a request, or cannot be reached."""


@dataclass
class TrackerStats:
    """Counters of one client's traffic and faults (all since construction)."""

    frames: int = 0
    invalid_messages: int = 0
    """Malformed, truncated or over-long messages, skipped (over-long ones also below)."""
    notifications: int = 0
    reconnects: int = 0
    heartbeats_sent: int = 0
    oversized_lines: int = 0
    """Lines longer than ``max_line_bytes``, dropped unread."""
    samples_dropped: int = 0
    """Samples pushed out of the full queue because nobody drained it."""
    notifications_dropped: int = 0
    """Notifications pushed out of the kept few (``max_notifications``)."""
    silences: int = 0
    """Times the tracker sent nothing for ``SILENCE_HEARTBEATS`` heartbeat intervals."""
    reader_faults: int = 0
    """Unexpected exceptions in the reader thread (each one a gap and a reconnect)."""
    gaps: int = 0
    """Gaps recorded in total (:attr:`GapLog.gaps` keeps the latest ones)."""
    last_invalid: str = ""
    """Why the latest invalid message was skipped."""


@dataclass(frozen=True)
class Gap:
    """A period without gaze: no connection, a silent tracker, or dropped samples.

    Times are the client's clock (the session's local monotonic seconds).
    """

    start_s: float
    end_s: float
    reason: str


class GapLog:
    """The gaps one tracker recorded: the latest ``max_kept``, counted, seen once by a poller.

    Every tracker client records its outages here, so the session's gaze capture
    reads them the same way from any tracker (:meth:`gaps_since`). Thread-safe:
    the tracker's reader thread records, the session's thread polls.

    Parameters
    ----------
    stats : the tracker's counters; ``stats.gaps`` counts every recorded gap.
    on_gap : called with each gap as it is recorded (from the recording thread);
        an exception there is kept in :attr:`callback_error`, never raised.
    """

    def __init__(
        self,
        stats: TrackerStats,
        on_gap: Callable[[Gap], None] | None = None,
        *,
        max_kept: int = 1000,
    ) -> None:
        self.stats = stats
        self.on_gap = on_gap
        self.max_kept = max_kept
        self.gaps: list[Gap] = []
        self.callback_error = ""
        self._lock = threading.Lock()

    def record(self, gap: Gap) -> None:
        with self._lock:
            self.gaps.append(gap)
            if len(self.gaps) > self.max_kept:
                del self.gaps[0]
            self.stats.gaps += 1
        if self.on_gap is not None:
            try:
                self.on_gap(gap)
            except Exception as exc:  # the caller's bug must not stop the stream
                self.callback_error = f"on_gap callback failed ({type(exc).__name__}: {exc})"

    def gaps_since(self, seen: int) -> tuple[list[Gap], int]:
        """The gaps recorded after the first ``seen`` (those still kept), and the new total.

        A consumer polling from another thread (the session's gaze capture) keeps
        the total and passes it back next time, so it sees each gap once.
        """
        with self._lock:
            total = self.stats.gaps
            new = min(total - seen, len(self.gaps))
            return (self.gaps[len(self.gaps) - new :] if new > 0 else []), total


class TrackerClient:
    """What the tracker clients (Eye Tribe, GazePoint, LSL) share: ``with`` connects and
    closes, :attr:`connected` reads their ``_connected`` event, :meth:`gaps_since` their
    :class:`GapLog` (which the session's capture polls)."""

    _connected: threading.Event
    gap_log: GapLog

    def connect(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def gaps_since(self, seen: int) -> tuple[list[Gap], int]:
        """See :meth:`GapLog.gaps_since`."""
        return self.gap_log.gaps_since(seen)


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
    """docs/algorithms.md#fixations: failed/lost states, untracked gaze, or off-screen positions
    are invalid."""
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
