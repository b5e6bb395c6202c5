"""Spoken answers for the annotation window: the voice child process seen from Qt.

:class:`AnswerListener` runs a :class:`~gazelab.annotation.voice_worker.VoiceWorker`
(the microphone, the end-pointer and the recogniser in a child process, one capture
stream for the whole session), tells it when an image is on screen, and brings what it
heard back into the GUI thread: :attr:`AnswerListener.recognized` with the trial each
answer belongs to, :attr:`AnswerListener.problem` for warnings. When the child dies the
window keeps running with key labels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, Signal

from gazelab.annotation.speech import KeyboardRecognizer, SpeechRecognizer
from gazelab.annotation.voice_worker import Heard, VoiceProblem, VoiceWorker


class AnswerListener(QObject):
    """The voice of one window: ``recognizer`` is built in the child process."""

    recognized = Signal(object, object, int)  # LabelResult, wav path | None, trial index
    problem = Signal(str, bool)  # message, fatal (the voice is gone: keys from now on)
    ready = Signal(str)  # the recogniser (and model) the child runs, once it has started

    def __init__(
        self,
        recognizer: Callable[[], SpeechRecognizer] | None,
        audio_dir: Path,
        *,
        microphone: bool,
    ) -> None:
        super().__init__()
        self.voice = recognizer is not None and recognizer is not KeyboardRecognizer
        self.worker: VoiceWorker | None = None
        if self.voice:
            assert recognizer is not None
            self.worker = VoiceWorker(recognizer, audio_dir, microphone=microphone)

    @property
    def active(self) -> bool:
        """The voice child is running (answers may come)."""
        return self.worker is not None and self.worker.alive

    @property
    def recognizer_name(self) -> str:
        return "" if self.worker is None else self.worker.recognizer_name

    def start(self, trial: int, *, keep: bool) -> None:
        """An image is on screen: answers from now on belong to ``trial``; ``keep`` false:
        practice, the answers are not saved."""
        if self.worker is not None:
            self.worker.listen(trial, keep=keep)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.pause()

    def feed(self, audio: NDArray[np.int16], trial: int, *, keep: bool = True) -> None:
        """Audio of the answer to ``trial`` from a test or a file, instead of the mic."""
        if self.worker is not None:
            self.worker.feed(audio, trial, keep=keep)

    def poll(self) -> None:
        """Emit what the child heard since the last call (the window's poll timer calls it)."""
        if self.worker is None:
            return
        was_ready = self.worker.ready
        self._emit(self.worker.poll())
        if self.worker.ready and not was_ready:
            self.ready.emit(self.worker.recognizer_name)
        if not self.worker.alive:
            self.worker.close()
            self.worker = None

    def close(self) -> None:
        """The session ends: stop the child and its microphone stream; what it heard last
        is still emitted."""
        if self.worker is not None:
            worker, self.worker = self.worker, None
            self._emit(worker.close())

    def _emit(self, events: list[Heard | VoiceProblem]) -> None:
        for event in events:
            if isinstance(event, Heard):
                self.recognized.emit(event.result, event.wav, event.trial)
            else:
                self.problem.emit(event.message, event.fatal)
