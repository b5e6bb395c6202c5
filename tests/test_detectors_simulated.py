"""The simulator's noise is like real trackers', and the detectors hold on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gazelab.gaze.fixations import DEFAULT_METHOD, detect_fixations, savgol_velocity
from gazelab.gaze.recordings import geometry_for, in_intervals, parse_eyelink_asc, parse_tx300_tsv
from gazelab.gaze.trackers.base import STATE_OK
from gazelab.gaze.trackers.simulator import (
    TRACKER_PRECISION,
    ObserverSettings,
    SyntheticObserver,
    precision_at,
    tracker_noise,
)

DATA = Path(__file__).parent / "data" / "recordings"
CASES = [("consumer", 60), ("remote", 300), ("tower", 500), ("tower", 1000), ("tower", 2000)]


def rms_std(x_deg, y_deg):
    """RMS-S2S and STD (2-D, degrees) of one stretch of samples."""
    rms = np.sqrt(np.mean(np.diff(x_deg) ** 2 + np.diff(y_deg) ** 2))
    return rms, np.sqrt(x_deg.var() + y_deg.var())


def fixation_precision(t, x, y, valid, intervals, ppd, min_ms=100.0):
    """Median RMS-S2S and STD over the fixations (all samples valid, ≥ min_ms)."""
    out = []
    for a, b in intervals:
        m = (t >= a) & (t <= b)
        if b - a >= min_ms and m.sum() > 5 and valid[m].all():
            out.append(rms_std(x[m] / ppd, y[m] / ppd))
    return np.median(np.array(out), axis=0), len(out)


@pytest.mark.parametrize(("kind", "rate"), [(k, p.rate_hz) for k, ps in TRACKER_PRECISION.items()
                                            for p in ps])  # fmt: skip
def test_tracker_noise_has_the_tables_precision(kind, rate):
    p = precision_at(kind, rate)
    e = tracker_noise(400_000, p, np.random.default_rng(0))
    rms, std = rms_std(e[:, 0], e[:, 1])
    assert rms == pytest.approx(p.rms_s2s_deg, rel=0.02)
    assert std == pytest.approx(p.std_deg, rel=0.05)


def test_precision_is_interpolated_in_log_rate_and_classes_are_checked():
    lo, hi = precision_at("tower", 500), precision_at("tower", 1000)
    mid = precision_at("tower", np.sqrt(500 * 1000))
    assert mid.rms_s2s_deg == pytest.approx((lo.rms_s2s_deg + hi.rms_s2s_deg) / 2)
    assert precision_at("remote", 1200).rms_s2s_deg == 0.27  # nearest outside the table
    with pytest.raises(ValueError, match="unknown tracker class"):
        precision_at("hmm", 60)
    auto = [ObserverSettings.like("auto", hz).noise_rms_s2s_deg for hz in (60, 300, 1000)]
    assert auto == [precision_at(k, hz).rms_s2s_deg
                    for k, hz in (("consumer", 60), ("remote", 300), ("tower", 1000))]  # fmt: skip


def test_default_observer_noise_is_the_white_noise_of_before():
    s = ObserverSettings()
    assert s.noise_rms_s2s_deg is None and s.precision().components()[0] == 0.0
    obs = SyntheticObserver(seed=4)
    assert obs._drift_px == 0.0  # no drift: one white draw per sample, as before
    assert obs._white_px == s.noise_deg * s.px_per_deg / np.sqrt(2)


def test_the_tables_remote_class_is_the_real_tx300s():
    """The Tobii TX300 excerpt (I2MC example data) measured as the table was made."""
    ppd = 2 * 650 * np.tan(np.radians(0.5)) / (509.174 / 1920)
    g = geometry_for(ppd, (1920, 1080))
    p = precision_at("remote", 300)
    for eye in "LR":
        r = parse_tx300_tsv(DATA / "i2mc_tx300_participant2_1.tsv", eye=eye)
        fx = detect_fixations(r.samples(), DEFAULT_METHOD, g)
        iv = np.stack([fx["onset_ms"], fx["offset_ms"]], axis=1)
        (rms, std), n = fixation_precision(r.t_ms, r.x_px, r.y_px, r.valid, iv, ppd)
        assert n >= 5
        assert rms == pytest.approx(p.rms_s2s_deg, rel=0.15)
        assert std == pytest.approx(p.std_deg, rel=0.2)


def test_the_tables_tower_class_is_like_a_real_eyelink():
    r = parse_eyelink_asc(DATA / "pymovements_eyelink_binocular_example.asc")
    (rms, std), n = fixation_precision(r.t_ms, r.x_px, r.y_px, r.valid, r.fixations,
                                       r.px_per_deg)  # fmt: skip
    p = precision_at("tower", 1000)
    assert n == 2
    assert rms == pytest.approx(p.rms_s2s_deg, rel=0.3)  # a Portable Duo, not a tower
    assert std == pytest.approx(p.std_deg, rel=0.3)


def observe(kind, rate, seconds=12.0, seed=0, **kw):
    s = ObserverSettings.like(kind, rate, **kw)
    obs = SyntheticObserver((1920, 1080), seed=seed, settings=s)
    t = np.arange(0.0, seconds * 1000.0, 1000.0 / rate)
    pts = [obs.at(float(v)) for v in t]
    x = np.array([p.x for p in pts])
    y = np.array([p.y for p in pts])
    ok = np.array([p.state == STATE_OK for p in pts])
    truth = np.array([(a, b) for a, b, _, _ in obs.fixations])
    return t, x, y, ok, truth, s.px_per_deg


@pytest.mark.parametrize(("kind", "rate"), CASES)
def test_simulated_fixations_have_the_precision_of_real_ones(kind, rate):
    t, x, y, ok, truth, ppd = observe(kind, rate, blink_rate_hz=0.0, lost_probability=0.0)
    (rms, std), n = fixation_precision(t, x, y, ok, truth, ppd)
    p = precision_at(kind, rate)
    assert n >= 4
    assert rms == pytest.approx(p.rms_s2s_deg, rel=0.1)
    # STD in the table is the signal's; within one fixation a slow drift shows less of it
    assert 0.5 * p.std_deg <= std <= 1.1 * p.std_deg
    # and the velocity noise the detectors see is the real trackers' (20 ms Savitzky–
    # Golay speed in fixations; EyeLink files: median 1.9-2.5 °/s, TX300: 8.6-14.3 °/s)
    v = savgol_velocity(t, x, y, ok, window_ms=20, px_per_deg=ppd)
    median = np.median(v[in_intervals(t, truth) & np.isfinite(v)])
    low, high = {"tower": (1.0, 3.5), "remote": (8.0, 15.0)}.get(kind, (0.0, np.inf))
    assert low <= median <= high


@pytest.mark.parametrize(("kind", "rate"), CASES)
def test_default_detector_on_simulated_trackers(kind, rate):
    from sklearn.metrics import cohen_kappa_score

    t, x, y, ok, truth, ppd = observe(kind, rate, seed=rate)
    fx = detect_fixations({"time_ms": t, "x": x, "y": y, "valid": ok}, DEFAULT_METHOD,
                          geometry_for(ppd, (1920, 1080)))  # fmt: skip
    pred = in_intervals(t, np.stack([fx["onset_ms"], fx["offset_ms"]], axis=1))
    kappa = cohen_kappa_score(in_intervals(t, truth)[ok], pred[ok])
    assert kappa >= (0.6 if rate < 100 else 0.75)  # the goal on real recordings: 0.75
    assert 0.67 <= len(fx["onset_ms"]) / len(truth) <= 1.5
