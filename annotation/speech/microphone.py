"""The microphone: one input stream for a whole session, and energy-based end-pointing
that cuts it into answers.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.annotation.speech.base import SAMPLE_RATE, SpeechError


class AnswerRecorder:
    """The default microphone (sounddevice), 16 kHz mono int16: one input stream for as long
    as it is open.

    ``start()`` opens the stream (once: on an open stream it only drops what was recorded
    so far, so a session that listens to many answers holds one capture stream, not one per
    answer); ``read()`` returns what arrived since the last read; ``stop()`` closes the
    stream and returns what was not read. At most ``max_s`` seconds of unread audio are
    kept (the oldest is dropped), so memory stays bounded when nobody reads.
    """

    def __init__(
        self, rate: int = SAMPLE_RATE, device: int | str | None = None, *, max_s: float = 30.0
    ) -> None:
        self.rate = rate
        self.device = device
        self.max_samples = int(max_s * rate)
        self._chunks: deque[NDArray[np.int16]] = deque()
        self._n = 0  # samples held in _chunks
        self._lock = threading.Lock()
        self._stream: Any = None
        self.overflows = 0  # callbacks that reported lost input (the reader fell behind)

    def start(self) -> None:
        """Open the stream, or, when it is open, drop what was recorded so far."""
        if self._stream is not None:
            self.drain()
            return
        try:
            import sounddevice as sd
        except OSError as exc:
            raise SpeechError(f"no audio system ({exc}); use --voice keys") from exc
        self.drain()

        def callback(indata: NDArray[np.int16], frames: int, time_: Any, status: Any) -> None:
            chunk = indata[:, 0].copy()
            with self._lock:
                if status:
                    self.overflows += 1
                self._chunks.append(chunk)
                self._n += chunk.size
                while self._n > self.max_samples and len(self._chunks) > 1:
                    self._n -= self._chunks.popleft().size

        try:
            self._stream = sd.InputStream(
                samplerate=self.rate,
                channels=1,
                dtype="int16",
                device=self.device,
                callback=callback,
            )
            self._stream.start()
        except Exception as exc:  # PortAudioError has no stable import path
            self._close_stream()
            raise SpeechError(f"cannot open the microphone: {exc}; use --voice keys") from exc

    @property
    def active(self) -> bool:
        return self._stream is not None

    def drain(self) -> None:
        """Drop the audio recorded so far."""
        with self._lock:
            self._chunks.clear()
            self._n = 0

    def read(self) -> NDArray[np.int16]:
        """Audio recorded since the last ``read`` (for streaming end-pointing).

        Raises :class:`SpeechError` when the stream has stopped by itself (the device went
        away or the audio server died)."""
        with self._lock:
            new = list(self._chunks)
            self._chunks.clear()
            self._n = 0
        stream = self._stream
        if stream is not None and not new and not stream.active:
            self._close_stream()
            raise SpeechError(
                "the microphone stopped delivering audio (device or audio server gone)"
            )
        return np.concatenate(new) if new else np.zeros(0, dtype=np.int16)

    def stop(self) -> NDArray[np.int16]:
        """Close the stream; returns the audio that was not read."""
        self._close_stream()
        with self._lock:
            rest = list(self._chunks)
            self._chunks.clear()
            self._n = 0
        return np.concatenate(rest) if rest else np.zeros(0, dtype=np.int16)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()


class UtteranceDetector:
    """Energy-based end-pointing: cuts a microphone stream into answers.

    Frames of ``frame_ms`` count as speech when their level is above both
    ``min_dbfs`` and the running noise floor plus ``margin_db``; an answer
    ends after ``end_silence_ms`` of non-speech, and must hold at least
    ``min_speech_ms`` of speech. ``pre_roll_ms`` of audio before the onset is
    kept so word onsets are not clipped.
    """

    def __init__(
        self,
        rate: int = SAMPLE_RATE,
        *,
        frame_ms: float = 20.0,
        min_dbfs: float = -45.0,
        margin_db: float = 12.0,
        min_speech_ms: float = 120.0,
        end_silence_ms: float = 400.0,
        pre_roll_ms: float = 200.0,
        max_ms: float = 6000.0,
    ) -> None:
        self.rate = rate
        self.frame = max(1, int(rate * frame_ms / 1000))
        self.min_dbfs = min_dbfs
        self.margin_db = margin_db
        self.min_speech = int(min_speech_ms / frame_ms)
        self.end_silence = int(end_silence_ms / frame_ms)
        self.pre_roll = int(pre_roll_ms / frame_ms)
        self.max_frames = int(max_ms / frame_ms)
        self.noise_db = -60.0
        self._buf = np.zeros(0, dtype=np.int16)
        self._history: list[NDArray[np.int16]] = []
        self._current: list[NDArray[np.int16]] | None = None
        self._speech = 0
        self._silence = 0

    def reset(self) -> None:
        self._buf = np.zeros(0, dtype=np.int16)
        self._history, self._current = [], None
        self._speech = self._silence = 0

    @staticmethod
    def dbfs(frame: NDArray[np.int16]) -> float:
        rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) if frame.size else 0.0
        return 20.0 * np.log10(max(rms, 1e-3) / 32768.0)

    def feed(self, chunk: NDArray[np.int16]) -> list[NDArray[np.int16]]:
        """Add audio; returns every answer that ended inside it."""
        self._buf = np.concatenate([self._buf, np.asarray(chunk, dtype=np.int16).ravel()])
        done: list[NDArray[np.int16]] = []
        while self._buf.size >= self.frame:
            frame, self._buf = self._buf[: self.frame], self._buf[self.frame :]
            level = self.dbfs(frame)
            speech = level > max(self.min_dbfs, self.noise_db + self.margin_db)
            if not speech:  # track the floor slowly up, quickly down
                self.noise_db += (0.05 if level > self.noise_db else 0.5) * (level - self.noise_db)
            if self._current is None:
                self._history = [*self._history[-self.pre_roll :], frame]
                if speech:
                    self._current, self._speech, self._silence = list(self._history), 1, 0
                continue
            self._current.append(frame)
            if speech:
                self._speech += 1
                self._silence = 0
            else:
                self._silence += 1
            if self._silence >= self.end_silence or len(self._current) >= self.max_frames:
                if self._speech >= self.min_speech:
                    done.append(np.concatenate(self._current))
                self._current, self._history = None, []
        return done
