"""Spoken labels in accents and noise the other speech tests do not use.

The default recogniser must accept British pronunciations of the label words (no R in
"anger", "fear", "scared"; the short /a/ of "happy", "sad") and words in 10 dB noise,
while still never guessing: no answer becomes another class, other words are rejected.
benchmarks/bench_voice.py measures the same on 9 voices x 2 speeds x 3 noise levels.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import pytest
from numpy.typing import NDArray

from gazelab.annotation.speech import (
    ACCENT_VARIANTS,
    SPOKEN_WORDS,
    PocketSphinxRecognizer,
    decoy_words,
    grammar_dictionary,
    phone_distance,
    spectral_denoise,
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make test installs it)"
)
BRITISH = ("en-gb", "en-gb+f3", "en-gb-scotland")
HARD_WORDS = ("anger", "angry", "happy", "sad", "fear", "scared", "surprised", "neutral")
OTHER_WORDS = ("window", "river", "morning", "pencil", "garden", "doctor")


def snr_db(clean: NDArray[np.float64], x: NDArray[np.float64]) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((x - clean) ** 2)))


def test_phone_distance_counts_edits_and_cheap_vowel_swaps() -> None:
    assert phone_distance(["F", "IH", "R"], ["F", "IH", "R"]) == 0.0
    assert phone_distance(["F", "IH", "AH"], ["F", "IY", "AH"]) == pytest.approx(0.5 / 3)
    assert phone_distance(["F", "IH", "R"], ["F", "IH", "AH"]) == pytest.approx(1 / 3)
    assert phone_distance(["F", "IH", "R"], ["F", "IH"]) == pytest.approx(1 / 3)
    assert phone_distance(["S", "AE", "D"], ["K", "T"]) == 1.0
    # "engen" against "anger": two vowel swaps (0.5 each) and one extra phone over 5.
    assert phone_distance("EH NG G AH N".split(), "AE NG G ER".split()) == pytest.approx(0.4)


def test_dictionary_holds_every_label_word_and_the_accent_variants() -> None:
    d = grammar_dictionary(tuple(SPOKEN_WORDS), ("window",)).splitlines()
    entries = [(line.split(" ", 1)[0].split("(")[0], line.split(" ", 1)[1]) for line in d]
    assert {w for w, _ in entries} == {*SPOKEN_WORDS, "window"}
    assert ("anger", "AE NG G AH") in entries and ("fear", "F IH AH") in entries
    assert ("anger", "AE NG G ER") in entries  # the US form stays
    n_variants = sum(len(v) for v in ACCENT_VARIANTS.values())
    plain = grammar_dictionary(tuple(SPOKEN_WORDS), ("window",), accent_variants=False)
    assert len(d) - len(plain.splitlines()) == n_variants  # none duplicates a US entry
    assert set(ACCENT_VARIANTS) <= set(SPOKEN_WORDS)


def test_decoys_keep_away_from_every_label_pronunciation() -> None:
    decoys = decoy_words(200, min_distance=0.5)
    assert len(decoys) == 200 and decoys == decoy_words(200, min_distance=0.5)
    d = grammar_dictionary(tuple(SPOKEN_WORDS), decoys).splitlines()
    prons = [(line.split(" ", 1)[0].split("(")[0], line.split()[1:]) for line in d]
    labels = [p for w, p in prons if w in SPOKEN_WORDS]
    for word, p in prons:
        if word not in SPOKEN_WORDS:
            assert min(phone_distance(p, lab) for lab in labels) >= 0.5, word


def test_spectral_denoise_removes_steady_noise_and_leaves_clean_audio_alone() -> None:
    t = np.arange(16000) / 16000
    tone = np.zeros(16000)
    tone[4000:12000] = 3000 * np.sin(2 * np.pi * 440 * t[4000:12000])
    noise = np.random.default_rng(0).normal(0, 300, 16000)
    assert snr_db(tone, tone + noise) == pytest.approx(14.0, abs=0.1)
    cleaned = spectral_denoise(tone + noise)
    assert cleaned.shape == tone.shape
    assert snr_db(tone, cleaned) > 24.0  # measured 27.4 dB
    assert np.std(cleaned[:3000]) < np.std(noise[:3000]) / 4  # the pause before the tone
    assert np.allclose(spectral_denoise(tone), tone, atol=1e-6)  # nothing to take out


def espeak(word: str, voice: str) -> tuple[NDArray[np.int16], int]:
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", word],
                         check=True, capture_output=True).stdout  # fmt: skip
    with wave.open(io.BytesIO(wav)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def in_white_noise(audio: NDArray[np.int16], snr: float, seed: int) -> NDArray[np.int16]:
    """0.25 s of room each side (at 22 050 Hz) and white noise at ``snr`` dB under the
    speech frames' RMS."""
    x = np.concatenate([np.zeros(5512), audio.astype(np.float64), np.zeros(5512)])
    frames = audio[: audio.size // 441 * 441].astype(np.float64).reshape(-1, 441)
    power = (frames**2).mean(axis=1)
    rms = np.sqrt(power[power >= power.max() * 1e-3].mean())
    x += np.random.default_rng(seed).normal(0, rms / 10 ** (snr / 20), x.size)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def recogniser() -> PocketSphinxRecognizer:
    return PocketSphinxRecognizer()


@needs_espeak
def test_british_voices_clean_and_in_10_db_noise_never_mislabelled(
    recogniser: PocketSphinxRecognizer,
) -> None:
    outcomes: dict[str, list[str]] = {"clean": [], "10 dB": []}
    for voice in BRITISH:
        for k, word in enumerate(HARD_WORDS):
            audio, rate = espeak(word, voice)
            for level, x in (("clean", audio), ("10 dB", in_white_noise(audio, 10.0, k))):
                label = recogniser.recognize(x, rate).label
                ok = (
                    "correct"
                    if label == SPOKEN_WORDS[word]
                    else "rejected"
                    if label is None
                    else "WRONG"
                )
                outcomes[level].append(f"{voice}/{word}: {ok}")
    for level, results in outcomes.items():
        assert not [r for r in results if r.endswith("WRONG")], results
        correct = sum(r.endswith("correct") for r in results) / len(results)
        # The first version: 16/24 clean ("anger" and "sad" rejected in every voice,
        # Scottish "happy" taken for "afraid") and 18/24 at 10 dB with one wrong label;
        # then 24/24 at both levels; with the n-best margin (an answer within it of
        # another word is asked again, docs/voice.md) 0.02: 21/24 clean, 17/24 at 10 dB
        # (floors 20 and 16); 0.035, tuned for the never-guess goals: 16/24 clean, 9/24 at
        # 10 dB ("sad", "scared", "anger", "fear", "surprised" within the margin); 0.04,
        # re-tuned on the wider near-miss tuning list: 16/24 clean, 7/24 at 10 dB, never
        # a wrong label (floors 15 and 6).
        assert correct >= (15 if level == "clean" else 6) / 24, (level, results)


@needs_espeak
def test_other_words_in_british_voices_are_rejected(recogniser: PocketSphinxRecognizer) -> None:
    heard = {
        f"{voice}/{word}": recogniser.recognize(*espeak(word, voice)).label
        for voice in BRITISH
        for word in OTHER_WORDS
    }
    accepted = {k: v for k, v in heard.items() if v is not None}
    assert len(accepted) <= 2, accepted
