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
    assert auc_judd(s, fix2) == pytest.approx(0.5)  # ties with every other pixel: chance
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
