"""Answers that are not labels, for measuring that a recogniser never guesses.

A participant may say something other than a label word: an unrelated word, a filler, a
short phrase, or a word that sounds like a label (a near-miss). Each must come back "not
understood" (the participant is asked again), never as a label. tests/test_voice_never_guess.py
and benchmarks/bench_voice.py speak these lists with espeak-ng; none of the words is a
decoy word of the PocketSphinx grammar by construction of the lists (they were written
by hand, not drawn from the grammar).
"""

from __future__ import annotations

UNRELATED = ("apple", "yes", "no", "purple", "table", "water", "chair", "seven", "orange",
             "doctor", "window", "coffee", "blue", "maybe", "okay", "thanks", "banana", "garden",
             "paper", "music", "yellow", "computer", "pencil", "river", "morning", "bicycle",
             "elephant", "kitchen", "tomorrow", "umbrella")  # fmt: skip
FILLERS = ("um", "uh", "hmm", "er", "ah", "oh", "erm", "mm")
PHRASES = ("I don't know", "not sure", "can you repeat that", "next one please", "I think so",
           "what was that", "hold on", "no idea")  # fmt: skip
NEAR_MISSES = {
    "neutral": ("neutron", "natural"),
    "anger": ("anchor", "angle", "hunger"),
    "angry": ("hungry",),
    "contempt": ("content", "contest", "attempt"),
    "contemptuous": ("contentious",),
    "disgust": ("discuss", "discussed"),
    "fear": ("fair", "fierce", "beer"),
    "afraid": ("frayed", "braid"),
    "scared": ("scarred", "squared", "scarf"),
    "fearful": ("careful", "tearful"),
    "happy": ("happen", "hippy", "nappy"),
    "happiness": ("emptiness",),
    "sad": ("sat", "said", "sand"),
    "sadness": ("madness",),
    "surprise": ("sunrise", "supplies"),
    "surprised": ("surmised",),
}
"""Words that sound like a label word (one to three per label word)."""

NON_LABELS: dict[str, tuple[str, ...]] = {
    "unrelated": UNRELATED,
    "filler": FILLERS,
    "phrase": PHRASES,
    "near-miss": tuple(w for ws in NEAR_MISSES.values() for w in ws),
}
"""The non-label set by kind; goals: unrelated, fillers and phrases accepted <= 2 %,
near-misses <= 10 % (docs/voice.md)."""
