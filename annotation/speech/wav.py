"""Answers as audio files: 16-bit mono WAV in and out, resampling to 16 kHz, and the WAV
entry point every recogniser shares.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.annotation.speech.base import SAMPLE_RATE, LabelResult, SpeechError


def read_wav(path: str | Path) -> tuple[NDArray[np.int16], int]:
    """A 16-bit WAV as mono int16 samples and its rate."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise SpeechError(f"{path}: {8 * w.getsampwidth()}-bit audio; 16-bit PCM needed")
            rate, channels = w.getframerate(), w.getnchannels()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    except (OSError, wave.Error, EOFError) as exc:
        raise SpeechError(f"cannot read WAV file {path}: {exc}") from exc
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


def write_wav(path: str | Path, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> Path:
    """Write mono 16-bit PCM atomically (a crash never leaves half a file under ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from gazelab.fileio import atomic_open

    with atomic_open(path) as f, wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(np.asarray(audio, dtype=np.int16).tobytes())
    return path


def to_16k(audio: NDArray[Any], rate: int) -> NDArray[np.int16]:
    """Resample to 16 kHz mono int16 (polyphase, anti-aliased)."""
    x = np.asarray(audio)
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(SAMPLE_RATE, int(rate))
        x = resample_poly(x.astype(np.float64), SAMPLE_RATE // g, int(rate) // g)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


class _WavMixin:
    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult:
        raise NotImplementedError

    def recognize_wav(self, path: str | Path) -> LabelResult:
        audio, rate = read_wav(path)
        return self.recognize(audio, rate)
