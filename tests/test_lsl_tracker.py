"""LSL gaze inlet: real pylsl outlets on loopback, metadata mapping, loss and reconnect."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pylsl")

from gazelab.gaze.fixations import detect_fixations  # noqa: E402
from gazelab.gaze.trackers.base import STATE_OK, GazeSample, sample_is_valid  # noqa: E402
from gazelab.gaze.trackers.eyetribe import TrackerError  # noqa: E402
from gazelab.gaze.trackers.lsl import (  # noqa: E402
    ChannelMeta,
    LSLSpecError,
    LSLStreamQuery,
    LSLTracker,
    dropped_between,
    gaze_channel_map,
    parse_lsl_spec,
)
from gazelab.gaze.trackers.lsl_sim import LSLGazeOutlet  # noqa: E402
from gazelab.gaze.trackers.simulator import SyntheticObserver  # noqa: E402

SCREEN = (2560, 1440)


def _unique(prefix: str = "gz") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _collect(tracker: LSLTracker, n: int, timeout_s: float) -> list[GazeSample]:
    got: list[GazeSample] = []
    t_end = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < t_end:
        time.sleep(0.05)
        got += tracker.drain()
    return got


# -- specs and metadata (pure) -------------------------------------------------------------
def test_spec_reads_type_name_and_source_id() -> None:
    assert parse_lsl_spec("lsl:type=Gaze") == LSLStreamQuery("type", "Gaze")
    assert parse_lsl_spec("lsl:name=Tobii Pro Fusion") == LSLStreamQuery("name", "Tobii Pro Fusion")
    assert parse_lsl_spec("LSL:source_id=abc123") == LSLStreamQuery("source_id", "abc123")
    assert parse_lsl_spec("lsl") == LSLStreamQuery("type", "Gaze")


@pytest.mark.parametrize("bad", ["eyetribe", "lsl:colour=red", "lsl:name=", "lsl:name"])
def test_spec_errors_say_what_to_write(bad: str) -> None:
    with pytest.raises(LSLSpecError, match="lsl:"):
        parse_lsl_spec(bad)


def _meta(*rows: tuple[str, str, str, str]) -> list[ChannelMeta]:
    return [ChannelMeta(label=lab, type=t, unit=u, eye=e) for lab, t, u, e in rows]


def test_binocular_screen_channels_are_found_by_type() -> None:
    meta = _meta(
        ("ts", "Timestamp", "s", ""),
        ("gx", "ScreenX", "pixels", "both"),
        ("gy", "ScreenY", "pixels", "both"),
    )
    cmap = gaze_channel_map(meta, 3)
    assert (cmap.x, cmap.y, cmap.unit) == ((1,), (2,), "pixels")


def test_per_eye_channels_are_averaged_and_kept_per_eye() -> None:
    meta = _meta(
        ("lx", "ScreenX", "normalized", "left"),
        ("ly", "ScreenY", "normalized", "left"),
        ("rx", "RightScreenX", "normalized", ""),
        ("ry", "RightScreenY", "normalized", ""),
    )
    cmap = gaze_channel_map(meta, 4)
    assert cmap.x == (0, 2) and cmap.y == (1, 3) and cmap.unit == "normalized"
    assert cmap.left == (0, 1) and cmap.right == (2, 3)


def test_overrides_beat_the_metadata() -> None:
    meta = _meta(("gx", "ScreenX", "pixels", ""), ("gy", "ScreenY", "pixels", ""))
    cmap = gaze_channel_map(meta, 2, x_channel=1, y_channel=0, unit="normalised")
    assert (cmap.x, cmap.y, cmap.unit) == ((1,), (0,), "normalized")


def test_missing_metadata_is_an_error_naming_the_overrides() -> None:
    with pytest.raises(LSLSpecError, match="channel indices and the unit"):
        gaze_channel_map([], 2)
    with pytest.raises(LSLSpecError, match="carry no <unit>"):
        gaze_channel_map(_meta(("x", "ScreenX", "", ""), ("y", "ScreenY", "", "")), 2)
    with pytest.raises(LSLSpecError, match="outside the stream's 2 channels"):
        gaze_channel_map([], 2, x_channel=0, y_channel=2, unit="pixels")
    assert gaze_channel_map([], 2, x_channel=0, y_channel=1, unit="px").unit == "pixels"


def test_dropped_samples_are_counted_from_the_nominal_rate() -> None:
    ts = np.array([0.0, 0.01, 0.02, 0.05, 0.06])  # 100 Hz; 0.03 and 0.04 missing
    assert dropped_between(ts, None, 100.0) == 2
    assert dropped_between(ts[1:], 0.0, 100.0) == 2
    assert dropped_between(ts, -0.03, 100.0) == 4  # 2 more before the chunk
    assert dropped_between(ts, None, 0.0) == 0  # irregular streams never count drops


# -- real outlets --------------------------------------------------------------------------
def _observer_rows(rate_hz: int, seconds: float) -> np.ndarray:
    obs = SyntheticObserver(SCREEN, seed=3)
    n = int(round(rate_hz * seconds))
    rows = np.empty((n, 2))
    for k in range(n):
        g = obs.at(k * 1000.0 / rate_hz)
        ok = g.state == STATE_OK
        rows[k] = (g.x, g.y) if ok else (math.nan, math.nan)
    return rows


@pytest.mark.parametrize(  # 60 Hz in the quick tier; the faster rates in the slow one
    "rate_hz",
    [60, pytest.param(300, marks=pytest.mark.slow), pytest.param(1200, marks=pytest.mark.slow)],
    ids=lambda r: f"{r}Hz",
)
def test_stream_arrives_complete_monotonic_with_the_same_fixations(rate_hz: int) -> None:
    seconds = 10.0
    rows = _observer_rows(rate_hz, seconds)
    n = len(rows)
    name = _unique()
    with LSLGazeOutlet(rows=rows, name=name, source_id=name, rate_hz=rate_hz, record=True) as out:
        tracker = LSLTracker(f"lsl:name={name}", screen_px=SCREEN, resolve_timeout_s=5.0)
        tracker.connect()
        tracker.start()
        try:
            got = _collect(tracker, n, timeout_s=seconds + 10.0)
        finally:
            tracker.close()
    assert out.samples_sent == n
    assert len(got) == n, f"{n - len(got)} of {n} samples lost at {rate_hz} Hz"
    assert tracker.stats.samples_lost == 0 and tracker.stats.samples_dropped == 0
    t = np.array([s.time_ms for s in got])
    assert np.all(np.diff(t) > 0)
    # Every sample exactly once and unchanged: tracker time = (LSL timestamp + correction) ms.
    sent_ms = (np.array(out.sent_ts) + tracker.time_correction_s) * 1000.0
    assert abs(tracker.time_correction_s) < 0.05  # same machine: near zero
    np.testing.assert_array_equal(t, sent_ms)
    x = np.array([s.x for s in got])
    y = np.array([s.y for s in got])
    np.testing.assert_array_equal(x, rows[:, 0])
    np.testing.assert_array_equal(y, rows[:, 1])

    valid_direct = np.array([sample_is_valid(STATE_OK, a, b, SCREEN) for a, b in rows])
    direct = detect_fixations(
        {"time_ms": sent_ms, "x": rows[:, 0], "y": rows[:, 1], "valid": valid_direct}, "idt"
    )
    valid = np.array([s.valid for s in got])
    via_lsl = detect_fixations({"time_ms": t, "x": x, "y": y, "valid": valid}, "idt")
    assert len(direct["onset_ms"]) > seconds  # a real scanpath, not one long fixation
    assert set(via_lsl) == set(direct)
    for col in direct:
        np.testing.assert_array_equal(via_lsl[col], direct[col], err_msg=col)


@pytest.mark.parametrize("unit", ["pixels", "normalized"])
def test_pixel_and_normalised_streams_land_in_screen_pixels(unit: str) -> None:
    rows = np.array([[100.0, 200.0], [1280.0, 720.0], [2559.0, 1439.0], [10.0, 20.0]] * 10)
    name = _unique()
    with LSLGazeOutlet(rows=rows, name=name, source_id=name, rate_hz=100, unit=unit):
        with LSLTracker(f"lsl:source_id={name}", screen_px=SCREEN) as tracker:
            assert tracker.channel_map is not None and tracker.channel_map.unit == unit
            tracker.start()
            got = _collect(tracker, len(rows), 5.0)
    xy = np.array([(s.x, s.y) for s in got])
    np.testing.assert_allclose(xy, rows, rtol=0, atol=1e-9)
    assert all(s.valid for s in got)


def test_stream_without_metadata_needs_overrides() -> None:
    rows = np.array([[0.25, 0.5]] * 20)
    name = _unique()
    with LSLGazeOutlet(rows=rows, name=name, source_id=name, rate_hz=100, metadata=False):
        with pytest.raises(LSLSpecError, match="overrides"):
            LSLTracker(f"lsl:name={name}", screen_px=SCREEN).connect()
        tracker = LSLTracker(
            f"lsl:name={name}", screen_px=SCREEN, x_channel=0, y_channel=1, unit="normalized"
        )
        with tracker:
            tracker.start()
            got = _collect(tracker, len(rows), 5.0)
    assert [(s.x, s.y) for s in got] == [(640.0, 720.0)] * len(rows)


def test_nan_and_off_screen_samples_are_invalid() -> None:
    rows = np.array([[100.0, 100.0], [math.nan, math.nan], [-5.0, 10.0], [3000.0, 10.0]])
    name = _unique()
    with LSLGazeOutlet(rows=rows, name=name, source_id=name, rate_hz=100):
        with LSLTracker(f"lsl:name={name}", screen_px=SCREEN) as tracker:
            tracker.start()
            got = _collect(tracker, len(rows), 5.0)
    assert [s.valid for s in got] == [True, False, False, False]
    assert tracker.stats.invalid_samples == 3


def test_resolve_timeout_names_what_was_looked_for() -> None:
    name = _unique("absent")
    with pytest.raises(TrackerError, match=f"name='{name}'"):
        LSLTracker(f"lsl:name={name}", resolve_timeout_s=0.3).connect()


def test_calibration_is_the_vendors_and_reports_nan_accuracy() -> None:
    result = LSLTracker().calibrate([(100.0, 100.0)])
    assert result.result is True and math.isnan(result.deg) and result.points == ()


def test_stream_loss_records_a_gap_and_a_returning_stream_reconnects() -> None:
    name = _unique()
    gaps = []
    out = LSLGazeOutlet(name=name, source_id=name, rate_hz=300).start()
    tracker = LSLTracker(f"lsl:name={name}", screen_px=SCREEN, on_gap=gaps.append)
    try:
        tracker.connect()
        tracker.start()
        assert len(_collect(tracker, 100, 5.0)) >= 100
        out.stop()
        assert _wait(lambda: not tracker.connected, 5.0), "the loss was not noticed"
        assert tracker.lost_since is not None and tracker.gaps == []
        time.sleep(0.3)
        tracker.drain()
        out = LSLGazeOutlet(name=name, source_id=name, rate_hz=300).start()
        t_back = time.monotonic()
        assert _wait(lambda: tracker.connected, 10.0), tracker.last_error
        reconnect_s = time.monotonic() - t_back
        assert len(_collect(tracker, 100, 5.0)) >= 100
    finally:
        tracker.close()
        out.stop()
    assert reconnect_s < 5.0
    assert len(tracker.gaps) == 1 and gaps == tracker.gaps
    gap = tracker.gaps[0]
    assert gap.end_s - gap.start_s >= 0.3 and gap.reason == "stream lost"
    assert tracker.stats.reconnects == 1 and tracker.stats.gaps == 1


def test_a_stalled_stream_that_stays_counts_lost_samples_and_one_gap() -> None:
    """The tracker app stops sending but keeps its outlet: not a loss, but the silence is
    a gap and the samples it skipped are counted from the timestamps' jump."""
    name = _unique()
    out = LSLGazeOutlet(name=name, source_id=name, rate_hz=300).start()
    tracker = LSLTracker(f"lsl:name={name}", screen_px=SCREEN, stall_periods=150)  # 0.5 s
    try:
        tracker.connect()
        tracker.start()
        assert len(_collect(tracker, 100, 5.0)) >= 100
        out.paused.set()
        assert _wait(lambda: tracker.stalled_since is not None, 5.0), "the stall was not noticed"
        assert tracker.connected and tracker.lost_since is None
        time.sleep(0.5)
        out.paused.clear()
        assert _wait(lambda: len(tracker.gaps) == 1, 5.0)
        assert len(_collect(tracker, 100, 5.0)) >= 100
    finally:
        tracker.close()
        out.stop()
    withheld = out.samples_withheld
    assert withheld >= 300  # at least 1 s of a 300 Hz stream
    assert abs(tracker.stats.samples_lost - withheld) <= 1
    gap = tracker.gaps[0]
    assert gap.reason.endswith("the stream stayed")
    assert gap.end_s - gap.start_s == pytest.approx(withheld / 300, abs=0.15)
    assert tracker.stats.reconnects == 0


def test_a_silent_stream_that_no_longer_resolves_is_lost_then_found_again() -> None:
    """The stall path without liblsl's LostError (a network that drops the outlet's
    packets): no data and no resolve answer means lost; when it answers again, reconnect."""
    name = _unique()
    out = LSLGazeOutlet(name=name, source_id=name, rate_hz=300).start()
    tracker = LSLTracker(f"lsl:name={name}", screen_px=SCREEN, stall_periods=150)
    resolves = {"yes": True}
    real_still_there = tracker._still_there
    tracker._still_there = lambda: resolves["yes"] and real_still_there()  # type: ignore[method-assign]
    try:
        tracker.connect()
        tracker.start()
        assert len(_collect(tracker, 100, 5.0)) >= 100
        resolves["yes"] = False
        out.paused.set()
        assert _wait(lambda: not tracker.connected, 5.0), "the silent stream was not given up"
        assert tracker.last_error == "no data and the stream no longer resolves"
        out.paused.clear()
        assert _wait(lambda: tracker.connected, 10.0), tracker.last_error
        assert len(_collect(tracker, 100, 5.0)) >= 100
    finally:
        tracker.close()
        out.stop()
    assert tracker.stats.reconnects == 1
    assert [g.reason for g in tracker.gaps] == ["no data and the stream no longer resolves"]


def test_an_lsl_stall_reaches_the_store_as_a_gap_through_the_capture() -> None:
    """Gaps of every tracker go through one GapLog, read by the session's capture."""
    from tests.test_tracker_hardening import capture_of

    name = _unique()
    out = LSLGazeOutlet(name=name, source_id=name, rate_hz=300).start()
    tracker = LSLTracker(f"lsl:name={name}", screen_px=SCREEN, stall_periods=150)
    try:
        tracker.connect()
        capture, store = capture_of(tracker)  # type: ignore[arg-type]
        tracker.start()
        assert _wait(lambda: (capture.poll(), store.samples >= 100)[1], 5.0)
        out.paused.set()
        assert _wait(lambda: (capture.poll(), tracker.stalled_since is not None)[1], 5.0)
        out.paused.clear()
        assert _wait(lambda: (capture.poll(), bool(store.gaps))[1], 5.0), "no gap in the store"
    finally:
        tracker.close()
        out.stop()
    ((start, end, reason),) = store.gaps
    assert reason.endswith("the stream stayed") and end is not None and end - start >= 0.5
    assert "tracker_gap" in store.events


# -- hostile streams from another process ----------------------------------------------------
def _outlet_process(mode: str, name: str, seconds: float = 3.0) -> subprocess.Popen[str]:
    """``tests/lsl_outlet_proc.py MODE NAME`` in its own process, once its outlet is up."""
    script = Path(__file__).with_name("lsl_outlet_proc.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, name, "--seconds", str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_a_non_numeric_value_in_a_string_stream_spoils_one_sample_not_the_capture() -> None:
    """Sample 100 of a string-typed stream reads "abc": that sample is invalid, the reader
    goes on (it used to die there: every later trial got 0 samples, with no gap)."""
    name = _unique()
    proc = _outlet_process("strings", name)
    tracker = LSLTracker(f"lsl:name={name}", screen_px=SCREEN)
    try:
        tracker.connect()
        tracker.start()
        got = _collect(tracker, 400, 10.0)
    finally:
        tracker.close()
        _end(proc)
    assert len(got) >= 400, f"only {len(got)} samples: the reader stopped"
    xs = [s.x for s in got]
    bad = [i for i, s in enumerate(got) if not s.valid]
    assert len(bad) == 1 and math.isnan(xs[bad[0]])
    assert xs[bad[0] - 1] == 199.0 and xs[bad[0] + 1] == 201.0  # sample 100 (x = 100 + k)
    assert tracker.stats.invalid_messages == 1 and tracker.stats.reader_faults == 0
    assert tracker.gaps == [] and tracker.connected is False  # closed


def test_a_sample_stamped_days_ahead_is_dropped_and_the_clock_runs_on() -> None:
    """Sample 100 is stamped 1e6 s (11.6 days) ahead: dropped and counted; the tracker clock
    of every later sample still advances 5 ms a sample (it used to freeze at that stamp)."""
    name = _unique()
    proc = _outlet_process("future", name)
    tracker = LSLTracker(f"lsl:name={name}", screen_px=SCREEN)
    try:
        tracker.connect()
        tracker.start()
        got = _collect(tracker, 400, 10.0)
    finally:
        tracker.close()
        _end(proc)
    assert len(got) >= 400
    t = np.array([s.time_ms for s in got])
    steps = np.diff(t)
    assert np.all(steps > 0), f"{int(np.sum(steps == 0))} samples share a tracker time"
    assert np.median(steps) == pytest.approx(5.0, abs=0.01)
    assert t[-1] - t[0] == pytest.approx(5.0 * len(got), abs=10.0)  # one 5 ms step is missing
    assert tracker.stats.out_of_time == 1
    assert tracker.stats.samples_lost == 1  # the dropped sample, not 2e8 of them
    assert 200.0 not in [s.x for s in got]  # x = 100 + k: sample 100 never reached the queue


def test_a_stream_declaring_a_megahertz_keeps_the_inlet_within_its_byte_budget() -> None:
    """A stream that declares 1 MHz: the inlet used to preallocate 1.3-1.5 GB (60 s of queue
    slots plus 5 s of samples); now its buffers are bounded by bytes."""
    name = _unique()
    proc = _outlet_process("fast", name)
    child = (
        "import sys, time\n"
        "from gazelab.gaze.trackers.lsl import LSLTracker\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
        f"t = LSLTracker('lsl:name={name}', screen_px=(2560, 1440))\n"
        "import pylsl\n"
        "r0 = rss()\n"
        "t.connect(); t.start()\n"
        "n = 0\n"
        "for _ in range(20):\n"
        "    time.sleep(0.05); n += len(t.drain())\n"
        "print(rss() - r0, n, getattr(t, '_buffer_s', -1))\n"
        "t.close()\n"
    )
    try:
        res = subprocess.run(
            [sys.executable, "-c", child], capture_output=True, text=True, timeout=60
        )
    finally:
        _end(proc)
    assert res.returncode == 0, res.stderr[-2000:]
    grew_mb, samples, buffer_s = res.stdout.split()
    assert float(grew_mb) < 120, f"the inlet took {grew_mb} MB"
    assert int(samples) > 50 and int(buffer_s) == 4  # 64 MiB of 16-byte slots at 1 MHz


def test_inlet_buffers_are_sized_by_bytes_whatever_the_stream_declares() -> None:
    from gazelab.gaze.trackers.lsl import (
        MAX_BUFFER_S,
        inlet_buffer_s,
        numeric_rows,
        pull_max_samples,
    )

    assert inlet_buffer_s(300.0, 3, 2) == MAX_BUFFER_S
    assert inlet_buffer_s(0.0, 3, 2) == MAX_BUFFER_S  # irregular: 100 slots per unit
    assert inlet_buffer_s(1e6, 3, 2) == 4
    for rate, chans in ((1e9, 3), (math.inf, 3), (-5.0, 3), (300.0, 200_000), (300.0, 0)):
        with pytest.raises(TrackerError):
            inlet_buffer_s(rate, chans, 2)
    assert pull_max_samples(3, 2) == 4096
    assert pull_max_samples(100_000, 2) == 5  # 4 MiB of room, not 3.3 GB
    values, bad = numeric_rows(np.array([[b"1.5", b"2"], [b"abc", b"\xff"], [b"nan", b"3"]]))
    assert bad.tolist() == [False, True, False]
    assert values[0].tolist() == [1.5, 2.0] and np.isnan(values[1]).all()


def test_an_unexpected_reader_failure_is_a_gap_and_a_reconnect(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gazelab.gaze.trackers.lsl as lsl

    name = _unique()
    real = lsl.to_screen_px
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(lsl, "to_screen_px", flaky)
    out = LSLGazeOutlet(name=name, source_id=name, rate_hz=300).start()
    tracker = LSLTracker(f"lsl:name={name}", screen_px=SCREEN)
    try:
        tracker.connect()
        tracker.start()
        assert _wait(lambda: tracker.stats.reconnects == 1, 10.0), tracker.last_error
        assert len(_collect(tracker, 300, 5.0)) >= 300
    finally:
        tracker.close()
        out.stop()
    assert tracker.stats.reader_faults == 1
    assert [g.reason for g in tracker.gaps] == ["the reader failed (RuntimeError: boom)"]
