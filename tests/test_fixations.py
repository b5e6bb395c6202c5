"""Fixation detection on synthetic signals with known fixations (docs/algorithms.md#fixations)."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.gaze.fixations import add_frames, detect_fixations
from gazelab.gaze.geometry import StimulusLayout

RATE_HZ = 60.0
DT = 1000.0 / RATE_HZ


def signal(plan, noise_px=2.0, seed=0):
    """plan: list of ('fix', ms, x, y) / ('sacc', ms). Returns samples and true fixations."""
    rng = np.random.default_rng(seed)
    t, x, y, fix, truth = [], [], [], [], []
    now, pos = 0.0, np.array([0.0, 0.0])
    for step in plan:
        n = int(round(step[1] / DT))
        if step[0] == "fix":
            target = np.array(step[2:4], dtype=float)
            truth.append((now, now + (n - 1) * DT, *target))
            for _ in range(n):
                t.append(now)
                p = target + rng.normal(0, noise_px, 2)
                x.append(p[0]), y.append(p[1]), fix.append(True)
                now += DT
            pos = target
        else:
            nxt = np.array(step[2:4], dtype=float)
            for k in range(1, n + 1):
                p = pos + (nxt - pos) * k / (n + 1)
                t.append(now), x.append(p[0]), y.append(p[1]), fix.append(False)
                now += DT
    samples = {
        "time_ms": np.array(t),
        "x": np.array(x),
        "y": np.array(y),
        "fix": np.array(fix),
        "valid": np.ones(len(t), bool),
    }
    return samples, truth


PLAN = [
    ("fix", 300, 1000, 600),
    ("sacc", 50, 1400, 700),
    ("fix", 250, 1400, 700),
    ("sacc", 50, 900, 900),
    ("fix", 500, 900, 900),
    ("sacc", 50, 1300, 300),
    ("fix", 200, 1300, 300),
]


@pytest.mark.parametrize("method", ["idt", "ivt", "ivt_filter", "adaptive", "flag"])
def test_known_fixations_are_found_within_one_sample(method, reference_geometry):
    samples, truth = signal(PLAN)
    fx = detect_fixations(samples, method, reference_geometry)
    assert len(fx["onset_ms"]) == len(truth)
    for k, (on, off, tx, ty) in enumerate(truth):
        assert abs(fx["onset_ms"][k] - on) <= DT + 1e-9
        assert abs(fx["offset_ms"][k] - off) <= DT + 1e-9
        assert np.hypot(fx["x_px"][k] - tx, fx["y_px"][k] - ty) < 5
    assert np.all(fx["duration_ms"] == fx["offset_ms"] - fx["onset_ms"])


def test_short_fixations_are_not_fixations(reference_geometry):
    samples, _ = signal([("fix", 66, 500, 500), ("sacc", 50, 900, 500), ("fix", 300, 900, 500)])
    for method in ("idt", "ivt", "ivt_filter", "adaptive"):
        fx = detect_fixations(
            samples, method, reference_geometry, min_duration_ms=100, min_fixation_ms=100
        )
        assert fx["x_px"].round(-1).tolist() == [900.0]


def test_invalid_samples_split_fixations(reference_geometry):
    samples, _ = signal([("fix", 600, 800, 800)])
    samples["valid"][15:20] = False  # a blink in the middle
    samples["x"][15:20] = 0.0
    fx = detect_fixations(samples, "idt", reference_geometry)
    assert len(fx["onset_ms"]) == 2
    assert (
        fx["offset_ms"][0] == samples["time_ms"][14] and fx["onset_ms"][1] == samples["time_ms"][20]
    )


def test_dispersion_threshold_is_in_degrees(reference_geometry):
    # a 1.5° drift is one fixation at 2° threshold, and not one at 1°
    n = 30
    x = np.linspace(1000, 1000 + reference_geometry.deg_to_px(1.5), n)
    s = {"time_ms": np.arange(n) * DT, "x": x, "y": np.full(n, 500.0), "valid": np.ones(n, bool)}
    assert len(detect_fixations(s, "idt", reference_geometry, dispersion_deg=2.0)["x_px"]) == 1
    one = detect_fixations(s, "idt", reference_geometry, dispersion_deg=1.0)
    assert all(d < 500 for d in one["duration_ms"])


def test_velocity_threshold_is_in_degrees_per_second(reference_geometry):
    n = 30
    speed_deg_s = 20.0  # smooth pursuit slower than 30 °/s is 'fixation' for I-VT
    x = 1000 + np.arange(n) * DT / 1000 * reference_geometry.deg_to_px(speed_deg_s)
    s = {"time_ms": np.arange(n) * DT, "x": x, "y": np.full(n, 500.0), "valid": np.ones(n, bool)}
    assert len(detect_fixations(s, "ivt", reference_geometry, velocity_deg_s=30)["x_px"]) == 1
    assert len(detect_fixations(s, "ivt", reference_geometry, velocity_deg_s=10)["x_px"]) == 0


def test_frames_are_added(reference_geometry):
    samples, _ = signal([("fix", 300, 1280, 720)], noise_px=0)
    fx = add_frames(
        detect_fixations(samples, "idt", reference_geometry),
        StimulusLayout((2560, 1440), 1200, (490, 640)),
    )
    assert fx["x_stim"][0] == pytest.approx(600) and fx["y_stim"][0] == pytest.approx(600)
    assert fx["x_img"][0] == pytest.approx(320) and fx["y_img"][0] == pytest.approx(245)
    assert fx["in_image"].tolist() == [True]


def test_unknown_method_and_unsorted_times_are_errors(reference_geometry):
    samples, _ = signal([("fix", 300, 1280, 720)])
    with pytest.raises(ValueError, match="unknown fixation method"):
        detect_fixations(samples, "hmm", reference_geometry)
    samples["time_ms"] = samples["time_ms"][::-1].copy()
    with pytest.raises(ValueError, match="non-decreasing"):
        detect_fixations(samples, "idt", reference_geometry)


@pytest.mark.parametrize("method", ["idt", "ivt", "ivt_filter", "adaptive"])
def test_stored_samples_arriving_in_bursts_give_the_same_fixations(
    method, tmp_path, reference_geometry
):
    """Detection runs on the tracker clock: TCP bursts bunch the reception times (local_s)
    but leave the fixations of a stored session unchanged."""
    from gazelab.annotation.store import SessionStore
    from gazelab.gaze.trackers.base import GazeSample

    samples, truth = signal(
        [("fix", 400, 600, 500), ("sacc", 50, 1400, 700), ("fix", 500, 1400, 700)]
    )
    n = len(samples["time_ms"])
    even = samples["time_ms"] / 1000.0
    bursts = np.repeat(even[::8], 8)[:n] + 1e-6 * np.arange(n)  # 8 samples per TCP read
    tables = []
    with SessionStore(tmp_path / "s.sqlite", create=True) as store:
        for local in (even, bursts):
            sid = store.create_session(
                "P01", settings_toml="", seed=0, image_source="synthetic:1:0",
                stimulus_order=["a"], start_local_s=0.0,
            ).id  # fmt: skip
            store.add_samples(sid, [
                GazeSample(float(t), float(ls), float(x), float(y), bool(f))
                for t, ls, x, y, f in zip(samples["time_ms"], local, samples["x"], samples["y"],
                                          samples["fix"], strict=True)
            ], trial_index=0, phase="image")  # fmt: skip
            tables.append(store.samples(sid, 0))
    a, b = (detect_fixations(t, method, reference_geometry) for t in tables)
    assert len(a["onset_ms"]) == len(truth) == len(b["onset_ms"])
    for col in ("onset_ms", "offset_ms", "x_px", "y_px"):
        np.testing.assert_array_equal(a[col], b[col])


def test_every_registered_detector_is_a_settings_choice():
    import dataclasses

    from gazelab.gaze.fixations import DETECTORS
    from gazelab.settings import FixationSettings

    field = {f.name: f for f in dataclasses.fields(FixationSettings)}["method"]
    assert set(field.metadata["choices"]) == set(DETECTORS)
    assert {"idt", "ivt", "ivt_filter", "adaptive", "flag"} <= set(DETECTORS)  # at least these
    assert FixationSettings().method == "adaptive"  # chosen by benchmarks/bench_fixations.py


def _ivt_loop_reference(t, x, y, valid, *, velocity_deg_s, px_per_deg, window_ms, min_ms):
    """I-VT written as the definition: per stretch of contiguous valid samples,
    scipy's Savitzky-Golay derivative (mode="interp"), then runs of slow samples."""
    from scipy.signal import savgol_filter

    from gazelab.gaze.fixations import contiguous, run_bounds

    period = float(np.median(np.diff(t)[np.diff(t) > 0]))
    w = max(3, int(round(window_ms / period)) | 1)
    step_ok = contiguous(t, valid)
    out = []
    k = 0
    n = len(t)
    while k < n:
        j = k
        while j + 1 < n and step_ok[j]:
            j += 1
        if j > k and valid[k]:
            seg = slice(k, j + 1)
            m = j - k + 1
            ww = min(w, m if m % 2 else m - 1)
            if ww >= 3:
                vx = savgol_filter(x[seg], ww, 2, deriv=1, delta=period, mode="interp")
                vy = savgol_filter(y[seg], ww, 2, deriv=1, delta=period, mode="interp")
            else:  # two samples: the chord
                vx = np.full(m, (x[j] - x[k]) / (t[j] - t[k]))
                vy = np.full(m, (y[j] - y[k]) / (t[j] - t[k]))
            slow = np.hypot(vx, vy) * 1000 / px_per_deg < velocity_deg_s
            for a, b in zip(*run_bounds(slow), strict=True):
                if t[k + b - 1] - t[k + a] >= min_ms:
                    out.append((k + a, k + b - 1))
        k = j + 1
    return out


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_ivt_equals_the_loop_definition(seed: int) -> None:
    from gazelab.gaze.detectors.ivt import ivt

    rng = np.random.default_rng(seed)
    n = 3000
    t = np.cumsum(rng.choice([2.0, 40.0], size=n, p=[0.995, 0.005]))  # 500 Hz, a few gaps
    jumps = np.cumsum(rng.random(n) < 0.01) * 150.0  # saccades every ~100 samples
    x = 500 + jumps % 900 + rng.normal(0, 1, n)
    y = 300 + (jumps * 0.7) % 600 + rng.normal(0, 1, n)
    valid = rng.random(n) > 0.003
    valid[100:101] = True
    for thr, win in ((20.0, 20.0), (30.0, 10.0), (60.0, 40.0)):
        kw = dict(velocity_deg_s=thr, px_per_deg=40.0)
        got = ivt(t, x, y, valid, min_fixation_ms=40.0, window_ms=win, **kw)
        want = _ivt_loop_reference(t, x, y, valid, window_ms=win, min_ms=40.0, **kw)
        assert [tuple(r) for r in got.tolist()] == want and len(want) > 5


@pytest.mark.parametrize("overlapping", [False, True])
def test_fixation_table_equals_the_loop_over_fixations(overlapping: bool) -> None:
    from gazelab.gaze.fixations import fixation_table

    rng = np.random.default_rng(1)
    n = 2000
    t = np.arange(n) * 2.0
    x, y = rng.normal(500, 50, n), rng.normal(300, 50, n)
    valid = rng.random(n) > 0.1
    edges = np.sort(rng.choice(np.arange(1, n), 80, replace=False))
    segs = np.stack([edges[::2], edges[1::2] - 1], axis=1)
    segs[-1, 1] = n - 1  # one runs to the last sample
    if overlapping:
        segs = np.r_[segs, [[10, 500]]]
    fx = fixation_table(segs, t, x, y, valid)
    for k, (a, b) in enumerate(segs):
        ok = valid[a : b + 1]
        assert fx["x_px"][k] == pytest.approx(x[a : b + 1][ok].mean(), rel=1e-12)
        assert fx["y_px"][k] == pytest.approx(y[a : b + 1][ok].mean(), rel=1e-12)
        assert (fx["onset_ms"][k], fx["offset_ms"][k]) == (t[a], t[b])
        assert fx["n_samples"][k] == b - a + 1 and fx["first_sample"][k] == a


def test_slope_weights_are_scipy_s_savgol_coefficients() -> None:
    """The velocity's Savitzky–Golay weights are made without importing scipy.signal: the
    same floats as its savgol_coeffs."""
    from scipy.signal import savgol_coeffs

    from gazelab.gaze.fixations import _slope_weights

    rng = np.random.default_rng(0)
    for w in (3, 5, 7, 11, 21, 61):
        for period in [1000 / 60, 1000 / 300, 1.0, 4.0, *rng.uniform(0.5, 40, 20)]:
            want = savgol_coeffs(w, 2, deriv=1, delta=float(period), use="dot")
            assert _slope_weights(w, float(period)).tobytes() == want.tobytes()
