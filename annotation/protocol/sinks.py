"""Where the protocol's records go: :class:`ListSink` keeps them in memory;
:class:`StoreRecorder` commits each to the session store the moment it happens, and in
a live session holds what the store cannot take (a full disk) until
:meth:`StoreRecorder.retry` writes it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gazelab.annotation.protocol.records import LabelAnswer, Phase, PhaseChange
from gazelab.annotation.store import SessionStore, StoreError


@dataclass
class ListSink:
    """Keeps everything in memory (tests, headless runs)."""

    records: list[tuple[str, Any]] = field(default_factory=list)

    def phase(self, change: PhaseChange) -> None:
        self.records.append(("phase", change))

    def flip(
        self, trial_index: int, phase: Phase, scheduled_s: float, flip_s: float,
        clock: str = "paint",
    ) -> None:  # fmt: skip
        self.records.append(("flip", (trial_index, phase, scheduled_s, flip_s)))

    def label(self, trial_index: int, answer: LabelAnswer, local_s: float) -> None:
        self.records.append(("label", (trial_index, answer, local_s)))

    def event(self, kind: str, local_s: float, trial_index: int | None, payload: dict) -> None:
        self.records.append(("event", (kind, local_s, trial_index, payload)))

    def of(self, kind: str) -> list[Any]:
        return [r for k, r in self.records if k == kind]


#: What a store write can raise when the disk or the file fails (not a programming error).
STORE_FAULTS: tuple[type[BaseException], ...] = (StoreError, sqlite3.Error, OSError)


class StoreRecorder:
    """Commits each protocol record to the session store the moment it happens.

    With ``hold_on_fault`` a write that fails with a store fault (:data:`STORE_FAULTS`)
    is kept in memory with every later one, in order, and :attr:`fault` says why;
    :meth:`retry` writes them once the store works again. Each held item is one store
    call (one transaction), so a retry never writes a row twice.
    """

    def __init__(
        self, store: SessionStore, session_id: int, *, hold_on_fault: bool = False
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.hold_on_fault = hold_on_fault
        self.held: deque[Callable[[], object]] = deque()
        self.fault: BaseException | None = None
        self._deferred: list[Callable[[], object]] | None = None

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Writes inside the block are made, in order, when it ends: a view enters a phase
        and paints it first, so the onset does not wait for the disk."""
        if self._deferred is not None:  # nested: the outer block writes
            yield
            return
        self._deferred = []
        try:
            yield
        finally:
            pending, self._deferred = self._deferred, None
            for write in pending:
                self.commit(write)

    def commit(self, write: Callable[[], object]) -> None:
        """Run one store write now, or hold it (behind earlier held ones) on a store fault."""
        if self._deferred is not None:
            self._deferred.append(write)
            return
        if self.held:  # keep the order: nothing overtakes a held record
            self.held.append(write)
            return
        try:
            write()
        except STORE_FAULTS as exc:
            if not self.hold_on_fault:
                raise
            self.fault = exc
            self.held.append(write)

    def retry(self) -> bool:
        """Write the held records in order; ``True`` when none is left."""
        while self.held:
            try:
                self.held[0]()
            except STORE_FAULTS as exc:
                self.fault = exc
                return False
            self.held.popleft()
        self.fault = None
        return True

    def phase(self, change: PhaseChange) -> None:
        self.commit(
            lambda: self.store.add_event(
                self.session_id,
                change.phase.value,
                change.start_s,
                trial_index=change.trial_index if change.trial_index >= 0 else None,
                payload={"scheduled_s": change.scheduled_s},
            )
        )

    def flip(
        self, trial_index: int, phase: Phase, scheduled_s: float, flip_s: float,
        clock: str = "paint",
    ) -> None:  # fmt: skip
        """An onset; ``clock`` says what its time is: ``flip`` (the frame's buffer swap
        done) or ``paint`` (the end of the first paint; no swap seen)."""
        error_ms = (flip_s - scheduled_s) * 1000.0
        self.commit(
            lambda: self.store.add_event(
                self.session_id,
                "flip",
                flip_s,
                trial_index=trial_index,
                payload={
                    "phase": phase.value,
                    "scheduled_s": scheduled_s,
                    "error_ms": error_ms,
                    "clock": clock,
                },  # fmt: skip
            )
        )
        if phase is Phase.IMAGE:
            self.commit(
                lambda: self.store.set_trial_onset(self.session_id, trial_index, flip_s, error_ms)
            )

    def label(self, trial_index: int, answer: LabelAnswer, local_s: float) -> None:
        self.commit(
            lambda: self.store.add_label(
                self.session_id,
                trial_index,
                answer.label,
                local_s=local_s,
                text=answer.text,
                confidence=answer.confidence,
                source=answer.source,
                audio_path=answer.audio_path,
            )
        )
        self.commit(
            lambda: self.store.add_event(
                self.session_id,
                "label",
                local_s,
                trial_index=trial_index,
                payload={
                    "label": answer.label,
                    "source": answer.source,
                    "text": answer.text,
                    "confidence": answer.confidence,
                    "audio": answer.audio_path,
                },
            )
        )

    def event(self, kind: str, local_s: float, trial_index: int | None, payload: dict) -> None:
        self.commit(
            lambda: self.store.add_event(
                self.session_id, kind, local_s, trial_index=trial_index, payload=payload
            )
        )
