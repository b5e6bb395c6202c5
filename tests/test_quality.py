"""Data quality: accuracy, RMS-S2S, STD and data loss on synthetic samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.quality import (
    PointQuality,
    QualityThresholds,
    angular_distance_deg,
    data_loss_pct,
    point_quality,
    validation_quality,
)

GEOM = DisplayGeometry.from_diagonal(27.0, (2560, 1440), 700.0)
CENTRE = (1280.0, 720.0)


def _noisy(target, offset_px, sigma_px, n, seed=0):
    rng = np.random.default_rng(seed)
    x = target[0] + offset_px[0] + rng.normal(0.0, sigma_px, n)
    y = target[1] + offset_px[1] + rng.normal(0.0, sigma_px, n)
    return x, y


def test_accuracy_of_known_offset_with_gaussian_noise_within_5_percent():
    x, y = _noisy(CENTRE, (30.0, -40.0), 6.0, 2000)
    q = point_quality(CENTRE, x, y, np.ones(x.size, bool), GEOM)
    # 50 px off the centre of the line of sight: atan(50 * pitch / D)
    expected = math.degrees(math.atan(50.0 * GEOM.pixel_pitch_mm / GEOM.distance_mm))
    assert q.accuracy_deg == pytest.approx(expected, rel=0.05)
    assert q.offset_px[0] == pytest.approx(30.0, abs=1.0)
    assert q.offset_px[1] == pytest.approx(-40.0, abs=1.0)
    assert q.n_samples == 2000 and q.loss_pct == 0.0


def test_white_noise_rms_s2s_is_two_sigma_and_std_is_sigma_root_two():
    sigma_px = 5.0
    x, y = _noisy(CENTRE, (0.0, 0.0), sigma_px, 5000, seed=1)
    q = point_quality(CENTRE, x, y, np.ones(x.size, bool), GEOM)
    sigma_deg = math.degrees(math.atan(sigma_px * GEOM.pixel_pitch_mm / GEOM.distance_mm))
    # successive-sample distance: each axis differs by N(0, 2 sigma^2); E[d^2] = 4 sigma^2
    assert q.rms_s2s_deg == pytest.approx(2.0 * sigma_deg, rel=0.05)
    assert q.std_deg == pytest.approx(math.sqrt(2.0) * sigma_deg, rel=0.05)


def test_noise_does_not_inflate_accuracy_of_the_mean():
    x, y = _noisy(CENTRE, (0.0, 0.0), 15.0, 4000, seed=2)
    q = point_quality(CENTRE, x, y, np.ones(x.size, bool), GEOM)
    assert q.accuracy_deg < 0.05  # per-sample offsets average ~0.7 deg


def test_off_centre_target_angle_is_exact():
    # a target 1000 px right of centre: angle between the two lines of sight
    p = GEOM.pixel_pitch_mm
    d = GEOM.distance_mm
    a = angular_distance_deg((2280.0, 720.0), (2330.0, 720.0), GEOM)
    expected = math.degrees(math.atan(1050 * p / d) - math.atan(1000 * p / d))
    assert float(a) == pytest.approx(expected, rel=1e-9)


def test_data_loss_counts_hand_made_gaps_against_expected_samples():
    valid = np.ones(100, bool)
    valid[10:20] = False  # a 10-sample blink
    x = np.full(100, CENTRE[0])
    y = np.full(100, CENTRE[1])
    y[50] = np.nan  # a valid flag with no coordinate counts as invalid
    q = point_quality(CENTRE, x, y, valid, GEOM, expected_samples=120)
    # 120 expected, 89 valid -> 31 missing
    assert q.loss_pct == pytest.approx(100.0 * 31 / 120, abs=1e-12)
    assert q.n_samples == 89
    assert data_loss_pct(valid) == pytest.approx(10.0, abs=1e-12)
    assert data_loss_pct(np.ones(70, bool), expected_samples=60) == 0.0


def test_rms_uses_only_adjacent_valid_pairs():
    x = np.array([0.0, 10.0, 1000.0, 20.0, 30.0]) + 1000
    y = np.full(5, 720.0)
    valid = np.array([True, True, False, True, True])
    q = point_quality(CENTRE, x, y, valid, GEOM)
    step = float(angular_distance_deg((1000.0, 720.0), (1010.0, 720.0), GEOM))
    step2 = float(angular_distance_deg((1020.0, 720.0), (1030.0, 720.0), GEOM))
    assert q.rms_s2s_deg == pytest.approx(math.sqrt((step**2 + step2**2) / 2), rel=1e-9)


def test_no_valid_samples_gives_nan_accuracy_and_full_loss():
    q = point_quality(CENTRE, np.zeros(10), np.zeros(10), np.zeros(10, bool), GEOM)
    assert math.isnan(q.accuracy_deg) and q.loss_pct == 100.0 and q.n_samples == 0
    v = validation_quality([q])
    assert QualityThresholds().problems(v) == ["no valid gaze on target(s) 1"]


def _pt(acc: float, loss: float = 0.0, n_expected: int = 100) -> PointQuality:
    return PointQuality(CENTRE, (0.0, 0.0), acc, 0.1, 0.2, 100, loss, n_expected)


def test_validation_summary_means_and_weighted_loss():
    v = validation_quality([_pt(0.5, 0.0, 100), _pt(1.5, 50.0, 300)])
    assert v.mean_accuracy_deg == pytest.approx(1.0)
    assert v.max_accuracy_deg == pytest.approx(1.5)
    assert v.rms_s2s_deg == pytest.approx(0.1) and v.std_deg == pytest.approx(0.2)
    assert v.loss_pct == pytest.approx(100.0 * 150 / 400)


def test_thresholds_pass_and_block():
    t = QualityThresholds(mean_accuracy_deg=1.0, max_point_accuracy_deg=1.5)
    assert t.problems(validation_quality([_pt(0.8), _pt(0.9), _pt(1.2)])) == []
    p = t.problems(validation_quality([_pt(0.5), _pt(1.7)]))
    assert p == ["mean accuracy 1.10° exceeds 1.00°", "target 2 accuracy 1.70° exceeds 1.50°"]
    lossy = QualityThresholds(max_loss_pct=10.0)
    assert lossy.problems(validation_quality([_pt(0.5, 20.0)])) == ["data loss 20.0% exceeds 10.0%"]


def test_fixation_precision_pools_fixations_and_skips_the_saccade():
    from gazelab.gaze.quality import fixation_precision_deg

    sigma_px = 3.0
    rng = np.random.default_rng(3)
    n = 3000  # two fixations 600 px (~8 deg) apart, one saccade sample between
    cx = np.r_[np.full(n, 1000.0), np.full(n, 1600.0)]
    x = cx + rng.normal(0.0, sigma_px, 2 * n)
    y = 720.0 + rng.normal(0.0, sigma_px, 2 * n)
    t = np.arange(2 * n) / 60.0
    rms, std = fixation_precision_deg(x, y, np.ones(2 * n, bool), t, GEOM, velocity_deg_s=30.0)
    sigma_deg = math.degrees(math.atan(sigma_px * GEOM.pixel_pitch_mm / GEOM.distance_mm))
    assert rms == pytest.approx(2.0 * sigma_deg, rel=0.05)
    assert std == pytest.approx(math.sqrt(2.0) * sigma_deg, rel=0.05)


def test_trial_quality_expected_samples_from_rate_and_duration():
    from gazelab.gaze.quality import trial_quality

    n = 100
    valid = np.ones(n, bool)
    valid[:5] = False
    x = np.full(n, 1280.0)
    q = trial_quality(4, x, np.full(n, 720.0), valid, np.arange(n) / 60.0, GEOM,
                      rate_hz=60.0, duration_s=2.0)  # fmt: skip
    assert (q.trial_index, q.n_expected, q.n_samples) == (4, 120, 95)
    assert q.loss_pct == pytest.approx(100.0 * 25 / 120, abs=1e-12)
    assert q.rms_s2s_deg == 0.0 and q.std_deg == 0.0


def test_validation_run_quality_skips_the_saccade_and_expects_rate_samples():
    from gazelab.gaze.quality import validation_run_quality

    rate = 60.0
    targets = [(640.0, 360.0), (1920.0, 1080.0)]
    t = np.arange(0, 4.0, 1 / rate)
    # 0-2 s on target 1 (offset +20 px in x), 2-4 s on target 2 (offset -20 px in y);
    # the first 0.5 s of each is a saccade far away
    x = np.where(t < 2.0, 660.0, 1920.0)
    y = np.where(t < 2.0, 360.0, 1060.0)
    saccade = (t % 2.0) < 0.5
    x = np.where(saccade, 100.0, x)
    valid = np.ones(t.size, bool)
    valid[(t > 3.0) & (t < 3.25)] = False  # a 0.25 s blink on target 2
    v = validation_run_quality({"local_s": t, "x": x, "y": y, "valid": valid}, targets,
                               [(0.0, 2.0 - 1e-9), (2.0, 4.0)], GEOM, rate_hz=rate)  # fmt: skip
    a1 = float(angular_distance_deg((640.0, 360.0), (660.0, 360.0), GEOM))
    a2 = float(angular_distance_deg((1920.0, 1080.0), (1920.0, 1060.0), GEOM))
    assert v.points[0].accuracy_deg == pytest.approx(a1, rel=1e-9)
    assert v.points[1].accuracy_deg == pytest.approx(a2, rel=1e-9)
    assert v.points[0].offset_px == pytest.approx((20.0, 0.0))
    assert v.points[0].loss_pct == pytest.approx(0.0, abs=2.0)  # 90 expected
    assert v.points[1].loss_pct == pytest.approx(100.0 * 15 / 90, abs=2.0)
    assert v.mean_accuracy_deg == pytest.approx((a1 + a2) / 2)
