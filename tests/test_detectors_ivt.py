"""I-VT with Savitzky–Golay velocity on hand-made traces with known fixations."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.gaze.fixations import detect_fixations, savgol_velocity

PPD = 40.0  # px per degree of the hand-made geometry below


@pytest.fixture
def geometry():
    from gazelab.gaze.recordings import geometry_for

    return geometry_for(PPD, (1920, 1080))


def trace(plan, rate_hz, noise_deg=0.0, seed=0):
    """plan: ('fix', ms, x_deg, y_deg) / ('sacc', ms) / ('gap', ms) steps. A saccade moves
    with a cosine profile to the next fixation's target. Returns samples and the true
    fixations as (first_ms, last_ms, x_px, y_px)."""
    rng = np.random.default_rng(seed)
    dt = 1000.0 / rate_hz
    t, x, y, ok, truth = [], [], [], [], []
    now, pos = 0.0, None
    targets = [np.array(s[2:4], float) * PPD for s in plan if s[0] == "fix"]
    k = 0
    for step in plan:
        n = int(round(step[1] / dt))
        if step[0] == "fix":
            p = targets[k]
            truth.append((now, now + (n - 1) * dt, *p))
            for _ in range(n):
                t.append(now), x.append(p[0]), y.append(p[1]), ok.append(True)
                now += dt
            pos, k = p, k + 1
        elif step[0] == "sacc":
            nxt = targets[k]
            for j in range(1, n + 1):
                f = 0.5 - 0.5 * np.cos(np.pi * j / (n + 1))
                p = pos + f * (nxt - pos)
                t.append(now), x.append(p[0]), y.append(p[1]), ok.append(True)
                now += dt
        else:  # data loss
            for _ in range(n):
                t.append(now), x.append(np.nan), y.append(np.nan), ok.append(False)
                now += dt
    xs = np.array(x) + rng.normal(0, noise_deg / np.sqrt(2) * PPD, len(x))
    ys = np.array(y) + rng.normal(0, noise_deg / np.sqrt(2) * PPD, len(y))
    return {"time_ms": np.array(t), "x": xs, "y": ys, "valid": np.array(ok)}, truth


PLAN = [
    ("fix", 300, 10, 10), ("sacc", 30), ("fix", 250, 18, 10), ("sacc", 40),
    ("fix", 500, 8, 20), ("sacc", 30), ("fix", 200, 15, 15),
]  # fmt: skip


@pytest.mark.parametrize("rate_hz", [60, 250, 500, 1000, 2000])
def test_known_fixations_are_found_at_every_rate(rate_hz, geometry):
    samples, truth = trace(PLAN, rate_hz, noise_deg=0.02)
    fx = detect_fixations(samples, "ivt", geometry)
    assert len(fx["onset_ms"]) == len(truth)
    slack = 10.0 + 1000.0 / rate_hz  # half the 20 ms window, plus a sample
    for k, (on, off, tx, ty) in enumerate(truth):
        assert abs(fx["onset_ms"][k] - on) <= slack
        assert abs(fx["offset_ms"][k] - off) <= slack
        assert np.hypot(fx["x_px"][k] - tx, fx["y_px"][k] - ty) < 0.1 * PPD


def test_noise_that_breaks_sample_to_sample_velocity_leaves_fixations_whole(geometry):
    # EyeLink at 500 Hz: RMS-S2S about 0.03°; the step-to-step speed alone then averages
    # about 15 °/s and often passes 30 °/s, the Savitzky–Golay speed stays far below.
    samples, truth = trace(PLAN, 500, noise_deg=0.03, seed=3)
    t, x, y = samples["time_ms"], samples["x"], samples["y"]
    step = np.hypot(np.diff(x), np.diff(y)) / np.diff(t) * 1000 / PPD
    v = savgol_velocity(t, x, y, samples["valid"], window_ms=20, px_per_deg=PPD)
    in_fix = np.zeros(len(t), bool)
    for on, off, *_ in truth:
        in_fix |= (t >= on + 12) & (t <= off - 12)
    assert np.mean(step[in_fix[1:]] > 30) > 0.01
    assert np.percentile(v[in_fix], 99.9) < 10
    assert len(detect_fixations(samples, "ivt", geometry)["onset_ms"]) == len(truth)


def test_velocity_threshold_is_in_degrees_per_second(geometry):
    n, rate = 300, 500.0
    t = np.arange(n) * 1000 / rate
    for speed, found in ((20.0, 1), (40.0, 0)):  # pursuit at 20 °/s is below 30 °/s
        x = 100 + t / 1000 * speed * PPD
        s = {"time_ms": t, "x": x, "y": np.full(n, 500.0), "valid": np.ones(n, bool)}
        assert len(detect_fixations(s, "ivt", geometry, velocity_deg_s=30)["x_px"]) == found


def test_the_window_is_in_ms_whatever_the_rate(geometry):
    # same trace at 500 and 1000 Hz: the same fixations to within a sample
    a, _ = trace(PLAN, 500, noise_deg=0.02)
    b, _ = trace(PLAN, 1000, noise_deg=0.02)
    fa = detect_fixations(a, "ivt", geometry, velocity_window_ms=30)
    fb = detect_fixations(b, "ivt", geometry, velocity_window_ms=30)
    np.testing.assert_allclose(fa["onset_ms"], fb["onset_ms"], atol=2.0)
    np.testing.assert_allclose(fa["offset_ms"], fb["offset_ms"], atol=2.0)


def test_invalid_samples_and_gaps_in_time_split_fixations(geometry):
    samples, _ = trace([("fix", 300, 10, 10), ("gap", 20), ("fix", 300, 10, 10)], 500)
    fx = detect_fixations(samples, "ivt", geometry)
    assert len(fx["onset_ms"]) == 2
    first_invalid = samples["time_ms"][~samples["valid"]][0]
    assert fx["offset_ms"][0] < first_invalid < fx["onset_ms"][1]
    # two recording blocks without samples between them (EyeLink START/END)
    s2, _ = trace([("fix", 300, 10, 10)], 500)
    s2 = {k: np.r_[v, v] for k, v in s2.items()}
    s2["time_ms"][150:] += 2000.0
    assert len(detect_fixations(s2, "ivt", geometry)["onset_ms"]) == 2


def test_short_fixations_are_dropped_by_min_fixation_ms(geometry):
    samples, _ = trace([("fix", 200, 5, 5), ("sacc", 30), ("fix", 50, 15, 5),
                        ("sacc", 30), ("fix", 200, 25, 5)], 1000)  # fmt: skip
    assert len(detect_fixations(samples, "ivt", geometry, min_fixation_ms=30)["x_px"]) == 3
    assert len(detect_fixations(samples, "ivt", geometry, min_fixation_ms=60)["x_px"]) == 2


def test_savgol_velocity_of_a_known_motion():
    t = np.arange(200) * 2.0
    x = 0.5 * 0.001 * t**2 * PPD  # 0.5 a t², a = 1 °/ms² ... v = a t
    v = savgol_velocity(t, x, 0 * x, np.ones(200, bool), window_ms=20, px_per_deg=PPD)
    np.testing.assert_allclose(v, t * 1.0, rtol=1e-9, atol=1e-9)  # exact for a parabola
    lone = np.ones(200, bool)
    lone[[99, 101]] = False  # sample 100 alone between invalid ones: no velocity
    v2 = savgol_velocity(t, x, 0 * x, lone, window_ms=20, px_per_deg=PPD)
    assert (
        np.isinf(v2[[99, 100, 101]]).all() and np.isfinite(v2[lone & (np.arange(200) != 100)]).all()
    )
