"""The compiled passes of the prepared maps (``gazelab.analysis.metrics.kernels``) write the
arrays of the NumPy expressions they replace, bit for bit: on heatmaps, pooled maps, maps
with negative values, ties, subnormals and extremes, NaN and infinities, empty maps."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.analysis.metrics import kernels
from gazelab.gaze.heatmaps import fixation_heatmap


def flat_maps() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    heat = fixation_heatmap(rng.uniform(10, 150, (8, 2)), (120, 160), 5.0, 20.0).ravel()
    pooled = sum(
        fixation_heatmap(rng.uniform(10, 150, (8, 2)), (120, 160), 5.0, 20.0).ravel()
        for _ in range(5)
    )
    signed = rng.normal(size=1000)
    signed[rng.random(1000) < 0.3] = 0.0
    extremes = np.array([0.0, 5e-324, -5e-324, 1e308, -1e308, 2.2e-308, 0.0, -0.0, 1.0])
    ties = np.round(rng.random(777) * 4)  # 0 … 4: zeros and ties
    return [heat, pooled, signed, extremes, ties, np.zeros(13), np.zeros(0), np.ones(9)]


@pytest.mark.parametrize("k", range(8))
def test_support_of_is_the_numpy_support(k: int) -> None:
    flat = flat_maps()[k]
    support, vext, bits, neg, finite = kernels.support_of(flat)
    nonzero = flat != 0
    want = np.flatnonzero(nonzero)
    assert support.dtype == want.dtype and np.array_equal(support, want)
    assert vext.shape == (want.size + 1,) and vext[-1] == 0.0
    assert np.array_equal(vext[:-1].view(np.uint64), flat[want].view(np.uint64))  # bits
    assert bits.dtype == np.uint8 and np.array_equal(bits, np.packbits(nonzero))
    assert neg == int(np.count_nonzero(flat < 0)) and finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_support_of_finds_what_is_not_finite(bad: float) -> None:
    flat = np.array([0.0, 1.0, bad, 0.0, 2.0])
    support, _, _, _, finite = kernels.support_of(flat)
    assert not finite and np.array_equal(support, [1, 2, 4])


@pytest.mark.parametrize("kind", [np.uint16, np.int32])
def test_gather_at_is_take_through_the_places(kind: type) -> None:
    rng = np.random.default_rng(2)
    for flat in flat_maps()[:5]:
        other = np.flatnonzero(rng.random(flat.size) < 0.6)
        m = other.size
        place: np.ndarray = np.full(flat.size, m, dtype=kind)
        place[other] = np.arange(m, dtype=kind)
        support = np.flatnonzero(flat)
        vext, rext, cext = (np.append(rng.normal(size=m), z) for z in (0.0, -0.5, 0.25))
        v, r, c, both, r_sum, c_sum = kernels.gather_at(place, support, m, vext, rext, cext)
        where = np.take(place, support).astype(np.intp)
        for got, x in ((v, vext), (r, rext), (c, cext)):
            assert np.array_equal(got.view(np.uint64), np.take(x, where).view(np.uint64))
        assert both == int(np.count_nonzero(where < m))
        assert r_sum == float(r.sum()) and c_sum == float(c.sum())  # NumPy's floats


def test_scatter_positions_is_the_ramp_minus_the_mean() -> None:
    rng = np.random.default_rng(3)
    for m, first, mean in ((1000, 1, 500.5), (77, 4000, 3.3e3 + 1 / 3), (0, 5, 1.0)):
        order = rng.permutation(m)
        got = np.full(m, np.nan)
        kernels.scatter_positions(order, first, mean, got)
        want = np.full(m, np.nan)
        pos = np.arange(first, first + m, dtype=np.float64)
        pos -= mean
        want[order] = pos
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64))


def test_sim_terms_is_the_minimum_of_the_two_distributions() -> None:
    rng = np.random.default_rng(4)
    for flat in flat_maps()[:2]:
        h = flat[flat > 0]
        o = rng.permutation(h) * rng.choice([1.0, 0.5, 2.0], h.size)  # equal and unequal
        tp, tq = float(h.sum()), float(o.sum())
        got = kernels.sim_terms(h, o, tp, tq)
        want = h / tp
        np.minimum(want, o / tq, out=want)
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64))


def test_index_keys_and_order_of_keys() -> None:
    rng = np.random.default_rng(5)
    for v in (rng.random(5000), np.round(rng.random(3000) * 9) + 1, 1 + np.arange(4096) * 2e-16):
        m = v.size
        k = max(1, (m - 1).bit_length())
        u = v.view(np.uint64)
        key = kernels.index_keys(u, k)
        low = np.uint64((1 << k) - 1)
        assert np.array_equal(key, (u & ~low) | np.arange(m, dtype=np.uint64))
        key.sort()
        want = (key & low).astype(np.intp)
        order, sv, rising, backwards = kernels.order_of_keys(key.copy(), k, v)
        assert order.dtype == np.intp and np.array_equal(order, want)
        assert np.array_equal(sv, v[want])
        assert rising == bool(np.all(sv[1:] > sv[:-1]))
        assert backwards == bool((sv[1:] < sv[:-1]).any())


@pytest.mark.parametrize("kind", [np.uint16, np.int32])
def test_places_are_the_filled_and_scattered_ramp(kind: type) -> None:
    for flat in flat_maps():
        support = np.flatnonzero(flat)
        m = support.size
        want: np.ndarray = np.full(flat.size, m, dtype=kind)
        want[support] = np.arange(m, dtype=kind)
        got = kernels.places(support, flat.size, kind)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_gather_over_is_the_gather_divided() -> None:
    rng = np.random.default_rng(6)
    x = rng.random(5000) * 3
    idx = rng.permutation(5000)[:3000]
    for d in (1.0, 3.0, float(x.max()), 1e-300):
        got = kernels.gather_over(x, idx, d)
        assert np.array_equal(got.view(np.uint64), (x[idx] / d).view(np.uint64))


def test_both_nonzero_is_the_boolean_compress() -> None:
    rng = np.random.default_rng(7)
    h = rng.random(4000) + 0.1
    o = rng.random(4000)
    o[rng.random(4000) < 0.4] = 0.0
    hb, ob = kernels.both_nonzero(h, o, int(np.count_nonzero(o)))
    assert np.array_equal(hb, h[o != 0]) and np.array_equal(ob, o[o != 0])


def test_numpy_sum_is_numpy_s_float_at_every_size() -> None:
    """NumPy adds its reduction's chunks of 8 192 values, each summed pairwise, to 0 in
    turn; the compiled sums must give its very float (a NumPy that sums otherwise fails
    here, not in a changed score)."""
    rng = np.random.default_rng(6)
    sizes = [*range(0, 300), 1000, 8191, 8192, 8193, 16384, 16385, 50_001, 313_600]
    for n in sizes:
        for scale in (1.0, 1e-12, 1e12):
            a = rng.standard_normal(n) * scale
            assert kernels.numpy_sum(a) == float(np.sum(a)), n


def test_centre_pass_and_sim_sum_are_numpy_s_floats() -> None:
    rng = np.random.default_rng(7)
    for flat in flat_maps()[:4]:
        v = flat[flat != 0]
        n, n_zero = flat.size, flat.size - v.size
        for zero_value in (0.0, (n_zero + 1) / 2.0):
            ext, total, cz, c_sum = kernels.centre_pass(v, zero_value, n_zero, n)
            mean = (v.sum() + n_zero * zero_value) / n
            assert total == float(v.sum()) and cz == zero_value - mean
            assert np.array_equal(ext[:-1].view(np.uint64), (v - mean).view(np.uint64))
            assert ext[-1] == cz and c_sum == float((v - mean).sum())
        o = rng.permutation(v) * rng.choice([1.0, 0.5, 2.0], v.size)
        tp, tq = float(v.sum()), float(o.sum())
        assert kernels.sim_sum(v, o, tp, tq) == float(np.minimum(v / tp, o / tq).sum())


def test_auc_area_and_kl_divergence_are_numpy_s_floats() -> None:
    from gazelab.analysis.metrics.maps import EPS

    rng = np.random.default_rng(8)
    for k in (1, 2, 7, 8, 9, 130, 300):
        n = 10_000
        above = np.sort(rng.integers(k, n, k)).astype(np.intp) + np.arange(k)
        tp = np.arange(1, k + 1) / k
        fp = (above - np.arange(1, k + 1)) / (n - k)
        tpr = np.concatenate([[0.0], tp, [1.0]])
        fpr = np.concatenate([[0.0], fp, [1.0]])
        want = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        assert kernels.auc_area(above, n) == want
    for flat in flat_maps()[:3]:
        p = flat[flat > 0]
        p = p / p.sum()
        o = rng.permutation(p) * (rng.random(p.size) < 0.7)  # zeros where Q is 0
        tq = float(o.sum())
        r = o / tq
        r += EPS
        np.divide(p, r, out=r)
        r += EPS
        np.log(r, out=r)
        r *= p
        assert kernels.kl_divergence(o, p, tq, EPS) == float(np.sum(r))
