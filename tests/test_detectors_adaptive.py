"""The adaptive, noise-driven velocity threshold (Nyström & Holmqvist 2010)."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.gaze.detectors.adaptive import (
    DISPERSION_ABOVE_DEG_S,
    MIN_ONSET_DEG_S,
    adaptive,
    adaptive_threshold,
)
from gazelab.gaze.fixations import detect_fixations, fixation_table, savgol_velocity
from gazelab.gaze.recordings import in_intervals
from gazelab.gaze.trackers.simulator import precision_at, tracker_noise

PPD = 40.0


@pytest.fixture
def geometry():
    from gazelab.gaze.recordings import geometry_for

    return geometry_for(PPD, (1920, 1080))


def scanpath(rate_hz, n_fix=12, seed=0):
    """Fixations of 150-450 ms on random targets 3-10° apart, 30-50 ms saccades with a
    cosine profile. Returns (t, x, y) without noise and the true fixation intervals."""
    rng = np.random.default_rng(seed)
    dt = 1000.0 / rate_hz
    t, x, y, truth = [], [], [], []
    pos, now = np.array([20.0, 12.0]), 0.0
    for _ in range(n_fix):
        n = int(rng.uniform(150, 450) / dt)
        truth.append((now, now + (n - 1) * dt))
        for _ in range(n):
            t.append(now), x.append(pos[0]), y.append(pos[1])
            now += dt
        ang, amp = rng.uniform(0, 2 * np.pi), rng.uniform(3, 10)
        nxt = np.clip(pos + amp * np.array([np.cos(ang), np.sin(ang)]), 2, 40)
        m = max(1, int(rng.uniform(30, 50) / dt))
        for j in range(1, m + 1):
            p = pos + (0.5 - 0.5 * np.cos(np.pi * j / (m + 1))) * (nxt - pos)
            t.append(now), x.append(p[0]), y.append(p[1])
            now += dt
        pos = nxt
    return np.array(t), np.array(x) * PPD, np.array(y) * PPD, np.array(truth)


def kappa(truth_iv, t, fx):
    from sklearn.metrics import cohen_kappa_score

    pred = in_intervals(t, np.stack([fx["onset_ms"], fx["offset_ms"]], axis=1))
    return cohen_kappa_score(in_intervals(t, truth_iv), pred)


def test_threshold_follows_the_noise():
    rng = np.random.default_rng(1)
    quiet = np.abs(rng.normal(0, 3, 20_000))
    noisy = np.abs(rng.normal(0, 9, 20_000))
    saccades = rng.uniform(100, 400, 400)  # fast samples do not drag the threshold up
    lo = adaptive_threshold(np.r_[quiet, saccades])
    hi = adaptive_threshold(np.r_[noisy, saccades])
    assert 2.5 < hi / lo < 3.5
    med = np.median(quiet)
    assert lo == pytest.approx(med + 3 * 1.4826 * np.median(np.abs(quiet - med)), rel=0.05)


def test_remote_tracker_noise_keeps_fixations_whole_where_fixed_ivt_splits_them(geometry):
    # Tobii TX300-like noise at 300 Hz (0.27° RMS-S2S): fixed 30 °/s I-VT breaks the
    # fixations into pieces, the adaptive threshold rises with the noise.
    t, x, y, truth = scanpath(300)
    e = tracker_noise(len(t), precision_at("remote", 300), np.random.default_rng(2)) * PPD
    s = {"time_ms": t, "x": x + e[:, 0], "y": y + e[:, 1], "valid": np.ones(len(t), bool)}
    ada = detect_fixations(s, "adaptive", geometry)
    ivt = detect_fixations(s, "ivt", geometry)
    assert len(ada["onset_ms"]) == len(truth)
    assert kappa(truth, t, ada) >= 0.85
    assert len(ivt["onset_ms"]) > 1.3 * len(truth)  # fixed I-VT: split by the noise
    assert kappa(truth, t, ivt) < kappa(truth, t, ada) - 0.1


@pytest.mark.parametrize(
    ("kind", "rate", "min_kappa"),
    [("tower", 1000, 0.9), ("tower", 500, 0.9), ("consumer", 60, 0.6)],
)
def test_known_fixations_at_tracker_noise(kind, rate, min_kappa, geometry):
    # at 60 Hz a saccade is 2-3 samples and each fixation edge moves by one: κ is lower
    t, x, y, truth = scanpath(rate, seed=rate)
    e = tracker_noise(len(t), precision_at(kind, rate), np.random.default_rng(3)) * PPD
    s = {"time_ms": t, "x": x + e[:, 0], "y": y + e[:, 1], "valid": np.ones(len(t), bool)}
    fx = detect_fixations(s, "adaptive", geometry)
    assert len(fx["onset_ms"]) == len(truth)
    assert kappa(truth, t, fx) >= min_kappa


def test_threshold_is_kept_within_its_bounds(geometry):
    t = np.arange(2000) * 1.0
    flat = {"time_ms": t, "x": np.full(2000, 500.0), "y": np.full(2000, 500.0)}
    fx = detect_fixations(flat, "adaptive", geometry)  # no noise at all: one fixation
    assert len(fx["onset_ms"]) == 1 and fx["duration_ms"][0] == 1999.0
    drift = dict(flat, x=500 + t / 1000 * (MIN_ONSET_DEG_S * 0.8) * PPD)  # below the floor
    assert len(detect_fixations(drift, "adaptive", geometry)["onset_ms"]) == 1


def noisy_150hz(sd_deg=0.5, scale=1.0):
    """A 150 Hz scanpath (30 fixations) with white noise of ``sd_deg`` per axis — the
    order of the Gazepoint GP3 recordings' raw signal — in px at ``scale`` × 40 px/°."""
    t, x, y, truth = scanpath(150, n_fix=30, seed=4)
    e = np.random.default_rng(5).normal(0, sd_deg, (len(t), 2)) * PPD
    s = {"time_ms": t, "x": (x + e[:, 0]) * scale, "y": (y + e[:, 1]) * scale}
    return s, truth


def test_a_signal_too_noisy_for_speed_is_split_by_dispersion(geometry):
    s, truth = noisy_150hz()
    t, x, y = s["time_ms"], s["x"], s["y"]
    ok = np.ones(len(t), bool)
    thr = adaptive_threshold(savgol_velocity(t, x, y, ok, window_ms=20, px_per_deg=PPD))
    assert thr > DISPERSION_ABOVE_DEG_S  # about 180 °/s: saccades of 3-10° peak near it
    fx = detect_fixations(s, "adaptive", geometry)
    speed_only = fixation_table(
        adaptive(t, x, y, ok, px_per_deg=PPD, min_fixation_ms=40.0,
                 dispersion_above_deg_s=np.inf), t, x, y)  # fmt: skip
    # the dispersion windows find each fixation (count 1.03x; by speed alone 0.87x) ...
    assert abs(len(fx["onset_ms"]) - len(truth)) <= 1
    assert len(speed_only["onset_ms"]) <= len(truth) - 3
    onset_err = [np.min(np.abs(fx["onset_ms"] - a)) for a, _ in truth]
    assert np.median(onset_err) <= 20.0  # 3 samples
    # ... and, like Gazepoint's own filter, let them absorb the saccades' samples: the
    # windows cover nearly every sample, so sample-level κ against the truth is low
    covered = in_intervals(t, np.stack([fx["onset_ms"], fx["offset_ms"]], axis=1)).mean()
    assert covered > 0.97 and kappa(truth, t, fx) < 0.3


def test_the_dispersion_fallback_does_not_depend_on_pixels_per_degree():
    from gazelab.gaze.recordings import geometry_for

    a, _ = noisy_150hz()
    b, _ = noisy_150hz(scale=0.75)  # the same gaze on a screen of 30 px/°
    fa = detect_fixations(a, "adaptive", geometry_for(PPD, (1920, 1080)))
    fb = detect_fixations(b, "adaptive", geometry_for(0.75 * PPD, (1920, 1080)))
    assert len(fa["onset_ms"]) > 20
    np.testing.assert_array_equal(fa["onset_ms"], fb["onset_ms"])
    np.testing.assert_array_equal(fa["offset_ms"], fb["offset_ms"])
