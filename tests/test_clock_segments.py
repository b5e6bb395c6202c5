"""Tracker clock segments: a clock that jumps inside a trial (a restarted Eye Tribe server
counts from 0 again) starts a new segment with a recorded gap, and analysis runs per
segment. The last test restarts a real Eye Tribe server process mid-image."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gazelab.analysis.human import detect_by_clock_segment
from gazelab.gaze.clock_segments import (
    ClockJumpWatch,
    clock_segments,
    continuous_time_ms,
    jump_rows,
    split_by_clock,
)
from gazelab.gaze.fixations import detect_fixations
from gazelab.tests.tracker_server_proc import start_server, stop_server


# -- the pure functions ------------------------------------------------------------------------
def test_backward_and_large_forward_jumps_split_but_gaps_do_not() -> None:
    t = np.array([100.0, 116.7, 133.3, 10.0, 26.7, 43.3, 9000.0, 9016.7])
    loc = np.array([0.0, 0.0167, 0.0333, 1.2, 1.2167, 1.2333, 1.25, 1.2667])
    assert clock_segments(t, loc).tolist() == [[0, 3], [3, 6], [6, 8]]
    # a real 5 s gap: both clocks advance alike, one segment
    t2 = np.array([0.0, 16.7, 5016.7, 5033.3])
    loc2 = np.array([0.0, 0.0167, 5.0167, 5.0333])
    assert clock_segments(t2, loc2).tolist() == [[0, 4]]
    # without reception times, a forward step over the tolerance splits
    assert jump_rows(t2).tolist() == [2]
    assert jump_rows(t2, max_jump_ms=10_000).tolist() == []
    # the tolerance: a late-read sample followed by a prompt one is no jump
    t3 = np.array([0.0, 16.7, 33.3, 50.0])
    loc3 = np.array([0.0, 0.6, 0.6001, 0.6002])  # read 0.58 s late, then two at once
    assert clock_segments(t3, loc3).tolist() == [[0, 4]]
    assert clock_segments(np.zeros(0)).shape == (0, 2)


def test_non_finite_times_stay_in_their_segment() -> None:
    t = np.array([0.0, 10.0, np.nan, 20.0, 3.0, np.nan, 13.0])
    assert jump_rows(t).tolist() == [4]
    cont = continuous_time_ms(t)  # no reception clock: one median step between segments
    assert cont[[0, 1, 3, 4, 6]].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert np.isnan(cont[[2, 5]]).all()


def test_continuous_time_places_segments_by_the_reception_clock() -> None:
    t = np.array([5000.0, 5010.0, 5020.0, 40.0, 50.0])
    loc = np.array([10.0, 10.01, 10.02, 11.52, 11.53])
    cont = continuous_time_ms(t, loc)
    assert cont.tolist() == pytest.approx([5000.0, 5010.0, 5020.0, 6520.0, 6530.0])
    parts = split_by_clock({"time_ms": t, "local_s": loc, "x": np.arange(5.0)})
    assert [a for a, _ in parts] == [0, 3]
    assert parts[1][1]["tracker_time_ms"].tolist() == [40.0, 50.0]
    assert parts[1][1]["x"].tolist() == [3.0, 4.0]
    assert parts[1][1]["time_ms"].tolist() == pytest.approx([6520.0, 6530.0])


def test_watch_finds_jumps_within_and_between_batches() -> None:
    w = ClockJumpWatch()
    assert w.feed([0.0, 16.7, 33.3], [0.0, 0.0167, 0.0333]) == []
    (j,) = w.feed([5.0, 21.7], [0.9, 0.9167])  # back, across the batch boundary
    assert (j.before_ms, j.after_ms, j.start_s, j.end_s) == (33.3, 5.0, 0.0333, 0.9)
    assert "jumped back 28 ms" in j.reason
    (k,) = w.feed([21.7 + 60_000.0], [0.95])  # a clock set forward a minute
    assert "jumped forward 60000 ms" in k.reason
    assert w.feed([], []) == []


def fixation_run(t0: float, n: int, x: float) -> dict[str, np.ndarray]:
    t = t0 + np.arange(n) * (1000.0 / 60)
    return {"time_ms": t, "x": np.full(n, x), "y": np.full(n, 300.0), "valid": np.ones(n, bool)}


def test_detection_per_segment_on_one_timeline() -> None:
    a = fixation_run(4000.0, 30, 200.0)  # 500 ms at x=200 on the old clock
    b = fixation_run(20.0, 30, 900.0)  # then the tracker restarted: 500 ms at x=900
    samples = {k: np.r_[a[k], b[k]] for k in a}
    samples["local_s"] = np.r_[np.arange(30) / 60, 0.8 + np.arange(30) / 60]
    with pytest.raises(ValueError, match="non-decreasing"):
        detect_fixations(samples, "idt")  # the whole trial at once: what analysis did
    fx = detect_by_clock_segment(samples, "idt", None)
    assert fx["x_px"].tolist() == [200.0, 900.0]
    assert fx["first_sample"].tolist() == [0, 30]
    assert fx["onset_ms"].tolist() == pytest.approx([4000.0, 4800.0])  # 0.8 s later
    assert fx["duration_ms"].tolist() == pytest.approx([483.33, 483.33], abs=0.01)


def test_capture_records_each_jump_as_a_gap_and_a_real_gap_as_none() -> None:
    from types import SimpleNamespace

    from gazelab.annotation.capture import GazeCapture
    from gazelab.gaze.trackers.base import GazeSample

    batches = [
        [GazeSample(t, 10 + t / 1000, 1.0, 1.0) for t in (0.0, 16.7, 33.3)],
        [GazeSample(t, 10 + t / 1000, 1.0, 1.0) for t in (5033.3, 5050.0)],  # a real 5 s gap
        [GazeSample(t, 15.1 + t / 1000, 1.0, 1.0) for t in (4.0, 20.7)],  # restarted: back
        [GazeSample(t, 15.2, 1.0, 1.0) for t in (90_000.0,)],  # set forward 90 s
    ]
    tracker = SimpleNamespace(drain=lambda: batches.pop(0) if batches else [], connected=True)
    gaps: list[tuple[float, float | None, str]] = []
    events: list[str] = []
    store = SimpleNamespace(
        add_gap=lambda sid, a, b, why: gaps.append((a, b, why)),
        add_event=lambda sid, kind, t, **kw: events.append(kind),
        add_tagged_samples=lambda sid, batch: len(batch),
    )
    protocol = SimpleNamespace(trial_index=0, phase=SimpleNamespace(value="image"),
                               phase_at=lambda t: (0, "image"))  # fmt: skip
    capture = GazeCapture(tracker, store, 1, protocol, batch_ms=0.0, clock=lambda: 20.0)  # type: ignore[arg-type]
    for _ in range(5):
        capture.poll()
    assert [g[2].split(" (")[0] for g in gaps] == [
        "tracker clock jumped back 5046 ms",
        "tracker clock jumped forward 89979 ms",
    ]
    assert gaps[0][:2] == pytest.approx((15.05, 15.104))
    assert events == ["tracker_gap", "tracker_gap"]
    assert capture.warning is not None and "clock jumped forward" in capture.warning


# -- a real Eye Tribe server restarted mid-image -------------------------------------------------
def restart_after_image_onset(
    store_path: Path, proc: Any, port: int, into_s: float, done: dict[str, Any]
) -> None:
    """Wait for the first image onset in the store, ``into_s`` more seconds, then SIGKILL the
    server process and start a new one on the same port (its clock starts at 0)."""
    try:
        deadline = time.monotonic() + 60
        onset = None
        while onset is None and time.monotonic() < deadline:
            time.sleep(0.02)
            if not store_path.exists():
                continue
            try:
                with sqlite3.connect(store_path, timeout=5) as db:
                    row = db.execute(
                        "SELECT local_s FROM events WHERE kind = 'image' ORDER BY id LIMIT 1"
                    ).fetchone()
            except sqlite3.OperationalError:  # the schema is not written yet
                continue
            onset = None if row is None else float(row[0])
        assert onset is not None, "no image was shown"
        time.sleep(max(0.0, onset + into_s - time.monotonic()))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done["killed_s"] = time.monotonic()
        done["proc"], _ = start_server("eyetribe", "--port", str(port))
    except BaseException as exc:  # reported by the test
        done["error"] = exc


@pytest.mark.tf
@pytest.mark.slow
def test_eyetribe_server_restarted_mid_image_then_heatmaps_compare_and_masks(
    tmp_path: Path,
) -> None:
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.analysis.human import trial_gaze
    from gazelab.annotation.simulated import Stimulus, run_simulated_session
    from gazelab.annotation.store import SessionStore
    from gazelab.app.cli import main
    from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
    from gazelab.models.architectures import build_model
    from gazelab.models.synthetic import synthetic_faces
    from gazelab.settings import ProtocolSettings, Settings

    size, spec = 64, "synthetic:2:0:64"
    faces = synthetic_faces(2, size=size, seed=0)
    stimuli = [Stimulus(fid, (size, size), int(lab), reg)
               for fid, lab, reg in zip(faces.ids, faces.labels, faces.regions, strict=True)]  # fmt: skip
    s = Settings()
    s = s.replace(protocol=dataclasses.replace(
        ProtocolSettings(), blank1_ms=100, cross_ms=100, blank2_ms=100))  # fmt: skip
    project = tmp_path / "project"
    project.mkdir()
    store_path = project / "project.sqlite"
    proc, port = start_server("eyetribe")
    done: dict[str, Any] = {}
    restarter = threading.Thread(
        target=restart_after_image_onset, args=(store_path, proc, port, 1.0, done), daemon=True
    )
    restarter.start()
    try:
        with SessionStore(store_path, create=True) as store:
            rec = run_simulated_session(
                store, stimuli, EyeTribeTracker(port=port), participant="P1", settings=s,
                view_s=(4.5, 4.5), label_error=0.0, validate=False, image_source=spec,
            )  # fmt: skip
            restarter.join(timeout=30)
            assert "error" not in done, done.get("error")
            gaps = store.gaps(rec.id)
            trials = trial_gaze(store, rec.id, {f: (size, size) for f in faces.ids})
            first = store.samples(rec.id, trial_index=0, phase="image")
    finally:
        restarter.join(timeout=30)
        stop_server(done.get("proc", proc))

    # the recording: the connection's gap and the clock's jump back, both as gaps
    jumps = [g for g in gaps if "clock jumped back" in g["reason"]]
    assert len(jumps) == 1, gaps
    assert jumps[0]["start_local_s"] < done["killed_s"] < jumps[0]["end_local_s"]
    assert any("clock" not in g["reason"] for g in gaps)  # the dropped connection
    # the restart trial holds two clock segments, with fixations on both sides
    segs = clock_segments(first["time_ms"], first["local_s"])
    assert len(segs) == 2
    restart_row = int(segs[1, 0])
    assert first["time_ms"][restart_row] < first["time_ms"][restart_row - 1]
    tg = trials[0]
    assert tg.trial_index == 0
    before = tg.fixations["first_sample"] < restart_row
    assert before.any() and (~before).any()
    assert np.all(np.diff(tg.fixations["onset_ms"]) > 0)  # one timeline, in order
    assert tg.fixations["offset_ms"][before].max() < tg.fixations["onset_ms"][~before].min()

    # the commands that stopped with "sample times must be non-decreasing"
    out = tmp_path / "heat"
    assert main(["heatmaps", "--store", str(store_path), "--session", str(rec.id),
                 "--out", str(out)]) == 0  # fmt: skip
    assert len(list(out.glob("*.png"))) == 2
    tf.keras.utils.set_random_seed(0)
    build_model("small_cnn", (32, 32, 1), len(CLASSES)).save(project / "model.keras")
    assert main(["compare", "--project", str(project), "--analyzer", "gradient"]) == 0
    assert (project / "report" / "rows.csv").stat().st_size > 0
    masks = tmp_path / "masks"
    assert main(["masks", "--algorithm", "human", "--project", str(project),
                 "--analyzer", "gradient", "--out", str(masks)]) == 0  # fmt: skip
    assert len(list(masks.rglob("*.png"))) == 2
