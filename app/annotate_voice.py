"""Spoken answers for the annotation window: microphone, end-pointing, WAVs, recognition.

:class:`AnswerListener` takes the microphone's audio (or a test's) while an image
is on screen, cuts it into utterances (:class:`~gazelab.annotation.speech.UtteranceDetector`),
saves each as a WAV beside the store (SPEC §2: answers can be re-checked) and
recognises it off the GUI thread; :attr:`AnswerListener.recognized` brings the
result back into the GUI thread with the trial it belongs to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, Signal

from gazelab.annotation.speech import (
    KeyboardRecognizer,
    SpeechRecognizer,
    UtteranceDetector,
    write_wav,
)


class AnswerListener(QObject):
    """The microphone and recogniser of one window (no microphone: keys or a test's audio)."""

    recognized = Signal(object, object, int)  # LabelResult, wav path | None, trial index

    def __init__(
        self,
        recognizer: SpeechRecognizer,
        audio_dir: Path,
        *,
        microphone: bool,
        warn: Callable[[str], None],
    ) -> None:
        super().__init__()
        self.recognizer = recognizer
        self.audio_dir = audio_dir
        self.warn = warn
        self.voice = not isinstance(recognizer, KeyboardRecognizer)
        self.detector = UtteranceDetector()
        self.mic: Any = None
        if self.voice and microphone:
            from gazelab.annotation.speech import AnswerRecorder

            self.mic = AnswerRecorder()

    @property
    def active(self) -> bool:
        return self.mic is not None and bool(self.mic.active)

    def start(self) -> None:
        """An image is on screen: listen (a microphone that fails is a warning, then keys)."""
        if self.mic is None:
            return
        self.detector.reset()
        try:
            self.mic.start()
        except Exception as exc:
            self.warn(f"{exc}")
            self.mic = None

    def stop(self) -> None:
        if self.mic is not None:
            try:
                self.mic.stop()
            except Exception:
                pass

    def read(self) -> NDArray[np.int16]:
        return self.mic.read()

    def feed(self, audio: NDArray[np.int16], trial: int, *, keep: bool = True) -> None:
        """Audio of the answer to ``trial``; each utterance found is recognised, and saved
        unless ``keep`` is false (practice answers are not data)."""
        for utterance in self.detector.feed(audio):
            self._recognize(utterance, trial, keep)

    def _recognize(self, utterance: NDArray[np.int16], trial: int, keep: bool) -> None:
        wav: Path | None = None
        if keep:
            folder = self.audio_dir
            n = len(list(folder.glob(f"trial{trial:04d}-*.wav"))) if folder.exists() else 0
            wav = folder / f"trial{trial:04d}-{n + 1:02d}.wav"
            try:
                write_wav(wav, utterance)
            except OSError as exc:  # a full disk: recognise anyway, without the recording
                wav = None
                self.warn(f"cannot save the answer's audio: {exc}")

        def work() -> None:
            result = self.recognizer.recognize(utterance)
            self.recognized.emit(result, None if wav is None else str(wav), trial)

        threading.Thread(target=work, name="recognizer", daemon=True).start()
