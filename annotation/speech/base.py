"""What every recogniser shares: the spoken label words, what was understood, the
recogniser interface and the error a recogniser or the microphone raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from gazelab.errors import GazelabError
from gazelab.models.datasets.base import SYNONYMS

SAMPLE_RATE = 16000

NOT_SPOKEN = frozenset({"neutrality", "none", "mad", "joy"})
"""Label synonyms that name dataset folders but are not accepted as spoken answers."""

SPOKEN_WORDS: dict[str, str] = {w: c for w, c in SYNONYMS.items() if w not in NOT_SPOKEN}
"""Words a participant may say, and the class each means (docs/voice.md)."""


class SpeechError(GazelabError, RuntimeError):
    """The recogniser cannot run (missing model folder, unreadable WAV, no microphone)."""


@dataclass(frozen=True)
class LabelResult:
    """What was understood: ``label`` is one of the 8 classes, or ``None`` (not understood)."""

    label: str | None
    text: str
    confidence: float

    @property
    def understood(self) -> bool:
        return self.label is not None


def label_of_words(text: str) -> str | None:
    """The class named in ``text`` (last label word wins, as people correct themselves)."""
    found = [SPOKEN_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in SPOKEN_WORDS]
    return found[-1] if found else None


class SpeechRecognizer(Protocol):
    name: str

    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult: ...
    def recognize_wav(self, path: str | Path) -> LabelResult: ...
