"""A long annotation session with spoken answers, as a lab runs one (test and benchmark driver).

Run in a process whose environment reaches a PulseAudio server (see
:mod:`gazelab.tests.pulse_server`): the annotation window (offscreen) records the
default microphone through the voice child process, the simulated Eye Tribe records
gaze, and at the trials named in ``--speak`` a label WAV is played into the server's
sink with ``paplay`` while the image is on screen; the driver then waits for the spoken
label and advances. When the window asks for a repeat ("not understood"), the WAV is
played again, as a participant says it again, up to ``--repeats`` times. At every other
trial a key label is given at once. Every ``--report-every`` trials it prints one JSON
line: trial, RSS of the window's process and of the voice child (MiB), threads of each,
capture streams the audio server holds; at
the end one JSON line with what each spoken trial was heard as, and how often it was asked
again (with what the recogniser heard then).

    python -m gazelab.tests.voice_soak --trials 200 --store S.sqlite \
        --speak 1:neutral.wav,100:neutral.wav --report-every 50
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gazelab.tests.pulse_server import capture_streams


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--store", required=True)
    ap.add_argument("--speak", default="", help="TRIAL:WAV,... (trials count from 1)")
    ap.add_argument("--report-every", type=int, default=50)
    ap.add_argument("--answer-timeout", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=1, help="plays of a WAV again when asked")
    args = ap.parse_args(argv)

    from PySide6.QtCore import QTimer

    from gazelab.annotation.protocol import LabelAnswer, Phase
    from gazelab.annotation.session import SessionConfig
    from gazelab.app.annotate import AnnotationWindow
    from gazelab.app.qt import application
    from gazelab.settings import Settings

    speak = {int(t): w for t, w in (p.split(":", 1) for p in args.speak.split(",") if p)}
    s = Settings()
    settings = dataclasses.replace(
        s,
        protocol=dataclasses.replace(s.protocol, blank1_ms=60.0, cross_ms=40.0, blank2_ms=60.0),
        tracker=dataclasses.replace(s.tracker, kind="sim", rate_hz=60),
        voice=dataclasses.replace(s.voice, backend="default"),
    )
    app = application()
    n = args.trials
    config = SessionConfig(Path(args.store), "P01", f"synthetic:{n}:3:64", settings)
    win = AnnotationWindow(config, skip_calibration=True, microphone=True)
    win.resize(800, 600)
    win.show()
    heard: dict[int, str | None] = {}
    repeats: dict[int, list[str]] = {}  # trial -> what was heard each time it was asked again
    state: dict[str, float | int | None] = {"trial": None, "since": 0.0, "streams": 0}

    def report(trial: int) -> None:
        child = win.listener.worker.process.pid if win.listener.worker is not None else None
        row = {
            "trial": trial,
            "rss_mib": round(_rss_mib_safe(None), 1),
            "threads": _threads(_self_pid()),
            "voice_rss_mib": round(_rss_mib_safe(child), 1) if child else None,
            "voice_threads": _threads(child) if child else None,
            "streams": capture_streams(dict(os.environ)),
        }
        print(json.dumps(row), flush=True)

    def on_recognized(result, _wav, trial_index) -> None:  # type: ignore[no-untyped-def]
        trial = trial_index + 1
        if result.label is not None or trial not in speak or trial != state["trial"]:
            return
        asked = repeats.setdefault(trial, [])
        asked.append(result.text)
        if len(asked) <= args.repeats:  # the participant says it again
            state["since"] = time.monotonic()
            subprocess.Popen(["paplay", speak[trial]])

    win.listener.recognized.connect(on_recognized)

    def step() -> None:
        p = win.protocol
        if win.mode == "done" or p.phase is not Phase.IMAGE:
            if win.mode == "done":
                finish()
            return
        trial = p.trial_index + 1  # 1-based, as people count
        now = time.monotonic()
        if state["trial"] != trial:
            state["trial"], state["since"] = trial, now
            if trial in speak:
                state["streams"] = max(int(state["streams"] or 0),
                                       capture_streams(dict(os.environ)))  # fmt: skip
                subprocess.Popen(["paplay", speak[trial]])
            if args.report_every and trial % args.report_every == 0:
                report(trial)
        if trial in speak:
            label = p.current_label
            if label is None and now - float(state["since"] or 0) < args.answer_timeout:
                return
            heard[trial] = label
            if label is None:  # not heard in time: the operator types it, as in a lab
                win.give_label(LabelAnswer("happy", source="key", text="1"))
        else:
            win.give_label(LabelAnswer("happy", source="key", text="1"))
        win.advance()

    def finish() -> None:
        timer.stop()
        sid = win.session.id
        streams_open = capture_streams(dict(os.environ))
        recognizer = win.listener.recognizer_name
        win.finish()
        print(json.dumps({"session": sid, "heard": heard, "repeats": repeats,
                          "max_streams": state["streams"],
                          "streams_during": streams_open, "voice": win.voice,
                          "recognizer": recognizer}), flush=True)  # fmt: skip
        app.quit()

    timer = QTimer()
    timer.timeout.connect(step)
    timer.start(20)

    def begin_when_ready() -> None:  # as an operator starts once the voice is up
        worker = win.listener.worker
        if worker is None or worker.ready or not worker.alive:
            win.begin()
        else:
            QTimer.singleShot(100, begin_when_ready)

    QTimer.singleShot(200, begin_when_ready)
    app.exec()
    return 0


def _self_pid() -> int:
    return os.getpid()


def _rss_mib_safe(pid: int | None) -> float:
    try:
        return _rss_mib(_self_pid() if pid is None else pid)
    except OSError:
        return float("nan")


if __name__ == "__main__":
    sys.exit(main())
