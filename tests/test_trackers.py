"""Eye Tribe client <-> simulator over real sockets, transcript replay, and fuzzing
(docs/running-a-session.md#the-eye-tribe-protocol)."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest

from gazelab.gaze.trackers import protocol as P
from gazelab.gaze.trackers.eyetribe import EyeTribeTracker, TrackerError, replay_transcript
from gazelab.gaze.trackers.simulator import EyeTribeSimulator, ReplaySource, SyntheticObserver


def _stream(rate_hz: int, seconds: float):
    with EyeTribeSimulator(port=0, rate_hz=rate_hz) as sim:
        with EyeTribeTracker(port=sim.port) as client:
            assert client.framerate == rate_hz
            client.start()
            got = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                time.sleep(0.05)
                got += client.drain()
            client.stop()
            time.sleep(0.3)
            got += client.drain()
            return got, sim.frames_sent, client.stats


@pytest.mark.slow
@pytest.mark.parametrize("rate_hz", [60, 1000])
def test_push_stream_loses_no_sample_for_10_s(rate_hz):
    got, sent, stats = _stream(rate_hz, 10.0)
    assert sent >= rate_hz * 9.5
    assert len(got) == sent  # 0 lost
    assert stats.invalid_messages == 0
    t = np.array([s.time_ms for s in got])
    steps = np.diff(t)
    assert np.all(steps > 0)  # monotonic tracker clock
    assert np.all(np.abs(steps - 1000.0 / rate_hz) <= 1.0)  # no frame missing in between
    assert np.all(np.diff([s.local_s for s in got]) >= 0)


def test_short_stream_and_sample_fields():
    got, sent, _ = _stream(60, 0.5)
    assert len(got) == sent > 10
    s = got[-1]
    assert s.state & 0x04 and isinstance(s.fix, bool)
    assert np.isfinite(s.left_psize)


def test_heartbeat_loss_drops_client_which_reconnects_and_records_the_gap():
    gaps = []
    with EyeTribeSimulator(port=0, rate_hz=60, heartbeat_ms=100) as sim:
        with EyeTribeTracker(port=sim.port, on_gap=gaps.append) as client:
            assert client.heartbeat_interval_s == pytest.approx(0.1)
            client.start()
            time.sleep(0.3)
            client.pause_heartbeat()
            deadline = time.monotonic() + 5
            while not client.gaps and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sim.clients_dropped == 1
            assert client.stats.reconnects == 1
            assert len(gaps) == 1 and gaps[0].end_s >= gaps[0].start_s
            before = len(client.drain())
            time.sleep(0.4)  # push mode restored after the reconnect, heartbeat resumed
            assert before > 0 and len(client.drain()) >= 15
            assert sim.clients_dropped == 1


def test_calibration_round_trip():
    with EyeTribeSimulator(port=0, calibration_error_deg=0.4) as sim:
        with EyeTribeTracker(port=sim.port) as client:
            points = P.calibration_points(9, (2560, 1440))
            result = client.calibrate(points, dwell_s=0.01)
            assert result.result is True
            assert len(result.points) == 9
            assert [(p.x, p.y) for p in result.points] == [(int(x), int(y)) for x, y in points]
            assert 0.0 < result.deg < 1.5
            assert client.get("iscalibrated")["iscalibrated"] is True
            time.sleep(0.1)
            assert client.stats.notifications == 1  # 800: calibration changed


def test_refused_request_raises_a_clear_error():
    with EyeTribeSimulator(port=0) as sim:
        with EyeTribeTracker(port=sim.port) as client:
            with pytest.raises(TrackerError, match="status 403"):
                client._call(P.request("calibration", "pointend"))


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(TrackerError, match="gazelab simulate-tracker"):
        EyeTribeTracker(port=1, timeout_s=0.5).connect()


def test_replay_of_a_recorded_transcript_gives_the_same_samples(tmp_path):
    log = io.StringIO()
    with EyeTribeSimulator(port=0, rate_hz=60) as sim:
        with EyeTribeTracker(port=sim.port, transcript=log) as client:
            client.start()
            time.sleep(0.5)
            client.stop()
            time.sleep(0.1)
            live = client.drain()
    path = tmp_path / "transcript.jsonl"
    path.write_text(log.getvalue())
    assert any(" > " in line and '"push":true' in line for line in log.getvalue().splitlines())
    replayed, stats = replay_transcript(path)
    assert replayed == live
    assert stats.invalid_messages == 0


def test_replay_source_drives_the_simulator(tmp_path):
    rows = [
        {"t_ms": i * 10.0, "x": 100.0 + i, "y": 50.0, "fix": True, "state": 7} for i in range(50)
    ]
    path = tmp_path / "gaze.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    src = ReplaySource(path)
    assert src.at(0).x == 100.0 and src.at(105).x == 110.0 and src.at(505).x == 100.0
    sim = EyeTribeSimulator(port=0, source=src)
    assert sim.frame(250.0)["avg"] == {"x": 125.0, "y": 50.0}


def test_synthetic_observer_fixation_statistics():
    obs = SyntheticObserver(seed=3)
    for t in np.arange(0, 60_000, 1000 / 60):
        obs.at(t)
    durations = np.array([off - on for on, off, _, _ in obs.fixations])
    assert 200 < durations.mean() < 300  # gamma around 250 ms
    assert durations.min() >= 80


def test_observer_targets_follow_the_priority_map():
    obs = SyntheticObserver(seed=1)
    prio = np.zeros((100, 100))
    prio[60:80, 20:40] = 1.0  # one hot region
    obs.set_priority_map(prio, (1000, 200, 1000, 1000))
    for t in np.arange(0, 20_000, 1000 / 60):
        obs.at(t)
    xy = np.array([(x, y) for _, _, x, y in obs.fixations[1:]])
    inside = (
        (xy[:, 0] > 1200 - 30)
        & (xy[:, 0] < 1400 + 30)
        & (xy[:, 1] > 800 - 30)
        & (xy[:, 1] < 1000 + 30)
    )
    assert inside.mean() > 0.95


def _mutations(rng, good):
    """10 000 malformed, truncated or wrong-typed frames."""
    line = json.dumps(P.reply("tracker", "get", values={"frame": good}))
    wrong_values = [None, "x", [], {}, True, -1, 1e309, "NaN", {"x": 1}]
    keys = list(good)
    for k in range(10_000):
        kind = k % 5
        if kind == 0:  # truncated
            yield line[: rng.integers(1, len(line) - 1)]
        elif kind == 1:  # a key removed
            f = dict(good)
            f.pop(keys[rng.integers(len(keys))])
            yield json.dumps(P.reply("tracker", "get", values={"frame": f}))
        elif kind == 2:  # a value of the wrong type
            f = dict(good)
            key = keys[rng.integers(len(keys))]
            choices = [v for v in wrong_values if type(v) is not type(good[key])]
            f[key] = choices[rng.integers(len(choices))]
            yield json.dumps(P.reply("tracker", "get", values={"frame": f}))
        elif kind == 3:  # random bytes
            yield bytes(rng.integers(0, 256, rng.integers(1, 80), dtype=np.uint8)).decode("latin-1")
        else:  # nested garbage
            f = dict(good)
            f["avg"] = {"x": "1", "y": None}
            yield json.dumps(P.reply("tracker", "get", values={"frame": f}))


def test_fuzzed_frames_never_raise_and_are_each_counted():
    sim = EyeTribeSimulator(port=0)
    good = sim.frame(1000.0)
    client = EyeTribeTracker()
    client.handle_line(json.dumps(P.reply("tracker", "get", values={"frame": good})))
    assert client.stats.frames == 1
    rng = np.random.default_rng(0)
    n = 0
    for bad in _mutations(rng, good):
        client.handle_line(bad)
        n += 1
    assert n == 10_000
    assert client.stats.invalid_messages == 10_000
    assert client.stats.frames == 1


def test_mouse_tracker_samples_the_position_and_flags_stillness():
    from gazelab.gaze.trackers.base import Tracker
    from gazelab.gaze.trackers.mouse import MouseTracker

    pos = [(100.0, 200.0)]
    tracker = MouseTracker(lambda: pos[0], rate_hz=100)
    assert isinstance(tracker, Tracker)
    tracker.connect()
    tracker.start()
    time.sleep(0.3)
    pos[0] = (5000.0, 10.0)  # off screen
    time.sleep(0.1)
    tracker.stop()
    got = tracker.drain()
    assert len(got) >= 20
    still = [s for s in got if s.x == 100.0]
    assert all(s.valid for s in still) and sum(s.fix for s in still) == len(still) - 1
    assert not got[-1].valid
    assert tracker.calibrate([(1.0, 2.0)]).result is True
