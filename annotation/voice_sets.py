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

# -- tuning lists ---------------------------------------------------------------------------
# PocketSphinx's rejection settings (the common words in its grammar, the n-best margin) were
# tuned on these lists in TRAINING_VOICES, which the tests and benchmarks/bench_voice.py do
# not use; the lists above and the benchmark's voices only measure.
TRAINING_VOICES = ("en-us+m1", "en-gb+m4", "en-gb-x-rp+f2", "en-gb-scotland+m5",
                   "en-gb-x-gbclan+f4", "en-gb-x-gbcwmd+m2", "en-029+f1", "en-us-nyc+m6")  # fmt: skip
TRAINING_SPEEDS = (170, 230, 120)
"""espeak-ng voices and words-per-minute of the tuning set (none used by a test or the
benchmark)."""

TRAINING_NON_LABELS: dict[str, tuple[str, ...]] = {
    "unrelated": ("bottle", "green", "house", "money", "dinner", "letter", "pizza", "car", "dog",
                  "cat", "tree", "hello", "sorry", "right", "fine", "good", "what", "here",
                  "there", "one", "two", "three", "ten", "stop", "go", "wait", "hat", "pen",
                  "shoe", "milk", "ball", "face", "free", "sea", "fee", "sir", "sock", "feet",
                  "fish", "key"),
    "filler": ("uhm", "huh", "ahh", "eh", "hm", "well", "like", "so", "ehm", "aha"),
    "phrase": ("let me think", "is that right", "one second", "I am not sure", "sorry what",
               "go on", "never mind", "again please"),
    "near-miss": ("neutrino", "nutrient", "anguish", "angler", "hangar", "ankle", "contemplate",
                  "contents", "context", "discus", "disgrace", "fir", "fee", "fever", "feral",
                  "afar", "affray", "scarce", "sacred", "skewered", "careless", "fretful",
                  "hoppy", "happens", "heaps", "sadder", "sod", "saddle", "sandy", "sedan",
                  "sublime", "suppress", "surplus"),
}  # fmt: skip
"""The tuning set's non-label words, disjoint from :data:`NON_LABELS`."""
