"""Tobii's I-VT filter (Olsen 2012) on hand-made traces: gap fill, merge, discard."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.gaze.fixations import detect_fixations, fill_gaps, merge_segments

PPD = 40.0


@pytest.fixture
def geometry():
    from gazelab.gaze.recordings import geometry_for

    return geometry_for(PPD, (1920, 1080))


def trace(plan, rate_hz=300.0):
    """plan: ('fix', ms, x_deg, y_deg) / ('sacc', ms) / ('gap', ms); no noise."""
    dt = 1000.0 / rate_hz
    t, x, y, ok = [], [], [], []
    targets = [np.array(s[2:4], float) * PPD for s in plan if s[0] == "fix"]
    now, k, pos = 0.0, 0, None
    for step in plan:
        n = int(round(step[1] / dt))
        for j in range(1, n + 1):
            if step[0] == "fix":
                p, good = targets[k], True
            elif step[0] == "sacc":
                p, good = pos + (0.5 - 0.5 * np.cos(np.pi * j / (n + 1))) * (targets[k] - pos), True
            else:
                p, good = np.array([np.nan, np.nan]), False
            t.append(now), x.append(p[0]), y.append(p[1]), ok.append(good)
            now += dt
        if step[0] == "fix":
            pos, k = targets[k], k + 1
    return {"time_ms": np.array(t), "x": np.array(x), "y": np.array(y), "valid": np.array(ok)}


def n_fix(samples, method, geometry, **kw):
    return len(detect_fixations(samples, method, geometry, **kw)["onset_ms"])


def test_a_short_gap_is_filled_a_blink_is_not(geometry):
    short = trace([("fix", 300, 10, 10), ("gap", 40), ("fix", 300, 10, 10)])
    assert n_fix(short, "ivt", geometry) == 2  # plain I-VT: split by the lost samples
    assert n_fix(short, "ivt_filter", geometry) == 1
    assert n_fix(short, "ivt_filter", geometry, gap_fill_ms=0, merge_gap_ms=0) == 2
    blink = trace([("fix", 300, 10, 10), ("gap", 150), ("fix", 300, 10, 10)])
    assert n_fix(blink, "ivt_filter", geometry) == 2  # over 75 ms: neither filled nor merged


def test_a_tiny_saccade_is_merged_a_real_one_is_not(geometry):
    tiny = trace([("fix", 300, 10, 10), ("sacc", 20), ("fix", 300, 10.3, 10)], 1000)
    real = trace([("fix", 300, 10, 10), ("sacc", 30), ("fix", 300, 12, 10)], 1000)
    assert n_fix(tiny, "ivt", geometry, velocity_deg_s=10) == 2
    assert n_fix(tiny, "ivt_filter", geometry, velocity_deg_s=10) == 1  # 0.3° ≤ 0.5°
    assert n_fix(tiny, "ivt_filter", geometry, velocity_deg_s=10, merge_angle_deg=0.2) == 2
    assert n_fix(real, "ivt_filter", geometry, velocity_deg_s=10) == 2  # 2° > 0.5°


def test_merged_fixation_spans_both_and_centroid_uses_recorded_samples(geometry):
    s = trace([("fix", 300, 10, 10), ("gap", 40), ("fix", 300, 10.2, 10)])
    fx = detect_fixations(s, "ivt_filter", geometry)
    assert fx["onset_ms"].tolist() == [0.0] and fx["offset_ms"][0] == s["time_ms"][-1]
    assert fx["x_px"][0] == pytest.approx(10.1 * PPD, abs=0.05 * PPD)
    assert np.isfinite(fx["y_px"][0])  # the lost samples (NaN) are not averaged


def test_short_fixations_are_discarded(geometry):
    s = trace([("fix", 300, 5, 5), ("sacc", 30), ("fix", 50, 10, 5), ("sacc", 30),
               ("fix", 300, 15, 5)], 1000)  # fmt: skip
    assert n_fix(s, "ivt_filter", geometry, min_fixation_ms=60) == 2  # Tobii's default
    assert n_fix(s, "ivt_filter", geometry, min_fixation_ms=30) == 3


def test_fill_gaps_interpolates_only_inside_and_short_gaps():
    t = np.arange(10) * 10.0
    x = np.arange(10) * 1.0
    valid = np.ones(10, bool)
    valid[[0, 3, 4, 8, 9]] = False  # a leading loss, a 30 ms gap, a trailing loss
    xf, _, vf = fill_gaps(t, x, x, valid, max_gap_ms=30)
    assert vf.tolist() == [False] + [True] * 7 + [False, False]
    np.testing.assert_allclose(xf[3:5], [3.0, 4.0])
    _, _, v2 = fill_gaps(t, x, x, valid, max_gap_ms=20)
    assert v2.tolist() == valid.tolist()


def test_merge_segments_compares_with_the_fixation_merged_so_far():
    t = np.arange(30) * 10.0
    x = np.r_[np.zeros(10), np.full(10, 4.0), np.full(10, 8.0)]  # 4 px steps
    segs = np.array([[0, 8], [10, 18], [20, 29]])
    one = merge_segments(segs, t, x, 0 * x, np.ones(30, bool), max_gap_ms=20, max_dist_px=5)
    assert one.tolist() == [[0, 18], [20, 29]]  # 0|4 join (4 px); their centroid 2 vs 8: 6 px
    far = merge_segments(segs, t, x, 0 * x, np.ones(30, bool), max_gap_ms=5, max_dist_px=5)
    assert far.tolist() == segs.tolist()  # 20 ms gaps > 5 ms
