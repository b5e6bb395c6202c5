"""Fixation detectors on non-square pixels: x and y each turned to degrees by its own pitch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gazelab.gaze.detectors.ivt import ivt
from gazelab.gaze.fixations import detect_fixations, px_per_deg_xy, savgol_velocity
from gazelab.gaze.geometry import DisplayGeometry

PITCH = (0.25, 0.35)  # mm per pixel in x and in y
DIST = 600.0
TALL = DisplayGeometry(1280 * PITCH[0], 1024 * PITCH[1], (1280, 1024), DIST)
K = 2.0 * DIST * math.tan(math.radians(0.5))  # mm per degree at the centre
PPD_X, PPD_Y = K / PITCH[0], K / PITCH[1]
PERIOD = 2.0  # ms (500 Hz)


def test_per_axis_scales_and_square_pixels_keep_the_mean():
    assert px_per_deg_xy(TALL) == pytest.approx((PPD_X, PPD_Y), rel=1e-12)
    # the mean pitch (0.30 mm) would be 14 % off in y and 20 % in x
    assert TALL.px_per_deg() == pytest.approx(K / 0.30, rel=1e-12)
    ref = DisplayGeometry()  # the reference display: pitches 2e-5 apart -> square
    assert px_per_deg_xy(ref) == (ref.px_per_deg(), ref.px_per_deg())


def test_savgol_speed_of_a_vertical_saccade_is_its_angular_speed():
    speed = 250.0  # deg/s, along y only
    t = np.arange(60) * PERIOD
    y = 300.0 + speed * PPD_Y * t / 1000.0
    x = np.full(t.size, 640.0)
    ok = np.ones(t.size, dtype=bool)
    v = savgol_velocity(t, x, y, ok, window_ms=20.0, px_per_deg=px_per_deg_xy(TALL))
    np.testing.assert_allclose(v, speed, rtol=1e-6)
    mean = savgol_velocity(t, x, y, ok, window_ms=20.0, px_per_deg=TALL.px_per_deg())
    np.testing.assert_allclose(mean, speed * 0.30 / 0.35, rtol=1e-6)  # 214 deg/s: wrong
    # the same along x: 0.25 mm pixels
    v = savgol_velocity(t, 640.0 + speed * PPD_X * t / 1000.0, np.full(t.size, 300.0), ok,
                        window_ms=20.0, px_per_deg=px_per_deg_xy(TALL))  # fmt: skip
    np.testing.assert_allclose(v, speed, rtol=1e-6)


def hand_slopes(y_deg: np.ndarray, half: int) -> np.ndarray:
    """deg/s at each sample: order-2 Savitzky-Golay slope over a symmetric window is the
    least-squares line's, sum(k y[i+k]) / sum(k^2) per sample period (interior only)."""
    k = np.arange(-half, half + 1)
    out = np.full(y_deg.size, np.nan)
    for i in range(half, y_deg.size - half):
        out[i] = np.dot(k, y_deg[i - half : i + half + 1]) / np.dot(k, k) / PERIOD * 1000.0
    return out


def test_ivt_splits_a_slow_vertical_saccade_where_the_hand_computation_does():
    speed, threshold = 33.0, 30.0  # deg/s; at the mean pitch it reads 28.3 < 30
    still, ramp = 100, 60
    step = speed * PERIOD / 1000.0  # deg per sample
    y_deg = np.r_[np.zeros(still), step * np.arange(1, ramp + 1), np.full(still, step * ramp)]
    n = y_deg.size
    t = np.arange(n) * PERIOD
    samples = {"time_ms": t, "x": np.full(n, 640.0), "y": 200.0 + y_deg * PPD_Y,
               "valid": np.ones(n, dtype=bool)}  # fmt: skip
    fx = detect_fixations(samples, "ivt", TALL, velocity_deg_s=threshold)
    # by hand: 20 ms / 2 ms -> 11-sample window; fast where the slope reaches 30 deg/s
    v = hand_slopes(y_deg, 5)
    fast = np.flatnonzero(v >= threshold)
    first_fast, last_fast = int(fast[0]), int(fast[-1])
    assert np.all(v[first_fast : last_fast + 1] >= threshold)  # one run of fast samples
    assert fx["first_sample"].tolist() == [0, last_fast + 1]
    assert fx["n_samples"].tolist() == [first_fast, n - last_fast - 1]
    assert (first_fast, last_fast) == (103, 155)  # the ramp is rows 100-159
    # one mean pitch reads the saccade at 28.3 deg/s: no split at all
    one = ivt(t, samples["x"], samples["y"], samples["valid"], velocity_deg_s=threshold,
              px_per_deg=TALL.px_per_deg(), min_fixation_ms=40.0)  # fmt: skip
    assert one.tolist() == [[0, n - 1]]


def test_idt_measures_dispersion_in_degrees_on_each_axis():
    n = 150  # 300 ms
    t = np.arange(n) * PERIOD
    flip = np.arange(n) % 2
    ok = np.ones(n, dtype=bool)
    # 1.1 deg vertical jitter: wider than the 1 deg threshold (the mean pitch: 0.94 deg)
    vert = {"time_ms": t, "x": np.full(n, 640.0), "y": 500.0 + 1.1 * PPD_Y * flip, "valid": ok}
    assert len(detect_fixations(vert, "idt", TALL)["onset_ms"]) == 0
    # 0.9 deg horizontal jitter: within it (the mean pitch: 1.08 deg)
    horiz = {"time_ms": t, "x": 600.0 + 0.9 * PPD_X * flip, "y": np.full(n, 500.0), "valid": ok}
    fx = detect_fixations(horiz, "idt", TALL)
    assert fx["n_samples"].tolist() == [n]


@pytest.mark.parametrize("method", ["ivt_filter", "adaptive"])
def test_merging_distance_is_an_angle_on_each_axis(method):
    # two fixations 0.45 deg apart vertically (0.39 deg at the mean pitch) with a 20 ms
    # gap of lost samples between: merged (0.5 deg); 0.55 deg apart: kept apart
    for sep, count in ((0.45, 1), (0.55, 2)):
        n = 110
        t = np.arange(n) * PERIOD
        y = np.r_[np.full(50, 400.0), np.full(10, np.nan), np.full(50, 400.0 + sep * PPD_Y)]
        s = {"time_ms": t, "x": np.full(n, 640.0), "y": y}
        fx = detect_fixations(s, method, TALL, gap_fill_ms=0.0) if method == "ivt_filter" \
            else detect_fixations(s, method, TALL)  # fmt: skip
        assert len(fx["onset_ms"]) == count, (method, sep)
