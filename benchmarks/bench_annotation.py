"""Annotation app timing (issue 5), offscreen Qt.

1. Stimulus onset error: 100 trials of the real protocol (500/200/500 ms, image
   until labelled; a simulated participant labels after 0.1 s). Prints mean and
   max error of the image onset (first paint vs. schedule) and of every phase,
   and as a baseline the lateness of a bare precise single-shot QTimer measured
   in the same run (ratio = onset error / timer lateness).
2. Gaze ingest at 1 000 Hz with the GUI running trials: frames sent by the
   simulator vs. samples in the store (lost must be 0), and the ingest rate as a
   ratio to a headless capture loop (no GUI) over the same simulator.

    python benchmarks/bench_annotation.py [--trials 100] [--ingest-s 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

from gazelab.annotation.capture import GazeCapture
from gazelab.annotation.protocol import LabelingProtocol
from gazelab.annotation.session import OpenTracker, SessionConfig
from gazelab.annotation.store import SessionStore
from gazelab.app.annotate import AnnotationWindow, Autopilot
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
from gazelab.gaze.trackers.simulator import EyeTribeSimulator
from gazelab.settings import Settings

RES = (1280, 720)


def settings(kind: str, rate: int = 60) -> Settings:
    s = Settings()
    return dataclasses.replace(
        s,
        display=DisplayGeometry.from_diagonal(27.0, RES, 700.0),
        stimulus=dataclasses.replace(s.stimulus, square_px=600),
        tracker=dataclasses.replace(s.tracker, kind=kind, rate_hz=rate),
    )


def run_until(app: QApplication, pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        time.sleep(0.0005)


def timer_lateness(app: QApplication, n: int = 100, ms: int = 200) -> list[float]:
    out: list[float] = []
    for _ in range(n):
        fired: list[float] = []
        t0 = time.monotonic()
        timer = QTimer()
        timer.setSingleShot(True)
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.timeout.connect(lambda f=fired: f.append(time.monotonic()))
        timer.start(ms)
        run_until(app, lambda f=fired: bool(f), 5)
        out.append((fired[0] - t0) * 1000 - ms)
    return out


def onset_benchmark(app: QApplication, trials: int, tmp: Path) -> None:
    cfg = SessionConfig(tmp / "onset.sqlite", "B01", f"synthetic:{trials}:0", settings("none"))
    win = AnnotationWindow(cfg, autopilot=Autopilot(view_s=0.1), skip_calibration=True,
                           microphone=False)  # fmt: skip
    win.resize(*RES)
    win.show()
    win.begin()
    run_until(app, lambda: win.mode == "done", trials * 3.0)
    sid = win.session.id
    win.finish()
    store = SessionStore(cfg.store, create=True)
    flips = [e for e in store.events(sid) if e["kind"] == "flip"]
    img = np.array([t["onset_error_ms"] for t in store.trials(sid)], dtype=float)
    base = np.array(timer_lateness(app))
    print(f"onset error over {img.size} trials (image onset = first paint vs schedule):")
    print(f"  image   mean {img.mean():6.2f} ms   max {img.max():6.2f} ms")
    for phase in ("blank1", "cross", "blank2"):
        e = np.array([f["payload"]["error_ms"] for f in flips if f["payload"]["phase"] == phase])
        print(f"  {phase:7s} mean {e.mean():6.2f} ms   max {e.max():6.2f} ms")
    print(
        f"  baseline: bare precise QTimer lateness mean {base.mean():.2f} ms, max {base.max():.2f} ms"
    )
    ratio = img.mean() / max(base.mean(), 1e-3)
    print(f"  ratio image-onset error / timer lateness (mean): {ratio:.2f}")


def ingest_benchmark(app: QApplication, seconds: float, tmp: Path) -> None:
    rate = 1000
    # -- with the GUI running trials
    with EyeTribeSimulator(port=0, rate_hz=rate, screen_px=RES) as sim:
        cfg = SessionConfig(
            tmp / "ingest.sqlite", "B02", "synthetic:400:0", settings("eyetribe", rate)
        )
        tracker = EyeTribeTracker("127.0.0.1", sim.port)
        tracker.connect()
        win = AnnotationWindow(cfg, tracker=OpenTracker(tracker), autopilot=Autopilot(view_s=0.3),
                               skip_calibration=True, microphone=False)  # fmt: skip
        win.resize(*RES)
        win.show()
        win.begin()
        t0 = time.monotonic()
        run_until(app, lambda: False, seconds)
        tracker.stop()  # stop the push, then take every remaining sample
        time.sleep(0.3)
        received = tracker.stats.frames
        sid = win.session.id
        win.finish()
        elapsed = time.monotonic() - t0
        sent = sim.frames_sent
    stored = SessionStore(cfg.store).sample_count(sid)
    trials = win.protocol.trials_done
    # -- baseline: headless capture loop on the same simulator set-up
    with EyeTribeSimulator(port=0, rate_hz=rate, screen_px=RES) as sim2:
        store = SessionStore(tmp / "base.sqlite", create=True)
        rec = store.create_session("B03", settings_toml="", seed=0, image_source="-",
                                   stimulus_order=["a"], start_local_s=0.0)  # fmt: skip
        tr = EyeTribeTracker("127.0.0.1", sim2.port)
        tr.connect()
        tr.start()
        proto = LabelingProtocol(["a"])
        cap = GazeCapture(tr, store, rec.id, proto)
        t1 = time.monotonic()
        while time.monotonic() - t1 < seconds:
            cap.poll()
            time.sleep(0.01)
        tr.stop()
        time.sleep(0.3)
        cap.close()
        tr.close()
        base_elapsed = time.monotonic() - t1
        base_sent = sim2.frames_sent
        base_stored = store.sample_count(rec.id)
    print(f"gaze ingest at {rate} Hz for {elapsed:.1f} s with the GUI running {trials} trials:")
    print(f"  frames sent {sent}, samples stored {stored}, lost {sent - stored}"
          f" (client counted {received})")  # fmt: skip
    print(f"  rate {stored / elapsed:.0f} samples/s;"
          f" headless baseline {base_stored / base_elapsed:.0f} samples/s"
          f" (sent {base_sent}, lost {base_sent - base_stored})")  # fmt: skip
    print(
        f"  ratio GUI / headless ingest rate: {(stored / elapsed) / (base_stored / base_elapsed):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--ingest-s", type=float, default=20.0)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication(["bench"])
    with tempfile.TemporaryDirectory() as d:
        onset_benchmark(app, args.trials, Path(d))
        ingest_benchmark(app, args.ingest_s, Path(d))


if __name__ == "__main__":
    main()
