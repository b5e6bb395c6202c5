"""Spoken labels: espeak-ng voices through the out-of-the-box recogniser (docs/voice.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from gazelab import CLASSES
from gazelab.annotation.speech import (
    SPOKEN_WORDS,
    KeyboardRecognizer,
    LabelResult,
    PocketSphinxRecognizer,
    SpeechError,
    VoskRecognizer,
    label_of_words,
    read_wav,
    recognizer_from_settings,
    write_wav,
)
from gazelab.settings import VoiceSettings

VOICES = ("en-us", "en-us+f3")
UNKNOWN = ("banana", "table", "computer", "hello", "window", "yellow", "doctor", "seven",
           "garden", "music", "orange", "paper")  # fmt: skip


def espeak(word: str, voice: str, path: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), word], check=True)
    return path


needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make test installs it)"
)


def test_label_words_and_synonyms() -> None:
    assert label_of_words("happiness") == "happy"
    assert label_of_words("uh sad no surprised") == "surprise"  # the correction counts
    assert label_of_words("banana") is None
    assert set(SPOKEN_WORDS.values()) == set(CLASSES)


def test_keyboard_digits() -> None:
    k = KeyboardRecognizer()
    assert [k.label_for_key(str(i)) for i in range(8)] == list(CLASSES)
    assert k.label_for_key("8") is None and k.label_for_key("a") is None


def test_wav_round_trip_and_bad_file(out_dir: Path) -> None:
    x = (np.sin(np.arange(8000) / 5) * 1000).astype(np.int16)
    p = write_wav(out_dir / "a.wav", x)
    y, rate = read_wav(p)
    assert rate == 16000 and np.array_equal(x, y)
    (out_dir / "bad.wav").write_text("not audio")
    with pytest.raises(SpeechError, match="bad.wav"):
        read_wav(out_dir / "bad.wav")


def test_vosk_result_parsing_and_model_check(tmp_path: Path) -> None:
    ok = {"result": [{"word": "happiness", "conf": 0.93}], "text": "happiness"}
    assert VoskRecognizer.parse_result(ok, 0.5) == LabelResult("happy", "happiness", 0.93)
    unk = {"result": [{"word": "[unk]", "conf": 1.0}], "text": "[unk]"}
    assert VoskRecognizer.parse_result(unk, 0.5).label is None
    low = {"result": [{"word": "sad", "conf": 0.3}], "text": "sad"}
    assert VoskRecognizer.parse_result(low, 0.5).label is None
    with pytest.raises(SpeechError, match="not a Vosk model folder"):
        VoskRecognizer(tmp_path)
    with pytest.raises(SpeechError, match="vosk_model"):
        recognizer_from_settings(VoiceSettings(backend="vosk"))
    assert isinstance(recognizer_from_settings(VoiceSettings()), KeyboardRecognizer)


# slow tier: quick: test_voice_accents (voices clean and in noise) and test_voice_never_guess's quick run
@pytest.mark.slow
@needs_espeak
def test_spoken_labels_two_voices_noise_and_rejection(out_dir: Path) -> None:
    rec = PocketSphinxRecognizer()
    rng = np.random.default_rng(0)
    report: dict[str, dict] = {}
    latencies: list[float] = []
    for voice in VOICES:
        for condition in ("clean", "noise"):
            hits: dict[str, bool] = {}
            for word in SPOKEN_WORDS:
                wav = espeak(word, voice, out_dir / f"{voice}-{word}.wav")
                audio, rate = read_wav(wav)
                if condition == "noise":  # white noise at 20 dB SNR
                    rms = np.sqrt(np.mean(audio.astype(float) ** 2))
                    noisy = audio + rng.normal(0, rms / 10, audio.size)
                    audio = np.clip(noisy, -32768, 32767).astype(np.int16)
                t0 = time.perf_counter()
                result = rec.recognize(audio, rate)
                latencies.append(time.perf_counter() - t0)
                hits[word] = result.label == SPOKEN_WORDS[word]
            report[f"{voice}/{condition}"] = {
                "accuracy": float(np.mean(list(hits.values()))),
                "missed": [w for w, ok in hits.items() if not ok],
            }
        rejected = [rec.recognize_wav(espeak(w, voice, out_dir / f"{voice}-x-{w}.wav")).label
                    is None for w in UNKNOWN]  # fmt: skip
        report[f"{voice}/unknown"] = {"rejected": float(np.mean(rejected))}
    report["latency_ms"] = {
        "mean": 1000 * float(np.mean(latencies)),
        "max": 1000 * float(np.max(latencies)),
    }
    (out_dir / "speech_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    for voice in VOICES:
        # 13 and 11 of 17 (en-us, en-us+f3) measured with the n-best margin 0.04 (0.035:
        # 15 and 12, floor 0.7; 0.02: 15 and 14, floor 0.8; 17 and 17 before the margin): a
        # label within the margin of another word is asked again rather than guessed
        # (docs/voice.md, "Never guess"). Floor 10 of 17:
        assert report[f"{voice}/clean"]["accuracy"] >= 10 / 17, report
        assert report[f"{voice}/unknown"]["rejected"] >= 0.75, report
