"""Metrics on hand-made maps with known values, cross-checked with scipy / scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from gazelab.analysis.metrics import (
    MetricError,
    auc_judd,
    cc,
    cohen_kappa,
    compare_maps,
    contour_iou,
    cosine_distance,
    kld,
    label_agreement,
    nss,
    sim,
    spearman,
)


def disk(shape: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r**2).astype(float)


def test_identical_and_disjoint_maps() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((40, 50))
    assert contour_iou(a, a) == 1.0
    assert cosine_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    assert cosine_distance(a, 3 * a) == pytest.approx(0.0, abs=1e-12)
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, a**3) == pytest.approx(1.0)  # any monotone transform
    assert cc(a, 2 * a + 1) == pytest.approx(1.0)
    assert sim(a, a) == pytest.approx(1.0)
    assert kld(a, a) == pytest.approx(0.0, abs=1e-9)
    left = np.zeros((10, 10))
    left[:, :5] = 1
    right = 1 - left
    assert contour_iou(left, right) == 0.0
    assert cosine_distance(left, right) == pytest.approx(1.0)
    assert sim(left, right) == 0.0
    assert spearman(left, right) == pytest.approx(-1.0)


def test_shifted_disks_have_the_analytic_iou() -> None:
    # two disks of radius r with centres d apart: lens area 2r²acos(d/2r) − (d/2)√(4r²−d²)
    r, d = 60.0, 50.0
    a = disk((400, 400), 200, 200, r)
    b = disk((400, 400), 200 + d, 200, r)
    lens = 2 * r**2 * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r**2 - d**2)
    expected = lens / (2 * math.pi * r**2 - lens)
    assert contour_iou(a, b) == pytest.approx(expected, rel=0.01)  # pixel discretisation


def test_nss_and_auc_on_hand_made_cases() -> None:
    s = np.zeros((4, 4))
    s[0, 0] = 1.0
    fix = np.zeros((4, 4))
    fix[0, 0] = 1
    # z-score of the one hot pixel: (1 − 1/16) / sd, sd = sqrt(15)/16
    assert nss(s, fix) == pytest.approx((15 / 16) / (math.sqrt(15) / 16))
    assert auc_judd(s, fix) == pytest.approx(1.0)  # the fixation is the most salient pixel
    fix2 = np.zeros((4, 4))
    fix2[3, 3] = 1
    # ties with every other pixel: counted as above (the reference without jitter): chance
    assert auc_judd(s, fix2, jitter=False) == pytest.approx(0.5)
    with pytest.raises(MetricError, match="no fixated pixel"):
        nss(s, np.zeros((4, 4)))


def test_cross_checked_against_scipy_and_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    for _ in range(5):
        a = rng.gamma(2.0, size=(30, 40))
        b = a + rng.gamma(2.0, size=(30, 40))
        b[rng.random((30, 40)) < 0.3] = 0
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
        assert cc(a, b) == pytest.approx(stats.pearsonr(a.ravel(), b.ravel())[0], abs=1e-12)
        assert cosine_distance(a, b) == pytest.approx(distance.cosine(a.ravel(), b.ravel()))
        p, q = a / a.sum(), b / b.sum()
        assert sim(a, b) == pytest.approx(1 - 0.5 * distance.cityblock(p.ravel(), q.ravel()))
        assert kld(a, b + 1e-3) == pytest.approx(
            stats.entropy(p.ravel(), ((b + 1e-3) / (b + 1e-3).sum()).ravel()), rel=1e-6
        )
        assert contour_iou(a, b) == pytest.approx(
            1 - distance.jaccard(a.ravel() > 0, b.ravel() > 0)
        )
        fix = (rng.random((30, 40)) < 0.05).astype(int)
        # with continuous saliency (no ties) AUC-Judd ≈ ROC AUC of fixated vs other pixels
        assert auc_judd(a, fix) == pytest.approx(roc_auc_score(fix.ravel(), a.ravel()), abs=0.02)
        z = stats.zscore(a.ravel())
        assert nss(a, fix) == pytest.approx(z[fix.ravel() > 0].mean())


def test_bad_input_is_named() -> None:
    with pytest.raises(MetricError, match="shape"):
        spearman(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(MetricError, match="NaN"):
        cc(np.full((3, 3), np.nan), np.zeros((3, 3)))
    with pytest.raises(MetricError, match="non-negative"):
        sim(-np.ones((2, 2)), np.ones((2, 2)))


def test_label_agreement() -> None:
    a = ["happy", "sadness", "fear", "happy", "anger", "neutral"]
    b = ["happy", "sadness", "surprise", "happy", "anger", "fear"]
    # po = 4/6; pe = Σ p_a(k) p_b(k) = (2·2 + 1·1 + 1·1 + 1·1)/36 ... computed by hand
    pa = {"happy": 2, "sadness": 1, "fear": 1, "anger": 1, "neutral": 1}
    pb = {"happy": 2, "sadness": 1, "surprise": 1, "anger": 1, "fear": 1}
    pe = sum(pa.get(k, 0) * pb.get(k, 0) for k in set(pa) | set(pb)) / 36
    assert cohen_kappa(a, b) == pytest.approx((4 / 6 - pe) / (1 - pe))
    assert cohen_kappa(a, a) == 1.0
    res = label_agreement(a, b, ["neutral", "anger", "fear", "happy", "sadness", "surprise"])
    assert res["accuracy"] == pytest.approx(4 / 6)
    conf = np.array(res["confusion"])
    assert conf.sum() == 6 and conf[3, 3] == 2 and conf[2, 5] == 1 and conf[0, 2] == 1


def test_compare_maps_has_every_column() -> None:
    a = disk((50, 50), 20, 20, 8)
    b = disk((50, 50), 25, 20, 8)
    out = compare_maps(a, b, fixation_map=a)
    assert set(out) == {"iou", "spearman", "cosine_distance", "cc", "sim", "kld", "nss", "auc_judd"}
    assert 0 < out["iou"] < 1 and out["nss"] > 0


# -- the fast exact Spearman, MIT's AUC-Judd, NSS at pysaliency's speed -----------
def _truncated_heatmap(rng: np.random.Generator, shape: tuple[int, int], zero: float) -> np.ndarray:
    """A map whose ``zero`` share of pixels are exact zeros (truncated Gaussians)."""
    m = rng.gamma(2.0, size=shape)
    m[rng.random(shape) < zero] = 0.0
    return m


@pytest.mark.filterwarnings("ignore:An input array is constant")
@pytest.mark.parametrize("zero", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_spearman_with_a_zero_tie_block_equals_scipy(zero: float) -> None:
    rng = np.random.default_rng(int(zero * 100))
    for _ in range(4):
        a = _truncated_heatmap(rng, (48, 64), zero)
        b = _truncated_heatmap(rng, (48, 64), 0.9)
        b[:5] = np.round(b[:5])  # more ties among the non-zero values
        expected = stats.spearmanr(a.ravel(), b.ravel())[0]
        if np.isnan(expected):  # a constant map: scipy says NaN, gazelab 0 (as cc does)
            assert spearman(a, b) == 0.0
        else:
            assert spearman(a, b) == pytest.approx(expected, abs=1e-12)


def test_ranks_equal_scipy_with_negative_zero_and_positive_values() -> None:
    from gazelab.analysis.metrics import _ranks

    rng = np.random.default_rng(5)
    x = np.round(rng.normal(size=(30, 30)), 1)  # negatives, zeros and many ties
    x[rng.random(x.shape) < 0.6] = 0.0
    np.testing.assert_array_equal(_ranks(x), stats.rankdata(x.ravel(), method="average"))


def _mit_auc_judd(
    saliency: np.ndarray, fixation_map: np.ndarray, noise: np.ndarray | None
) -> float:
    """A line-by-line transcription of the MIT saliency benchmark's AUC_Judd.m, with the
    jitter ``rand(size)/10000000`` passed in as ``noise`` (``None``: jitter off)."""
    s = saliency.astype(np.float64)
    if noise is not None:
        s = s + noise / 10000000
    s = (s - s.min()) / (s.max() - s.min())
    S = s.ravel(order="F")
    F = fixation_map.ravel(order="F")
    Sth = S[F > 0]
    n_fix, n_pix = len(Sth), len(S)
    allthreshes = np.sort(Sth)[::-1]
    tp = np.zeros(n_fix + 2)
    fp = np.zeros(n_fix + 2)
    tp[-1] = fp[-1] = 1
    for i in range(1, n_fix + 1):
        thresh = allthreshes[i - 1]
        aboveth = np.sum(S >= thresh)
        tp[i] = i / n_fix
        fp[i] = (aboveth - i) / (n_pix - n_fix)
    from scipy.integrate import trapezoid

    return float(trapezoid(tp, fp))


@pytest.mark.parametrize("zero", [0.0, 0.9])
def test_auc_judd_equals_the_mit_reference_on_tied_and_untied_maps(zero: float) -> None:
    rng = np.random.default_rng(7)
    for seed in range(3):
        s = _truncated_heatmap(rng, (40, 50), zero)
        s = (s - s.min()) / (s.max() - s.min())  # MIT's maps are in 0..1
        fix = (rng.random(s.shape) < 0.03).astype(int)
        noise = np.random.default_rng(seed).random(s.size).reshape(s.shape)
        assert auc_judd(s, fix, seed=seed) == pytest.approx(_mit_auc_judd(s, fix, noise), abs=1e-12)
        assert auc_judd(s, fix, jitter=False) == pytest.approx(
            _mit_auc_judd(s, fix, None), abs=1e-12
        )


@pytest.mark.parametrize("n_fix", [1, 7, 60, 401, 900])
def test_auc_judd_equals_the_mit_reference_with_either_count(n_fix: int) -> None:
    """Up to 400 fixated pixels the map is counted with a pass per threshold, above with
    a binary search per pixel; both give the reference's numbers on uint8-like maps
    (256 tie levels), truncated maps and maps outside 0..1 (negative, rescaled)."""
    rng = np.random.default_rng(n_fix)
    maps = [
        np.round(rng.random((45, 47)) * 255) / 255,
        _truncated_heatmap(rng, (45, 47), 0.9),
        rng.normal(size=(45, 47)) * 1e3 - 5,
    ]
    for s in maps:
        fix = np.zeros(s.size, dtype=int)
        fix[rng.choice(s.size, n_fix, replace=False)] = 1
        fix = fix.reshape(s.shape)
        s01 = (s - s.min()) / (s.max() - s.min())
        noise = np.random.default_rng(3).random(s.shape)
        assert auc_judd(s01, fix, seed=3) == pytest.approx(
            _mit_auc_judd(s01, fix, noise), abs=1e-12
        )
        assert auc_judd(s, fix, jitter=False) == pytest.approx(
            _mit_auc_judd(s, fix, None), abs=1e-12
        )


def test_auc_judd_threshold_search_is_exact() -> None:
    """Counting the unscaled map against each threshold's least preimage gives the
    counts of the scaled map itself (the scaling rounds monotonically)."""
    from gazelab.analysis.metrics.maps import _least_scaled_at_or_above, _n_at_or_above

    rng = np.random.default_rng(5)
    u = np.concatenate([rng.random(3000) * 1e-7, rng.random(300), [0.25] * 50])
    lo, scale = float(u.min()), float(u.max() - u.min())
    t = np.sort((u[rng.choice(u.size, 500, replace=False)] - lo) / scale)
    x = _least_scaled_at_or_above(t, lo, scale)
    assert x is not None
    v = (u - lo) / scale
    want = np.array([np.count_nonzero(v >= ti) for ti in t])
    assert np.array_equal(_n_at_or_above(u, x), want)  # the binary search (500 > 400)
    assert np.array_equal(_n_at_or_above(u, x[:40]), want[:40])  # one pass each
    assert np.array_equal(_n_at_or_above(v, t), want)


def test_auc_judd_jitter_breaks_ties_on_truncated_maps() -> None:
    """Most fixations on exact zeros: without jitter every tied pixel counts as above the
    threshold (a pessimistic number); with MIT's jitter the ties fall at random (chance)."""
    s = np.zeros((50, 50))
    s[:10, :10] = np.linspace(0.1, 1.0, 100).reshape(10, 10)
    fix = np.zeros((50, 50), int)
    fix[5, 5] = 1  # inside the salient block
    fix[30:40:3, 30:40:3] = 1  # 16 fixations on the zero block
    off = auc_judd(s, fix, jitter=False)
    on = auc_judd(s, fix)
    assert off < 0.3 and 0.45 < on < 0.65
    assert auc_judd(s, fix) == on  # seeded: the same number every time


def test_nss_equals_the_pysaliency_form() -> None:
    """pysaliency: z-score the map, average it at the fixated pixels."""
    rng = np.random.default_rng(3)
    s = _truncated_heatmap(rng, (60, 80), 0.9)
    fix = (rng.random(s.shape) < 0.02).astype(int)
    z = (s - s.mean()) / s.std()
    assert nss(s, fix) == pytest.approx(z[fix > 0].mean(), rel=1e-12)


def test_prepared_maps_score_like_the_plain_functions() -> None:
    """map_scores on PreparedMaps equals every plain metric (NaN where one raises)."""
    import math

    from gazelab.analysis.metrics import MAP_METRICS, PreparedMap, map_scores

    rng = np.random.default_rng(11)
    maps = [_truncated_heatmap(rng, (40, 60), z) for z in (0.0, 0.5, 0.9, 0.9, 1.0)]
    fixated = rng.random((40, 60)) < 0.02
    prepared = [PreparedMap(m) for m in maps]
    for a, pa in zip(maps, prepared, strict=True):
        for b, pb in zip(maps, prepared, strict=True):
            got = map_scores(pa, pb, fixated)
            want = {}
            for name, fn in MAP_METRICS.items():
                try:
                    want[name] = fn(a, b)
                except MetricError:
                    want[name] = math.nan
            want["nss"] = nss(b, fixated)
            want["auc_judd"] = auc_judd(b, fixated)
            assert set(got) == set(want)
            for k, v in want.items():
                assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-12, nan_ok=True), k
    assert math.isnan(map_scores(prepared[0], prepared[1], np.zeros((40, 60), bool))["nss"])
    with pytest.raises(MetricError, match="shape"):
        map_scores(prepared[0], PreparedMap(np.zeros((3, 3))))


def test_prepared_place_fits_the_support_and_scores_alike() -> None:
    """A support of fewer than 2**16 pixels keeps its places as uint16, a larger one as
    int32; either way every pixel maps to its place (zeros to the support's size) and the
    pairs score like the plain metrics."""
    import math

    from gazelab.analysis.metrics import MAP_METRICS, PreparedMap, map_scores

    rng = np.random.default_rng(5)
    big = _truncated_heatmap(rng, (300, 300), 0.2)  # ~72 000 non-zero pixels
    small = _truncated_heatmap(rng, (300, 300), 0.9)  # ~9 000
    fixated = rng.random((300, 300)) < 0.001
    pb, ps = PreparedMap(big), PreparedMap(small)
    assert pb.m >= 2**16 > ps.m
    assert pb.place.dtype == np.int32 and ps.place.dtype == np.uint16
    for p, x in ((pb, big), (ps, small)):
        want_place = np.full(x.size, p.m)
        want_place[np.flatnonzero(x)] = np.arange(p.m)
        assert np.array_equal(p.place, want_place)
    for a, pa, b, pp in ((big, pb, small, ps), (small, ps, big, pb)):
        got = map_scores(pa, pp, fixated)
        want = {name: fn(a, b) for name, fn in MAP_METRICS.items()}
        want["nss"] = nss(b, fixated)
        want["auc_judd"] = auc_judd(b, fixated)
        for k, v in want.items():
            assert not math.isnan(got[k])
            assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k
