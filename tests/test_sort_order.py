"""``sort_order``: the radix sort of a prepared map's support (and, where NumPy's
``argsort`` is vectorised, that argsort) sorts it as ``argsort`` does (the same sorted
values and average ranks), and the scores are those of ``argsort``'s order bit for bit;
the centred ranks of a positive map without ties (one scatter) are those of the average
ranks, shifted and centred."""

from __future__ import annotations

import numpy as np
import pytest

import gazelab.analysis.metrics.prepared as prepared
from gazelab.analysis.metrics import PreparedMap, map_scores
from gazelab.analysis.metrics.maps import _average_ranks
from gazelab.analysis.metrics.prepared import RADIX_MIN, sort_order
from gazelab.analysis.scoring import fixation_map
from gazelab.gaze.heatmaps import fixation_heatmap


def values(kind: str, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(RADIX_MIN, 4 * RADIX_MIN))
    v = {
        "normal": lambda: rng.normal(size=n),
        "ties": lambda: np.round(rng.random(n) * 50) + 1,  # 50 tie groups
        "same top bits": lambda: 1 + rng.random(n) * 1e-9,  # one run of equal top 32 bits
        "extremes": lambda: np.concatenate(
            [-rng.random(n // 2) * 1e-300, rng.random(n - n // 2) * 1e300]
        ),  # fmt: skip
        "heatmap": lambda: fixation_heatmap(
            rng.uniform(5, 95, (12, 2)), (100, 100), 4.0, 14.0
        ).ravel(),
    }[kind]()
    return v[v != 0]


@pytest.mark.parametrize("simd", [False, True])
@pytest.mark.parametrize("kind", ["normal", "ties", "same top bits", "extremes", "heatmap"])
def test_the_order_sorts_as_argsort(kind: str, simd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared, "SIMD_ARGSORT", simd)  # the radix passes, or argsort
    rng = np.random.default_rng(len(kind))
    for _ in range(5):
        v = values(kind, rng)
        assert v.size >= RADIX_MIN or kind == "heatmap"
        o, a = sort_order(v), np.argsort(v)
        assert np.array_equal(np.sort(o), np.arange(v.size))  # a permutation
        assert np.array_equal(v[o], v[a])
        assert np.array_equal(_average_ranks(v, o, None), _average_ranks(v, a, None))


def test_scores_are_those_of_argsort_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    shape = (120, 160)
    maps = [fixation_heatmap(rng.uniform(10, 150, (8, 2)), shape, 5.0, 20.0) for _ in range(4)]
    maps.append(sum(maps[1:]))  # a pooled map: near-full support
    assert all(np.count_nonzero(m) >= RADIX_MIN for m in maps)
    fixated = fixation_map(rng.uniform(10, 110, (6, 2)), shape)

    def scores() -> list[dict[str, float]]:
        return [map_scores(PreparedMap(a), PreparedMap(b), fixated)
                for a in maps for b in maps if a is not b]  # fmt: skip

    monkeypatch.setattr(prepared, "SIMD_ARGSORT", False)  # the radix passes on this machine too
    radix = scores()
    monkeypatch.setattr(prepared, "RADIX_MIN", 10**9)  # argsort everywhere
    assert repr(radix) == repr(scores())


def test_centred_ranks_of_a_positive_map_are_the_shifted_average_ranks() -> None:
    """``_centred_positions`` (no ties, every value positive) gives the floats of the
    general path: average ranks, shifted by the zero block, centred by ``_centre``."""
    rng = np.random.default_rng(5)
    for shape, zeros in (((120, 160), 0.4), ((7, 9), 0.0), ((50, 50), 0.97), ((1, 1), 0.0)):
        x = rng.random(shape) + 1e-3
        x[rng.random(shape) < zeros] = 0.0
        p = PreparedMap(x)
        v = p.values
        r = _average_ranks(v, np.argsort(v), None) + p.n_zero
        want = PreparedMap._centre(r, (p.n_zero + 1) / 2.0, p.n_zero, p.n)
        got = p.centred_and_zero(True), *p.ranks_centred[1:]
        assert np.array_equal(got[0], want[0]) and got[1:] == want[1:]


def test_exact_key_names_the_support_and_the_values() -> None:
    """The same values on another support, or one value changed, is another key."""
    x = np.zeros((6, 7))
    x[1, 2], x[3, 4] = 0.5, 0.25
    y = np.zeros((6, 7))
    y[1, 3], y[3, 4] = 0.5, 0.25  # same values, same count, one pixel moved
    z = x.copy()
    z[3, 4] = np.nextafter(0.25, 1.0)
    keys = {PreparedMap(m).exact_key() for m in (x, y, z, x.reshape(7, 6))}
    assert len(keys) == 4
    assert PreparedMap(x).exact_key() == PreparedMap(x.copy()).exact_key()


@pytest.mark.parametrize("kind", ["normal", "ties", "same top bits", "extremes", "heatmap"])
def test_packed_keys_sort_as_argsort(kind: str) -> None:
    """The packed-key sort (index in the keys' low bits) gives argsort's sorted values and
    average ranks, also where values differ only in the bits the index replaces."""
    rng = np.random.default_rng(len(kind) + 7)
    for _ in range(5):
        v = np.ascontiguousarray(values(kind, rng))
        u = v.view(np.uint64)
        if bool((v < 0).any()):
            u = np.where(u >> np.uint64(63), ~u, u | np.uint64(1 << 63))
        o, sv, rising = prepared._packed_order(v, u)
        a = np.argsort(v)
        assert np.array_equal(np.sort(o), np.arange(v.size))
        assert np.array_equal(sv, v[a]) and np.array_equal(v[o], sv)
        assert rising in (None, bool(np.all(sv[1:] > sv[:-1])))  # when known, right
        assert np.array_equal(_average_ranks(v, o, None), _average_ranks(v, a, None))
    near = 1.0 + np.arange(5000)[::-1] * 2e-16  # differ only in the lowest mantissa bits
    o, sv, rising = prepared._packed_order(near, near.view(np.uint64))
    assert np.array_equal(sv, np.sort(near)) and rising is None  # a run was re-sorted


@pytest.mark.parametrize("simd", [False, True])
def test_a_long_run_in_reverse_order_is_sorted_another_way(
    simd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values that differ only below the bits the keys sort on, in reverse index order:
    mending them by insertion would move each past all the others (m²/2 moves); past its
    budget the support is sorted by ``argsort`` instead, with the same result."""
    from scipy.stats import rankdata

    monkeypatch.setattr(prepared, "SIMD_ARGSORT", simd)
    m = 3 * RADIX_MIN
    step = 2.0**-52 if simd else 2.0**-40  # below the packed keys' k bits, or the radix's 32
    v = 1.0 + (m - np.arange(m)) * step
    assert np.unique(v).size == m  # no ties: every value falls below the one before
    o = sort_order(v)
    assert np.array_equal(v[o], np.sort(v))
    assert np.array_equal(_average_ranks(v, o, None), rankdata(v))
    p = PreparedMap(np.concatenate([np.zeros(5), v]))
    c, cz, _ = p.ranks_centred
    r = rankdata(v) + 5
    mean = (r.sum() + 5 * 3.0) / (m + 5)
    assert np.allclose(c, r - mean, rtol=0, atol=1e-9) and cz == pytest.approx(3.0 - mean)


def test_mending_moves_values_only_where_they_fall() -> None:
    from gazelab.analysis.metrics.kernels import mend_runs

    sv = np.array([1.0, 2.0, 2.0, 1.5, 3.0, 3.0, 2.9, 4.0])
    order = np.arange(sv.size)
    assert mend_runs(order, sv)
    assert sv.tolist() == [1.0, 1.5, 2.0, 2.0, 2.9, 3.0, 3.0, 4.0]
    assert order.tolist() == [0, 3, 1, 2, 6, 4, 5, 7]  # ties kept in their order
    big = np.arange(400.0)[::-1].copy()  # reversed: 79 800 moves, past 8 × 400 + 64
    assert not mend_runs(np.arange(400), big)


def test_tied_ranks_are_scipy_s_average_ranks() -> None:
    from scipy.stats import rankdata

    from gazelab.analysis.metrics.kernels import tied_ranks

    rng = np.random.default_rng(5)
    for groups in (1, 3, 50, 10**6):
        v = np.round(rng.random(2000) * groups) + 1
        o = np.argsort(v, kind="stable")
        assert np.array_equal(tied_ranks(o, v[o]), rankdata(v))


def test_fixated_indices_are_kept_for_read_only_maps_only() -> None:
    from gazelab.analysis.metrics.prepared import fixated_indices

    fixated = fixation_map(np.array([[3.0, 4.0], [10.0, 2.0]]), (20, 30))
    assert not fixated.flags.writeable
    idx = fixated_indices(fixated)
    assert idx.tolist() == [2 * 30 + 10, 4 * 30 + 3]
    assert fixated_indices(fixated) is idx  # kept while the map lives
    mutable = np.zeros((20, 30), dtype=bool)
    mutable[1, 1] = True
    assert fixated_indices(mutable).tolist() == [31]
    mutable[2, 2] = True  # a writable map is searched again
    assert fixated_indices(mutable).tolist() == [31, 62]
    key = id(fixated)
    del fixated
    assert key not in prepared._FIXATED  # let go with its map


def test_unit_mass_sums_are_numpy_s_and_shapes_must_match() -> None:
    from gazelab.analysis.metrics.kernels import add_unit_mass

    rng = np.random.default_rng(11)
    maps = [rng.random((6, 7)) * (rng.random((6, 7)) > 0.5) for _ in range(4)]
    maps[1][:] = 0.0  # no mass: adds zeros
    maps[2][0, 0] = -0.0
    want = maps[0] / maps[0].sum()
    for m in maps[1:]:
        mass = m.sum()
        np.add(want, m / mass if mass > 0 else np.zeros_like(m), out=want)
    total = np.empty((6, 7))
    for k, m in enumerate(maps):
        assert add_unit_mass(total, m, float(m.sum()), first=k == 0) == np.count_nonzero(m > 0)
    assert np.array_equal(total, want) and np.array_equal(np.signbit(total), np.signbit(want))
    assert add_unit_mass(None, maps[0], 0.0, first=False) == np.count_nonzero(maps[0] > 0)
    with pytest.raises(ValueError, match="shape"):
        add_unit_mass(np.zeros((3, 3)), np.ones((2, 2)), 4.0, first=False)


def test_the_auc_counter_refuses_indices_outside_the_map() -> None:
    """The counting loops are compiled without bounds checks: an index outside the map, or
    one that is not an integer, is refused first (NumPy's indexing refused it before)."""
    x = np.zeros((20, 20))
    x[5:8, 5:8] = np.arange(1, 10).reshape(3, 3)
    auc = PreparedMap(x).auc_counter(0)
    assert 0.0 <= auc(np.array([3, 105])) <= 1.0
    for bad in ([400], [-1, 3], [10**6], [3.0, 105.0]):
        with pytest.raises(IndexError, match="flat indices"):
            auc(np.array(bad))
