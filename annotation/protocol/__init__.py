"""The CK+ labeling protocol as a state machine (SPEC §2), free of Qt and of wall time.

Each trial runs ``blank1`` → ``cross`` → ``blank2`` → ``image``; the image stays
until the participant has given a label **and** presses the advance key. The
machine is driven by an injected monotonic clock: :meth:`LabelingProtocol.tick`
moves through every timed phase whose scheduled end has passed. Phase ends are
scheduled from the previous *scheduled* onset (not from when ``tick`` happened
to run), so a late tick never shifts the schedule of later phases.

The view reports when a phase actually reached the screen with
:meth:`LabelingProtocol.flipped`; the difference to the schedule is the onset
error stored for every trial. Every change goes to a :class:`ProtocolSink`
(:class:`StoreRecorder` commits it to the session store as it happens, so a
killed session loses nothing it had recorded). A live session's recorder holds
records it cannot write (a full disk) in memory, in order, until
:meth:`StoreRecorder.retry` writes them, so a store fault pauses the session
instead of losing or breaking it.
"""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from gazelab import CLASSES
from gazelab.annotation.store import SessionRecord, SessionStore, StoreError
from gazelab.errors import GazelabError
from gazelab.settings import ProtocolSettings


class Phase(StrEnum):
    IDLE = "idle"  # before start
    BLANK1 = "blank1"
    CROSS = "cross"
    BLANK2 = "blank2"
    IMAGE = "image"
    PAUSED = "paused"
    DONE = "done"  # every trial labelled
    QUIT = "quit"  # stopped by the experimenter before the end


class FakeClock:
    """A monotonic clock for tests: time moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = float(start)

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self.t += seconds
        return self.t


@dataclass(frozen=True)
class PhaseChange:
    trial_index: int
    phase: Phase
    scheduled_s: float  # when the schedule says the phase starts
    changed_s: float  # when the state machine switched (tick time)


@dataclass(frozen=True)
class LabelAnswer:
    label: str
    source: str = "key"  # key | voice | auto
    text: str = ""
    confidence: float = 1.0
    audio_path: str | None = None


class ProtocolSink(Protocol):
    """Receives everything the protocol does, in order."""

    def phase(self, change: PhaseChange) -> None: ...
    def flip(self, trial_index: int, phase: Phase, scheduled_s: float, flip_s: float) -> None: ...
    def label(self, trial_index: int, answer: LabelAnswer, local_s: float) -> None: ...
    def event(self, kind: str, local_s: float, trial_index: int | None, payload: dict) -> None: ...


@dataclass
class ListSink:
    """Keeps everything in memory (tests, headless runs)."""

    records: list[tuple[str, Any]] = field(default_factory=list)

    def phase(self, change: PhaseChange) -> None:
        self.records.append(("phase", change))

    def flip(self, trial_index: int, phase: Phase, scheduled_s: float, flip_s: float) -> None:
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
                change.changed_s,
                trial_index=change.trial_index if change.trial_index >= 0 else None,
                payload={"scheduled_s": change.scheduled_s},
            )
        )

    def flip(self, trial_index: int, phase: Phase, scheduled_s: float, flip_s: float) -> None:
        error_ms = (flip_s - scheduled_s) * 1000.0
        self.commit(
            lambda: self.store.add_event(
                self.session_id,
                "flip",
                flip_s,
                trial_index=trial_index,
                payload={"phase": phase.value, "scheduled_s": scheduled_s, "error_ms": error_ms},
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


class ProtocolError(GazelabError, RuntimeError):
    """An action the protocol does not allow in its current state."""


class LabelingProtocol:
    """One session's trial sequence over ``order`` (image ids), starting at ``start_trial``."""

    def __init__(
        self,
        order: Sequence[str],
        timings: ProtocolSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sink: ProtocolSink | None = None,
        start_trial: int = 0,
        labels: dict[int, str] | None = None,
    ) -> None:
        self.order = tuple(order)
        self.timings = timings or ProtocolSettings()
        self.clock = clock
        self.sink: ProtocolSink = sink if sink is not None else ListSink()
        if not 0 <= start_trial <= len(self.order):
            raise ProtocolError(f"start trial {start_trial} outside 0..{len(self.order)}")
        self.trial_index = start_trial
        self.labels: dict[int, str] = dict(labels or {})
        self.phase = Phase.IDLE
        self.phase_scheduled_s = 0.0
        self._deadline: float | None = None
        # (scheduled onset, trial, phase) for tagging samples by their own timestamps
        self._timeline: list[tuple[float, int, Phase]] = []

    # -- queries ----------------------------------------------------------------------------
    @property
    def n_trials(self) -> int:
        return len(self.order)

    @property
    def image_id(self) -> str | None:
        return self.order[self.trial_index] if self.trial_index < len(self.order) else None

    @property
    def current_label(self) -> str | None:
        return self.labels.get(self.trial_index)

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.DONE, Phase.QUIT)

    @property
    def trials_done(self) -> int:
        return self.trial_index

    def durations_s(self) -> dict[Phase, float]:
        t = self.timings
        return {
            Phase.BLANK1: t.blank1_ms / 1000.0,
            Phase.CROSS: t.cross_ms / 1000.0,
            Phase.BLANK2: t.blank2_ms / 1000.0,
        }

    def next_deadline(self) -> float | None:
        """When the current timed phase ends (``None`` outside timed phases)."""
        return self._deadline

    def phase_at(self, local_s: float) -> tuple[int | None, str | None]:
        """(trial, phase) in effect at ``local_s`` — for tagging gaze samples."""
        i = bisect.bisect_right(self._timeline, (local_s, float("inf"), "~")) - 1
        if i < 0:
            return None, None
        _, trial, phase = self._timeline[i]
        if phase in (Phase.DONE, Phase.QUIT, Phase.PAUSED, Phase.IDLE):
            return (trial if phase is Phase.PAUSED else None), phase.value
        return trial, phase.value

    # -- transitions ------------------------------------------------------------------------
    def _enter(self, phase: Phase, scheduled_s: float) -> PhaseChange:
        self.phase = phase
        self.phase_scheduled_s = scheduled_s
        dur = self.durations_s().get(phase)
        self._deadline = scheduled_s + dur if dur is not None else None
        change = PhaseChange(self.trial_index, phase, scheduled_s, self.clock())
        self._timeline.append((scheduled_s, self.trial_index, phase))
        self.sink.phase(change)
        return change

    def start(self) -> list[PhaseChange]:
        if self.phase is not Phase.IDLE:
            raise ProtocolError(f"start() in phase {self.phase.value}; the session already runs")
        now = self.clock()
        self.sink.event(
            "session_start" if self.trial_index == 0 else "session_resume",
            now,
            self.trial_index,
            {"n_trials": self.n_trials, "start_trial": self.trial_index},
        )
        if self.trial_index >= self.n_trials:
            return [self._enter(Phase.DONE, now)]
        return [self._enter(Phase.BLANK1, now)]

    def tick(self) -> list[PhaseChange]:
        """Enter every timed phase whose scheduled start has passed; returns the changes."""
        changes: list[PhaseChange] = []
        now = self.clock()
        while self._deadline is not None and now >= self._deadline:
            nxt = {
                Phase.BLANK1: Phase.CROSS,
                Phase.CROSS: Phase.BLANK2,
                Phase.BLANK2: Phase.IMAGE,
            }[self.phase]
            changes.append(self._enter(nxt, self._deadline))
        return changes

    def flipped(self, phase: Phase, flip_s: float | None = None) -> None:
        """The view reports that ``phase`` reached the screen at ``flip_s`` (default: now)."""
        if phase is not self.phase:
            return  # a late paint of a phase already left: not an onset
        t = self.clock() if flip_s is None else flip_s
        self.sink.flip(self.trial_index, phase, self.phase_scheduled_s, t)

    def give_label(self, answer: LabelAnswer) -> bool:
        """Record a label for the image on screen; a later one replaces it (relabel)."""
        if answer.label not in CLASSES:
            raise ProtocolError(f"{answer.label!r} is not one of the classes {CLASSES}")
        if self.phase is not Phase.IMAGE:
            return False
        self.labels[self.trial_index] = answer.label
        self.sink.label(self.trial_index, answer, self.clock())
        return True

    def advance(self, key: str | None = None) -> bool:
        """The advance key: does nothing until the image on screen has a label."""
        now = self.clock()
        if self.phase is not Phase.IMAGE:
            return False
        accepted = self.current_label is not None
        self.sink.event(
            "keypress",
            now,
            self.trial_index,
            {"key": key or self.timings.advance_key, "action": "advance", "accepted": accepted},
        )
        if not accepted:
            return False
        self.trial_index += 1
        if self.trial_index >= self.n_trials:
            self._enter(Phase.DONE, now)
            self.sink.event("session_end", now, None, {"n_trials": self.n_trials})
        else:
            self._enter(Phase.BLANK1, now)
        return True

    def pause(self) -> bool:
        if self.finished or self.phase in (Phase.PAUSED, Phase.IDLE):
            return False
        self.sink.event("pause", self.clock(), self.trial_index, {"from": self.phase.value})
        self._enter(Phase.PAUSED, self.clock())
        return True

    def resume(self) -> bool:
        """Continue after a pause: the interrupted trial starts again at its first blank."""
        if self.phase is not Phase.PAUSED:
            return False
        self.sink.event("resume", self.clock(), self.trial_index, {})
        self._enter(Phase.BLANK1, self.clock())
        return True

    def quit(self) -> None:
        if self.finished:
            return
        now = self.clock()
        self.sink.event("quit", now, self.trial_index, {"phase": self.phase.value})
        self._enter(Phase.QUIT, now)


def stimulus_order(image_ids: Sequence[str], seed: int) -> list[str]:
    """The session's presentation order: a permutation fixed by the stored seed (SPEC §2)."""
    import numpy as np

    perm = np.random.default_rng(seed).permutation(len(image_ids))
    return [image_ids[i] for i in perm]


def participant_seed(pseudonym: str, seed: int) -> int:
    """A seed of one participant's own: reproducible from the pseudonym and the study seed."""
    import hashlib

    digest = hashlib.sha256(f"{seed}:{pseudonym.strip()}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def balanced_latin_row(n: int, row: int) -> list[int]:
    """Row ``row`` of a balanced Latin square (Williams design) over ``n`` conditions.

    Each position shows every item once across ``n`` rows, and each item follows every
    other equally often (first-order carry-over balanced). For odd ``n`` balance needs
    ``2n`` rows: rows ``n..2n-1`` are rows ``0..n-1`` reversed.
    """
    if n <= 0:
        return []
    first = [0]
    lo, hi = 1, n - 1
    for k in range(1, n):
        if k % 2:
            first.append(lo)
            lo += 1
        else:
            first.append(hi)
            hi -= 1
    out = [(x + row) % n for x in first]
    if n % 2 and (row // n) % 2:
        out.reverse()
    return out


def session_order(
    image_ids: Sequence[str],
    method: str,
    *,
    participant: str,
    participant_index: int,
    seed: int,
) -> tuple[list[str], int, dict[str, Any]]:
    """A new session's presentation order: ``(order, seed stored, what was done)``.

    ``random``: a permutation seeded by :func:`participant_seed` (each participant their
    own order, the same pseudonym always the same); ``latin``: the ``seed`` permutation
    rearranged by row ``participant_index`` of :func:`balanced_latin_row` (counterbalanced
    across the store's participants); ``fixed``: the ``seed`` permutation for everyone.
    """
    if method == "random":
        own = participant_seed(participant, seed)
        return stimulus_order(image_ids, own), own, {"method": method, "seed": own}
    base = stimulus_order(image_ids, seed)
    if method == "fixed":
        return base, seed, {"method": method, "seed": seed}
    if method == "latin":
        row = balanced_latin_row(len(base), participant_index)
        info = {"method": method, "seed": seed, "latin_row": participant_index}
        return [base[i] for i in row], seed, info
    raise ProtocolError(f"order {method!r}: use random, latin or fixed")


@dataclass(frozen=True)
class SessionPlan:
    """What a (new or resumed) session needs to run: its record and where to start."""

    record: SessionRecord
    start_trial: int
    labels: dict[int, str]


def resume_plan(store: SessionStore, session_id: int) -> SessionPlan:
    """Where a restarted session continues: the first unlabelled image (SPEC §2)."""
    rec = store.session(session_id)
    first = store.first_unlabelled_trial(session_id)
    start = len(rec.stimulus_order) if first is None else first
    return SessionPlan(rec, start, store.final_labels(session_id))


def protocol_for_session(
    store: SessionStore,
    session_id: int,
    timings: ProtocolSettings,
    *,
    clock: Callable[[], float] = time.monotonic,
    hold_on_fault: bool = False,
) -> LabelingProtocol:
    """A protocol recording into the store, resuming wherever the session stands.

    ``hold_on_fault``: records the store cannot take are held for
    :meth:`StoreRecorder.retry` (a live session) instead of raising."""
    plan = resume_plan(store, session_id)
    return LabelingProtocol(
        plan.record.stimulus_order,
        timings,
        clock=clock,
        sink=StoreRecorder(store, session_id, hold_on_fault=hold_on_fault),
        start_trial=plan.start_trial,
        labels=plan.labels,
    )


def audio_dir(store_path: str | Path, session_uuid: str) -> Path:
    """Where a session's answer WAVs live: next to the store, one folder per session."""
    p = Path(store_path)
    return p.parent / f"{p.stem}-audio" / session_uuid
