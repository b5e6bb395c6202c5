"""LSL gaze inlet (issue #19): real pylsl outlets on loopback, metadata mapping, loss and reconnect."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable

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


@pytest.mark.parametrize(
    "rate_hz", [60, 300, pytest.param(1200, marks=pytest.mark.slow)], ids=lambda r: f"{r}Hz"
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
