"""The batching sample writer: a live session's samples, committed every ``batch_ms``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from gazelab.gaze.trackers.base import GazeSample

if TYPE_CHECKING:
    from gazelab.annotation.store import SessionStore


class BatchedSampleWriter:
    """Buffers tagged samples and commits them at least every ``batch_ms``
    (docs/running-a-session.md#the-protocol).

    Call :meth:`add` as samples arrive and :meth:`poll` often (a GUI timer);
    :meth:`flush` commits whatever is pending. A crash loses at most the samples
    of the current batch.
    """

    def __init__(
        self,
        store: SessionStore,
        session_id: int,
        *,
        batch_ms: float = 100.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.batch_s = batch_ms / 1000.0
        self.clock = clock
        self._pending: list[tuple[GazeSample, int | None, str | None]] = []
        self._last_flush = clock()
        self._retry_at: float | None = None  # after a failed flush: not before this
        self.retry_s = 1.0
        self.written = 0

    @property
    def pending(self) -> int:
        """Samples received but not yet committed (kept in memory across store faults)."""
        return len(self._pending)

    def add(
        self, samples: Iterable[GazeSample], trial_index: int | None, phase: str | None
    ) -> None:
        self._pending.extend((s, trial_index, phase) for s in samples)
        self.poll()

    def add_tagged(self, batch: Iterable[tuple[GazeSample, int | None, str | None]]) -> None:
        """Samples each with its own (trial, phase) tag."""
        self._pending.extend(batch)
        self.poll()

    def poll(self) -> None:
        now = self.clock()
        if self._retry_at is not None and now < self._retry_at:
            return  # the store failed: retry once a second, not on every poll
        if self._pending and now - self._last_flush >= self.batch_s:
            self.flush()

    def flush(self) -> None:
        """Commit every pending sample; on failure they stay pending (and it raises)."""
        batch, self._pending = self._pending, []
        try:
            self.written += self.store.add_tagged_samples(self.session_id, batch)
        except BaseException:
            self._pending = batch + self._pending  # keep them for the next try
            self._retry_at = self.clock() + self.retry_s
            raise
        self._retry_at = None
        self._last_flush = self.clock()
