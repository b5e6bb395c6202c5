"""LSL ingest during a GUI annotation session.

Runs the real annotation window (offscreen Qt, 1920×1080, 8 synthetic faces, a
simulated participant labelling after 0.5 s) with the ``lsl-sim`` tracker — an
LSL outlet in this process read through the real LSL inlet — at 1200 Hz, and the
same session at 60 Hz as the baseline measured in the same run. Prints, per rate:
samples sent by the outlet (from its start, before the session opens the stream
too), received by the inlet (by the session's end), lost
(gaps in the LSL timestamps), dropped (buffer full), stored in the session store;
the event loop's frame time while trials run (the interval of a 60 Hz precise
timer, i.e. when a repaint could happen: p50/p99), the stimulus-onset error the
store records per phase (p99), and the cost of one repaint (p99). The stimulus is
static, so Qt repaints only at phase changes; the timer measures how late the
loop would be to paint. Target: 0 samples lost or dropped at 1200 Hz, and a
frame-time p99 within 1.5× of the 60 Hz baseline.

    python benchmarks/bench_lsl_ingest.py
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np


def run_session(rate_hz: int, folder: Path) -> dict[str, float]:
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    from gazelab.annotation.session import SessionConfig
    from gazelab.annotation.store import SessionStore
    from gazelab.app.annotate import AnnotationWindow, Autopilot
    from gazelab.app.qt import application
    from gazelab.settings import Settings

    s = Settings()
    s = dataclasses.replace(
        s, tracker=dataclasses.replace(s.tracker, kind="lsl-sim", rate_hz=rate_hz)
    )
    cfg = SessionConfig(folder / "study.sqlite", f"P{rate_hz}", "synthetic:8:1", s)
    paints: list[float] = []
    costs: list[float] = []

    class Timed(AnnotationWindow):
        def paintEvent(self, event):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            super().paintEvent(event)
            if self.mode == "trials":
                paints.append(t)
                costs.append(time.perf_counter() - t)

    app = application()
    win = Timed(cfg, autopilot=Autopilot(view_s=0.5), skip_calibration=True, microphone=False)
    win.resize(1920, 1080)
    win.show()
    ticks: list[float] = []
    ticker = QTimer(win)
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.timeout.connect(
        lambda: ticks.append(time.perf_counter()) if win.mode == "trials" else None
    )
    ticker.start(16)
    QTimer.singleShot(100, win.begin)
    t_end = time.monotonic() + 120
    received_at_end = 0
    while time.monotonic() < t_end:
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
        if win.mode == "done":
            received_at_end = win.ctl.tracker.tracker.stats.frames
            break
    opened = win.ctl.tracker
    sent = opened.simulator.samples_sent
    stats = opened.tracker.stats
    sid = win.ctl.session_id
    win.finish()
    store = SessionStore(folder / "study.sqlite")
    stored = store.sample_count(sid)
    onset = [tr["onset_error_ms"] for tr in store.trials(sid) if tr["onset_error_ms"] is not None]
    frame = np.diff(np.asarray(ticks)) * 1000
    return {
        "sent": sent, "received": received_at_end, "lost": stats.samples_lost,
        "dropped": stats.samples_dropped, "stored": stored,
        "frame_p50": float(np.percentile(frame, 50)), "frame_p99": float(np.percentile(frame, 99)),
        "onset_p99": float(np.percentile(onset, 99)),
        "paint_p99": float(np.percentile(np.asarray(costs) * 1000, 99)), "ticks": len(ticks),
    }  # fmt: skip


def main() -> None:
    rows = {}
    for rate in (60, 1200):
        with tempfile.TemporaryDirectory() as tmp:
            rows[rate] = run_session(rate, Path(tmp))
    for rate, r in rows.items():
        print(f"{rate:5d} Hz: sent {r['sent']}, received {r['received']}, lost {r['lost']}, "
              f"dropped {r['dropped']}, stored {r['stored']}; frame time p50 {r['frame_p50']:.1f}"
              f" ms, p99 {r['frame_p99']:.1f} ms ({r['ticks']} ticks); onset error p99 "
              f"{r['onset_p99']:.1f} ms; paint p99 {r['paint_p99']:.2f} ms")  # fmt: skip
    ratio = rows[1200]["frame_p99"] / rows[60]["frame_p99"]
    print(f"frame-time p99 at 1200 Hz / at 60 Hz: {ratio:.2f}")


if __name__ == "__main__":
    main()
