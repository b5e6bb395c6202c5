"""The labeling protocol's state machine (:class:`LabelingProtocol`), driven by an injected
monotonic clock (:class:`FakeClock` in tests); see :mod:`gazelab.annotation.protocol`
for the trial's phases and how they are scheduled.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence

from gazelab import CLASSES
from gazelab.annotation.protocol.records import LabelAnswer, Phase, PhaseChange, ProtocolSink
from gazelab.annotation.protocol.sinks import ListSink
from gazelab.errors import GazelabError
from gazelab.settings import ProtocolSettings


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

    def tick(self, until: float | None = None) -> list[PhaseChange]:
        """Enter every timed phase whose scheduled start has passed (or, given ``until``,
        comes no later than it); returns the changes.

        A view whose frame takes a measured while to reach the screen enters the phase
        that much before its deadline (``until`` = the deadline), so the onset lands on
        the schedule; each change keeps its scheduled start and says when it was made.
        ``until`` reaches no further than the current deadline: one phase entered ahead
        at most, never a phase skipped."""
        changes: list[PhaseChange] = []
        now = self.clock()
        if until is not None and self._deadline is not None:
            now = max(now, min(until, self._deadline))
        while self._deadline is not None and now >= self._deadline:
            nxt = {
                Phase.BLANK1: Phase.CROSS,
                Phase.CROSS: Phase.BLANK2,
                Phase.BLANK2: Phase.IMAGE,
            }[self.phase]
            changes.append(self._enter(nxt, self._deadline))
        return changes

    def flipped(self, phase: Phase, flip_s: float | None = None, clock: str = "paint") -> None:
        """The view reports that ``phase`` reached the screen at ``flip_s`` (default: now);
        ``clock``: what that time is, ``flip`` (a buffer swap) or ``paint`` (a paint's end)."""
        if phase is not self.phase:
            return  # a late paint of a phase already left: not an onset
        t = self.clock() if flip_s is None else flip_s
        self.sink.flip(self.trial_index, phase, self.phase_scheduled_s, t, clock=clock)

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
