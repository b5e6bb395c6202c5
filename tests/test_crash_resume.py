"""A session killed with SIGKILL mid-trial resumes at the right image with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.store import SessionStore
from gazelab.gaze.trackers.simulator import EyeTribeSimulator

pytestmark = pytest.mark.gui
RATE = 120
BATCH_MS = 50.0  # the default tracker.sample_batch_ms
POLL_MS = 10.0


def annotate(store: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "gazelab.app.cli", "annotate", "--no-dialog", "--windowed",
           "--store", str(store), "--participant", "P07", "--images", "synthetic:8:1",
           "--tracker", f"eyetribe:127.0.0.1:{port}", "--skip-calibration",
           "--resolution", "800x600", "--autopilot", "0.6", *extra]  # fmt: skip
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def started_session(store_path: Path) -> tuple[SessionStore, int]:
    """The store a running ``annotate`` created, and its session id, once both exist."""
    wait_for(store_path.exists, 60, "the store")
    store = SessionStore(store_path)
    wait_for(lambda: len(store.sessions()) == 1, 60, "the session")
    return store, store.sessions()[0].id


def kill_during_image(  # type: ignore[no-untyped-def]
    proc, sim, store: SessionStore, sid: int, trial: int, delay_s: float, timeout: float = 10
) -> float:
    """SIGKILL ``proc`` ``delay_s`` after trial ``trial``'s image is stored as shown;
    returns the simulator's tracker time at the kill, ms."""
    wait_for(lambda: any(e["kind"] == "image" and e["trial_index"] == trial
                         for e in store.events(sid)), timeout, "the image")  # fmt: skip
    time.sleep(delay_s)
    kill_ms = float(sim._tracker_time_ms())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return kill_ms


# slow tier: quick: test_controller's test_the_headless_runner_resumes_where_it_stopped
@pytest.mark.slow
def test_sigkill_mid_trial_then_resume(out_dir: Path) -> None:
    store_path = out_dir / "crash.sqlite"
    for p in out_dir.glob("crash.sqlite*"):
        p.unlink()
    with EyeTribeSimulator(port=0, rate_hz=RATE, screen_px=(800, 600)) as sim:
        proc = annotate(store_path, sim.port)
        try:
            store, sid = started_session(store_path)
            wait_for(lambda: len(store.labels(sid)) >= 3, 60, "three labels")
            n3 = len(store.labels(sid))
            # now in the middle of trial 3: wait until its image is on screen, then kill
            kill_ms = kill_during_image(proc, sim, store, sid, n3, 0.25)
        finally:
            if proc.poll() is None:
                proc.kill()
        labels_before = store.labels(sid)
        samples_before = store.samples(sid)
        events_before = store.events(sid)
        n_before = len(labels_before)
        assert n_before == n3 and proc.returncode == -signal.SIGKILL

        t = np.sort(samples_before["time_ms"])
        steps = np.diff(t)
        missing_ms = kill_ms - t[-1]
        report = {
            "samples_before_kill": int(t.size),
            "largest_step_ms": float(steps.max()),
            "missing_at_kill_ms": float(missing_ms),
            "labels_before_kill": n_before,
        }
        # contiguous: no sample missing inside what was committed ...
        assert steps.max() <= 1000 / RATE * 1.5 + 1, report
        # ... and only the last, uncommitted batch missing at the end (about 60 ms; a loaded
        # machine delays the commit timer, so the bound here is loose: the <= 100 ms goal is
        # measured over many kills by benchmarks/bench_crash_kill.py)
        assert missing_ms <= 3 * BATCH_MS + POLL_MS + 3 * 1000 / RATE, report

        proc2 = annotate(store_path, sim.port, "--resume", str(sid))
        out, err = proc2.communicate(timeout=120)
        assert proc2.returncode == 0, err.decode()[-2000:]
    store = SessionStore(store_path)
    labels = store.labels(sid)
    assert labels[:n_before] == labels_before  # nothing before the kill changed
    assert [lab.trial_index for lab in labels] == list(range(8))  # each labelled once
    resume = [e for e in store.events(sid) if e["kind"] == "session_resume"]
    assert len(resume) == 1 and resume[0]["trial_index"] == n_before  # the right image
    order = store.session(sid).stimulus_order
    first_after = next(e for e in store.events(sid)
                       if e["kind"] == "image" and e["local_s"] > resume[0]["local_s"])  # fmt: skip
    assert first_after["trial_index"] == n_before and order[n_before]
    assert store.events(sid)[: len(events_before)] == events_before
    after = store.samples(sid)
    assert after["time_ms"].size > samples_before["time_ms"].size
    assert np.isin(samples_before["time_ms"], after["time_ms"]).all()
    report["samples_after_resume"] = int(after["time_ms"].size)

    # the dead time is one recording gap, from the last record before the kill to the resume
    (gap,) = store.gaps(sid)
    opened = [e for e in store.events(sid) if e["kind"] == "app_open"]
    assert gap["reason"] == "the app stopped (crash or kill)"
    last_before = max(float(samples_before["local_s"].max()),
                      max(e["local_s"] for e in events_before))  # fmt: skip
    assert gap["start_local_s"] == pytest.approx(last_before)
    assert gap["end_local_s"] == pytest.approx(opened[-1]["local_s"])
    # the cut-short viewing of the re-shown image is kept, marked, and not analysed
    (cut,) = (e for e in store.events(sid) if e["kind"] == "viewing_interrupted")
    assert cut["trial_index"] == n_before
    marked = after["phase"] == "interrupted-image"
    kept = (after["trial_index"] == n_before) & np.char.startswith(
        after["phase"].astype(str), "interrupted-"
    )
    assert kept.sum() == cut["payload"]["samples"] > 0 and marked.sum() > 0
    image = store.samples(sid, trial_index=n_before, phase="image")
    first_after_s = first_after["local_s"]
    assert image["local_s"].size > 0 and (image["local_s"] >= first_after_s - 0.05).all()
    # data loss within the recorded time: the re-shown viewing alone, no dead time
    from gazelab.annotation.sessions import compute_trial_quality, summarize_session

    quality = {q.trial_index: q for q in compute_trial_quality(store, sid, save=False)}
    assert quality[n_before].loss_pct < 30.0, quality[n_before]
    assert quality[n_before].duration_s < 2.0
    summary = summarize_session(store, sid)
    assert summary.gaps == 1 and summary.gap_s == pytest.approx(
        gap["end_local_s"] - gap["start_local_s"]
    )
    assert summary.loss_pct < 30.0
    report["trial_loss_pct"] = quality[n_before].loss_pct
    report["session_loss_pct"] = summary.loss_pct
    (out_dir / "crash_report.json").write_text(json.dumps(report, indent=2))
    print(report)
