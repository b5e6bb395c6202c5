"""Gaze capture during a session: tracker → (trial, phase) tags → store, in ≤ 100 ms batches.

:class:`GazeCapture` is polled by whoever runs the session (a GUI timer or a
headless loop). Each sample is tagged with the trial and phase in effect at the
sample's own local timestamp (not at drain time), so samples drained just after
a phase flip still land in the phase they were recorded in. A tracker that
loses its connection is reported through :attr:`GazeCapture.warning` and the
gap is written to the store when the connection comes back (or at close); the
session itself goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gazelab.annotation.protocol import LabelingProtocol
from gazelab.annotation.store import BatchedSampleWriter, SessionStore
from gazelab.gaze.trackers.base import Tracker


class GazeCapture:
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

    @property
    def connected(self) -> bool:
        return bool(getattr(self.tracker, "connected", True))

    @property
    def warning(self) -> str | None:
        if self._lost_since is None:
            return None
        return (
            f"eye tracker connection lost {self.clock() - self._lost_since:.1f} s ago"
            " — reconnecting; the session continues and the gap is recorded"
        )

    def poll(self) -> int:
        """Drain the tracker, tag and buffer the samples; returns how many arrived."""
        samples = self.tracker.drain()
        if samples:
            self.writer.add_tagged((s, *self.protocol.phase_at(s.local_s)) for s in samples)
            self.received += len(samples)
        else:
            self.writer.poll()
        self._watch_connection()
        return len(samples)

    def _watch_connection(self) -> None:
        now = self.clock()
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
        elif self._lost_since is not None:
            self._close_gap(now)

    def _close_gap(self, end_s: float | None) -> None:
        assert self._lost_since is not None
        self.store.add_gap(self.session_id, self._lost_since, end_s, "tracker connection lost")
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
        """Take the last samples, commit everything, record an open gap as such."""
        try:
            self.poll()
        finally:
            self.writer.flush()
            if self._lost_since is not None:
                self._close_gap(None)
