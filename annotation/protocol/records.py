"""What the protocol reports: its phases (:class:`Phase`), phase changes, label answers,
and the :class:`ProtocolSink` that receives them in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Phase(StrEnum):
    IDLE = "idle"  # before start
    BLANK1 = "blank1"
    CROSS = "cross"
    BLANK2 = "blank2"
    IMAGE = "image"
    PAUSED = "paused"
    DONE = "done"  # every trial labelled
    QUIT = "quit"  # stopped by the experimenter before the end


@dataclass(frozen=True)
class PhaseChange:
    trial_index: int
    phase: Phase
    scheduled_s: float  # when the schedule says the phase starts
    changed_s: float  # when the state machine switched (tick time)

    @property
    def start_s(self) -> float:
        """When the phase began, for its records: when it was entered, or its scheduled
        start where a view entered it ahead of that (``tick(until=)``: its frame reaches
        the screen at the schedule, not before)."""
        return max(self.changed_s, self.scheduled_s)


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
    def flip(
        self,
        trial_index: int,
        phase: Phase,
        scheduled_s: float,
        flip_s: float,
        clock: str = "paint",
    ) -> None: ...
    def label(self, trial_index: int, answer: LabelAnswer, local_s: float) -> None: ...
    def event(self, kind: str, local_s: float, trial_index: int | None, payload: dict) -> None: ...
