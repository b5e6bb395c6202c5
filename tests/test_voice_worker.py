"""The voice child process: answers come back with their trial, a crash there is a warning.

The recogniser and the microphone run in a child process
(:mod:`gazelab.annotation.voice_worker`); these tests feed it audio instead of a
microphone and kill it the way a native fault would (SIGSEGV).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.speech import SAMPLE_RATE, LabelResult
from gazelab.annotation.voice_worker import Heard, VoiceProblem, VoiceWorker, answer_wav_path


class LoudIsHappy:
    """A recogniser for tests: any answer louder than -20 dBFS is 'happy', else not understood."""

    name = "loud-is-happy"

    def recognize(self, audio, rate=SAMPLE_RATE):  # type: ignore[no-untyped-def]
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        return LabelResult("happy" if rms > 3000 else None, "happy" if rms > 3000 else "", 1.0)


class Broken:
    name = "broken"

    def recognize(self, audio, rate=SAMPLE_RATE):  # type: ignore[no-untyped-def]
        raise RuntimeError("decoder state corrupt")


def answer(level: float, seconds: float = 0.6) -> np.ndarray:
    """Silence, a tone of ``level`` (peak, int16 units) for ``seconds``, silence."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = (level * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    quiet = np.zeros(int(0.6 * SAMPLE_RATE), dtype=np.int16)
    return np.concatenate([quiet, tone, quiet])


def wait_for(worker: VoiceWorker, n: int, timeout: float = 20.0) -> list[Heard | VoiceProblem]:
    got: list[Heard | VoiceProblem] = []
    end = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        got += worker.poll()
        time.sleep(0.02)
    return got


def test_fed_answers_come_back_with_their_trial_and_wav(tmp_path: Path) -> None:
    worker = VoiceWorker(LoudIsHappy, tmp_path, microphone=False)
    try:
        worker.feed(answer(10000), trial=3)
        worker.feed(answer(10000), trial=3)  # said twice: a second WAV
        worker.feed(answer(10000), trial=4, keep=False)  # practice: no WAV
        got = wait_for(worker, 3)
    finally:
        rest = worker.close()
    heard = [g for g in got + rest if isinstance(g, Heard)]
    assert [(h.trial, h.result.label) for h in heard] == [(3, "happy"), (3, "happy"), (4, "happy")]
    assert [Path(h.wav).name if h.wav else None for h in heard] == [
        "trial0003-01.wav", "trial0003-02.wav", None,
    ]  # fmt: skip
    assert all(1.0 < h.seconds < 1.4 for h in heard)  # 0.6 s + 0.2 s pre-roll + 0.4 s end
    assert worker.recognizer_name == "loud-is-happy"
    assert answer_wav_path(tmp_path, 3).name == "trial0003-03.wav"


def test_a_recogniser_error_is_a_warning_and_the_answer_not_understood(tmp_path: Path) -> None:
    worker = VoiceWorker(Broken, tmp_path, microphone=False)
    try:
        worker.feed(answer(10000), trial=0)
        got = wait_for(worker, 2)
    finally:
        worker.close()
    problems = [g for g in got if isinstance(g, VoiceProblem)]
    heard = [g for g in got if isinstance(g, Heard)]
    assert len(problems) == 1 and not problems[0].fatal
    assert "decoder state corrupt" in problems[0].message
    assert len(heard) == 1 and heard[0].result.label is None


def test_a_native_crash_of_the_voice_child_is_one_fatal_warning(tmp_path: Path) -> None:
    worker = VoiceWorker(LoudIsHappy, tmp_path, microphone=False)
    assert wait_for(worker, 0, timeout=0.0) == []
    end = time.monotonic() + 20
    while not worker.ready and time.monotonic() < end:
        worker.poll()
        time.sleep(0.02)
    os.kill(worker.process.pid, signal.SIGSEGV)
    got = wait_for(worker, 1)
    assert [type(g) for g in got] == [VoiceProblem]
    assert got[0].fatal and "SIGSEGV" in got[0].message and "keys" in got[0].message
    assert not worker.alive and worker.poll() == []  # reported once
    worker.feed(answer(10000), trial=1)  # a dead child: nothing raised
    worker.close()


def test_a_recogniser_that_cannot_start_is_fatal(tmp_path: Path) -> None:
    worker = VoiceWorker(_NoModel, tmp_path, microphone=False)
    got = wait_for(worker, 1)
    worker.process.join(10)
    assert worker.poll() == []  # its exit is not reported a second time
    worker.close()
    assert len(got) == 1 and got[0].fatal and "model folder missing" in got[0].message


class _NoModel:
    def __init__(self) -> None:
        raise OSError("model folder missing")


@pytest.mark.gui
def test_the_window_goes_on_with_keys_when_the_voice_child_crashes(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    from gazelab.annotation.protocol import Phase
    from gazelab.annotation.session import SessionConfig
    from gazelab.annotation.store import SessionStore
    from gazelab.app.annotate import AnnotationWindow
    from gazelab.tests.test_annotate_gui import small_settings

    cfg = SessionConfig(tmp_path / "study.sqlite", "P01", "synthetic:3:3", small_settings())
    win = AnnotationWindow(cfg, recognizer=LoudIsHappy, skip_calibration=True, microphone=False)
    qtbot.addWidget(win)
    win.resize(640, 480)
    win.show()
    qtbot.waitUntil(lambda: win.listener.worker is not None and win.listener.worker.ready,
                    timeout=20_000)  # fmt: skip
    qtbot.waitUntil(lambda: win.recognizer_name == "loud-is-happy", timeout=5000)
    from gazelab.app.annotate_screens import instructions

    assert "[voice: loud-is-happy]" in "\n".join(instructions(win))  # the start screen says it
    win.begin()
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
    win.feed_audio(answer(10000))  # trial 0 answered by voice
    qtbot.waitUntil(lambda: win.protocol.current_label == "happy", timeout=20_000)
    win.advance()
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
    os.kill(win.listener.worker.process.pid, signal.SIGSEGV)
    qtbot.waitUntil(lambda: not win.voice, timeout=10_000)
    assert "SIGSEGV" in win.warning and "keys" in win.warning
    qtbot.keyClick(win, Qt.Key.Key_3)  # the operator's keys still label
    assert win.protocol.current_label is not None
    sid = win.session.id
    win.finish()
    with SessionStore(tmp_path / "study.sqlite") as store:
        sources = [lab.source for lab in store.labels(sid)]
        problems = [e["payload"] for e in store.events(sid) if e["kind"] == "voice_problem"]
        ready = [e["payload"] for e in store.events(sid) if e["kind"] == "voice_ready"]
    assert sources == ["voice", "key"]
    assert ready == [{"recognizer": "loud-is-happy"}]  # the session records the recogniser
    assert len(problems) == 1 and problems[0]["fatal"] is True
