"""Gaze capture during a session: tracker → (trial, phase) tags → store, in ≤ 100 ms batches.

:class:`GazeCapture` is polled by whoever runs the session (a GUI timer or a
headless loop). Each sample is tagged with the trial and phase in effect at the
sample's own local timestamp (not at drain time), so samples drained just after
a phase flip still land in the phase they were recorded in.

Tracker faults never pass unnoticed: a lost connection, a silent
tracker, a failed reader or samples dropped from a full queue are each written
to the store as a gap (with the tracker's own start/end times and reason, when
it reports them, see :meth:`EyeTribeTracker.gaps_since
<gazelab.gaze.trackers.eyetribe.EyeTribeTracker.gaps_since>`) and shown through
:attr:`GazeCapture.warning` — while the tracker is down, and for
:attr:`GazeCapture.RECOVERED_WARNING_S` after it came back, since a reconnect
can be quicker than one poll. The session itself goes on.

A tracker clock that jumps (back: a restarted Eye Tribe server counts from 0 again; or
forward by more than the reception clock allows) is recorded as a gap too, from the last
sample before the jump to the first after it (:class:`~gazelab.gaze.clock_segments.ClockJumpWatch`);
analysis splits the trial there into clock segments.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gazelab.annotation.protocol import LabelingProtocol
from gazelab.annotation.store import BatchedSampleWriter, SessionStore, StoreError
from gazelab.gaze.clock_segments import ClockJumpWatch
from gazelab.gaze.trackers.base import Gap, Tracker


class GazeCapture:
    """Moves samples from a tracker into the store and watches the tracker's health.

    Parameters
    ----------
    tracker : the session's tracker; its optional ``connected``, ``gaps_since``
        and ``last_fault`` are used when present (the Eye Tribe client has all three).
    store, session_id : where samples, gaps and events go.
    protocol : tags each sample with the trial and phase at its local time.
    batch_ms : samples are committed at least this often, milliseconds.
    clock : the session's monotonic clock, seconds.
    """

    RECOVERED_WARNING_S = 5.0
    """How long the warning about a gap stays on screen after the tracker is back, seconds."""

    def __init__(
        self,
        tracker: Tracker,
        store: SessionStore,
        session_id: int,
        protocol: LabelingProtocol,
        *,
        batch_ms: float = 100.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker
        self.store = store
        self.session_id = session_id
        self.protocol = protocol
        self.clock = clock
        self.writer = BatchedSampleWriter(store, session_id, batch_ms=batch_ms, clock=clock)
        self.received = 0
        self._lost_since: float | None = None
        self.gaps_recorded = 0
        # Gaps the tracker recorded before this session are not this session's.
        self._gaps_seen = int(getattr(getattr(tracker, "stats", None), "gaps", 0) or 0)
        self._gaps_to_write: list[Any] = []
        self._recent_gap: tuple[Any, float] | None = None  # (gap, when it was seen)
        self.quality_error: StoreError | None = None  # storing the trial quality failed
        self.clock_watch = ClockJumpWatch()
        self._clock_jumps: list[Gap] = []  # seen in samples, written after the tracker's gaps

    @property
    def connected(self) -> bool:
        return bool(getattr(self.tracker, "connected", True))

    @property
    def warning(self) -> str | None:
        """What to show on screen about the tracker, or ``None`` while all is well."""
        now = self.clock()
        if self._lost_since is not None:
            fault = getattr(self.tracker, "last_fault", None)
            why = f" ({fault})" if fault else ""
            return (
                f"eye tracker connection lost {now - self._lost_since:.1f} s ago{why}"
                " — reconnecting; the session continues and the gap is recorded"
            )
        if self._recent_gap is not None:
            gap, seen_at = self._recent_gap
            if now - seen_at < self.RECOVERED_WARNING_S:
                return (
                    f"eye tracker: {gap.reason}; {gap.end_s - gap.start_s:.1f} s without gaze"
                    " recorded as a gap — tracking again"
                )
            self._recent_gap = None
        return None

    def poll(self) -> int:
        """Drain the tracker, tag and buffer the samples; returns how many arrived."""
        samples = self.tracker.drain()
        if samples:
            self.writer.add_tagged((s, *self.protocol.phase_at(s.local_s)) for s in samples)
            self.received += len(samples)
            jumps = self.clock_watch.feed(
                [s.time_ms for s in samples], [s.local_s for s in samples]
            )
            self._clock_jumps += [Gap(j.start_s, j.end_s, j.reason) for j in jumps]
        else:
            self.writer.poll()
        self._watch_connection()
        return len(samples)

    def _tracker_gaps(self, seen: int) -> tuple[list[Any], int]:
        gaps_since = getattr(self.tracker, "gaps_since", None)
        if gaps_since is None:
            return [], seen
        gaps, total = gaps_since(seen)
        return list(gaps), int(total)

    def _watch_connection(self) -> None:
        now = self.clock()
        reports_gaps = hasattr(self.tracker, "gaps_since")
        new, self._gaps_seen = self._tracker_gaps(self._gaps_seen)
        if new:
            self._gaps_to_write += new
            self._recent_gap = (new[-1], now)
            self._lost_since = None  # the tracker's own gap covers the outage, exact times
        if self._clock_jumps:  # after the outage the tracker reported (a restart: both)
            self._gaps_to_write += self._clock_jumps
            self._recent_gap = (self._clock_jumps[-1], now)
            self._clock_jumps = []
        while self._gaps_to_write:  # one at a time: a store error keeps the rest for later
            gap = self._gaps_to_write[0]
            self.store.add_gap(self.session_id, gap.start_s, gap.end_s, gap.reason)
            self._gaps_to_write.pop(0)
            self.gaps_recorded += 1
            self.store.add_event(
                self.session_id,
                "tracker_gap",
                gap.end_s,
                trial_index=self.protocol.trial_index,
                payload={"gap_start_s": gap.start_s, "reason": gap.reason},
            )
        if not self.connected:
            if self._lost_since is None:
                self._lost_since = now
                self.store.add_event(
                    self.session_id,
                    "tracker_lost",
                    now,
                    trial_index=self.protocol.trial_index,
                    payload={"phase": self.protocol.phase.value},
                )
        elif self._lost_since is not None and not reports_gaps:
            # A tracker that reports no gaps of its own: the gap is what polling saw.
            self._close_gap(now)

    def _close_gap(self, end_s: float | None) -> None:
        assert self._lost_since is not None
        reason = "tracker connection lost"
        fault = getattr(self.tracker, "last_fault", None)
        if end_s is None and fault:
            reason = f"tracker connection lost ({fault})"
        self.store.add_gap(self.session_id, self._lost_since, end_s, reason)
        self.store.add_event(
            self.session_id,
            "tracker_back" if end_s is not None else "tracker_still_lost",
            end_s if end_s is not None else self.clock(),
            trial_index=self.protocol.trial_index,
            payload={"gap_start_s": self._lost_since},
        )
        self.gaps_recorded += 1
        self._lost_since = None

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        """Take the last samples, commit everything, record an open gap as such, then store
        the session's per-trial data quality."""
        try:
            self.poll()
        finally:
            self.writer.flush()
            if self._lost_since is not None:
                self._close_gap(None)
        self.store_trial_quality()

    def store_trial_quality(self) -> None:
        """Compute and store the per-trial data quality from the samples written so far.

        A store that fails here loses nothing: the figures are derived data, recomputed
        from the samples by ``gazelab sessions`` and the export; the fault is kept in
        :attr:`quality_error`.
        """
        if not isinstance(self.store, SessionStore):  # a test's stand-in store
            return
        from gazelab.annotation.sessions import compute_trial_quality

        try:
            compute_trial_quality(self.store, self.session_id)
        except StoreError as exc:
            self.quality_error = exc
