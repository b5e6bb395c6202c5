"""Spoken answers in a child process: one microphone stream, end-pointing, WAVs, recognition.

A session listens to hundreds of answers. Audio servers, PortAudio and the recognisers
are native code; a fault in any of them (a stream that dies, a decoder that crashes)
must cost the voice, never the participant's screen or a recorded sample. So the
microphone (:class:`~gazelab.annotation.speech.AnswerRecorder`, one capture stream for
the whole session), the end-pointer (:class:`~gazelab.annotation.speech.UtteranceDetector`)
and the recogniser live in a child process; the session talks to it through a pipe:

* ``listen(trial, keep)`` when an image appears: audio recorded before it is dropped,
  what follows is cut into answers, each saved as ``trial####-NN.wav`` in the store's
  audio folder (unless ``keep`` is false: practice is not data) and recognised;
* ``pause()`` when the image goes: audio is dropped until the next ``listen``;
* ``feed(audio, trial, keep)``: audio from elsewhere (tests, a file) instead of the mic;
* ``poll()`` returns what happened since the last call: :class:`Heard` answers and
  :class:`VoiceProblem` warnings. A child that dies (a native crash, killed) is reported
  once as a fatal :class:`VoiceProblem`; the session goes on with key labels.

The child is started with the ``spawn`` method (a fork of a process running Qt's
threads is unsafe) and stops when the pipe closes, so it never outlives the session.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.annotation.speech import (
    SAMPLE_RATE,
    AnswerRecorder,
    LabelResult,
    SpeechError,
    SpeechRecognizer,
    UtteranceDetector,
    write_wav,
)

__all__ = ["Heard", "VoiceProblem", "VoiceWorker", "answer_wav_path"]

POLL_S = 0.02
"""How often the child reads the microphone (the end-pointer's latency floor)."""

REOPEN_TRIES = 3
"""A microphone stream that stops by itself is opened again this often in a row."""


@dataclass(frozen=True)
class Heard:
    """An answer to ``trial``: what the recogniser understood, and its WAV (or ``None``)."""

    trial: int
    result: LabelResult
    wav: str | None
    seconds: float


@dataclass(frozen=True)
class VoiceProblem:
    """Something the operator should know; ``fatal``: the voice is gone, labels by keys."""

    message: str
    fatal: bool = False


def answer_wav_path(audio_dir: Path, trial: int) -> Path:
    """The next free ``trial####-NN.wav`` for an answer to ``trial``."""
    n = len(list(audio_dir.glob(f"trial{trial:04d}-*.wav"))) if audio_dir.exists() else 0
    return audio_dir / f"trial{trial:04d}-{n + 1:02d}.wav"


class VoiceWorker:
    """The parent's handle on the voice child process (see the module docstring).

    ``recognizer``: a picklable callable that builds the recogniser in the child (a
    recogniser class, or :func:`functools.partial` of
    :func:`~gazelab.annotation.speech.recognizer_from_settings`). ``microphone``: record
    the default input device; without it only :meth:`feed` brings audio.
    """

    def __init__(
        self,
        recognizer: Callable[[], SpeechRecognizer],
        audio_dir: Path,
        *,
        microphone: bool,
        device: int | str | None = None,
    ) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_child_main,
            args=(child, recognizer, str(audio_dir), microphone, device),
            name="gazelab-voice",
            daemon=True,
        )
        self.process.start()
        child.close()
        self._dead_reported = False
        self._fatal_seen = False  # the child said why it stops: its death is not news
        self.ready = False
        self.recognizer_name = ""

    @property
    def alive(self) -> bool:
        return not self._dead_reported and self.process.is_alive()

    def _send(self, *message: Any) -> None:
        if self._dead_reported:
            return
        try:
            self._conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            pass  # the child is gone: poll() reports it

    def listen(self, trial: int, *, keep: bool = True) -> None:
        """An image is on screen: answers from now on belong to ``trial``."""
        self._send("listen", trial, keep)

    def pause(self) -> None:
        """No image on screen: audio is dropped."""
        self._send("pause")

    def feed(self, audio: NDArray[np.int16], trial: int, *, keep: bool = True) -> None:
        """Audio of the answer to ``trial`` from elsewhere than the microphone."""
        self._send("feed", np.asarray(audio, dtype=np.int16), trial, keep)

    def poll(self) -> list[Heard | VoiceProblem]:
        """What happened since the last call (never blocks)."""
        out = self._drain()
        if not self._dead_reported and not self.process.is_alive():
            out += self._drain()  # what it sent before it died
            self._dead_reported = True
            if not self._fatal_seen:  # it died without saying why: say how
                out.append(VoiceProblem(_death_message(self.process.exitcode), fatal=True))
        return out

    def _drain(self) -> list[Heard | VoiceProblem]:
        out: list[Heard | VoiceProblem] = []
        try:
            while not self._conn.closed and self._conn.poll(0):
                kind, *rest = self._conn.recv()
                if kind == "heard":
                    out.append(Heard(*rest))
                elif kind == "ready":
                    self.ready, self.recognizer_name = True, str(rest[0])
                elif kind == "problem":
                    out.append(VoiceProblem(str(rest[0]), bool(rest[1])))
                    self._fatal_seen |= bool(rest[1])
        except (EOFError, OSError):
            pass
        return out

    def close(self, timeout_s: float = 3.0) -> list[Heard | VoiceProblem]:
        """Stop the child (its microphone stream closes with it); returns what it had sent
        and was not polled yet, so no answer is lost at the end of a session."""
        self._send("close")
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(1.0)
        rest = [] if self._conn.closed else self._drain()
        self._dead_reported = True
        self._conn.close()
        return rest


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            why = signal.Signals(-exitcode).name
        except ValueError:
            why = f"signal {-exitcode}"
    else:
        why = f"exit code {exitcode}"
    return f"the voice recogniser stopped ({why}); give labels with the keys 0–7"


def _child_main(
    conn: Connection,
    make_recognizer: Callable[[], SpeechRecognizer],
    audio_dir: str,
    microphone: bool,
    device: int | str | None,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the session's to handle
    try:
        recognizer = make_recognizer()
    except Exception as exc:
        conn.send(("problem", f"the voice recogniser could not start: {exc}", True))
        return
    mic: AnswerRecorder | None = None
    if microphone:
        mic = AnswerRecorder(device=device)
        try:
            mic.start()
        except SpeechError as exc:
            conn.send(("problem", str(exc), True))
            return
    conn.send(("ready", getattr(recognizer, "name", type(recognizer).__name__)))
    _Listener(conn, recognizer, Path(audio_dir), mic).run()


class _Listener:
    """The child's loop: commands from the pipe, audio from the microphone."""

    def __init__(
        self,
        conn: Connection,
        recognizer: SpeechRecognizer,
        audio_dir: Path,
        mic: AnswerRecorder | None,
    ) -> None:
        self.conn = conn
        self.recognizer = recognizer
        self.audio_dir = audio_dir
        self.mic = mic
        self.detector = UtteranceDetector()
        self.trial: int | None = None
        self.keep = True
        self.reopened = 0  # stream restarts without a good read in between

    def run(self) -> None:
        try:
            while True:
                if self.conn.poll(POLL_S if self.mic is None or self.trial is None else 0):
                    if not self._command(self.conn.recv()):
                        return
                    continue
                if self.mic is not None:
                    self._read_microphone()
                    if self.trial is not None:
                        time.sleep(POLL_S)
        except (EOFError, OSError):
            return  # the session closed the pipe (or died): stop
        finally:
            if self.mic is not None:
                self.mic.stop()

    def _command(self, message: tuple[Any, ...]) -> bool:
        kind, *rest = message
        if kind == "close":
            return False
        if kind == "listen":
            self.trial, self.keep = int(rest[0]), bool(rest[1])
            self.detector.reset()
            if self.mic is not None:
                self.mic.drain()
        elif kind == "pause":
            self.trial = None
        elif kind == "feed":
            audio, trial, keep = rest
            if trial != self.trial:
                self.detector.reset()
            self.trial, self.keep = int(trial), bool(keep)
            self._hear(audio)
        return True

    def _read_microphone(self) -> None:
        assert self.mic is not None
        try:
            audio = self.mic.read()
        except SpeechError as exc:
            self._reopen(exc)
            return
        self.reopened = 0
        if self.trial is not None:
            self._hear(audio)

    def _reopen(self, exc: SpeechError) -> None:
        """The stream stopped by itself (an audio-server hiccup): open it again, a few times
        in a row at most; then the voice is gone and the session goes on with keys."""
        assert self.mic is not None
        for _ in range(REOPEN_TRIES):
            time.sleep(0.2)
            try:
                self.mic.start()
            except SpeechError:
                continue
            self.reopened += 1
            if self.reopened <= REOPEN_TRIES:
                self.detector.reset()
                self.conn.send(("problem", f"{exc}; the microphone was opened again", False))
                return
            break
        self.conn.send(("problem", f"{exc}; give labels with the keys 0–7", True))
        raise EOFError from exc

    def _hear(self, audio: NDArray[np.int16]) -> None:
        for utterance in self.detector.feed(audio):
            if self.trial is None:
                return
            self._answer(utterance, self.trial, self.keep)

    def _answer(self, utterance: NDArray[np.int16], trial: int, keep: bool) -> None:
        wav: Path | None = None
        if keep:
            wav = answer_wav_path(self.audio_dir, trial)
            try:
                write_wav(wav, utterance)
            except OSError as exc:  # a full disk: recognise anyway, without the recording
                wav = None
                self.conn.send(("problem", f"cannot save the answer's audio: {exc}", False))
        try:
            result = self.recognizer.recognize(utterance)
        except Exception as exc:
            last = traceback.format_exception_only(exc)[-1].strip()
            self.conn.send(("problem", f"the recogniser failed on an answer: {last}", False))
            result = LabelResult(None, "", 0.0)
        seconds = utterance.size / SAMPLE_RATE
        self.conn.send(("heard", trial, result, None if wav is None else str(wav), seconds))
