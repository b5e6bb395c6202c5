"""Compiled passes of :mod:`gazelab.analysis.metrics.prepared`: several NumPy passes over a
map's support done as one loop (numba, as the heatmaps' accumulation), for the memory
traffic: on two cores a pair's scoring is bound by it more than by arithmetic.

Each loop does, per element, the very IEEE operations of the NumPy expressions it replaces,
in the same order (gathers and copies, one division, one subtraction, a comparison; no
reassociation, no fused multiply-add: numba compiles without fast-math), so every array it
writes is the NumPy one bit for bit. The sums, dot products and logarithms stay NumPy's
(their order of summation and their rounding are NumPy's and BLAS's own).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True, nogil=True)
def _support_of(flat: Any) -> tuple[Any, Any, Any, int, bool]:  # pragma: no cover
    m = 0
    for i in range(flat.size):
        if flat[i] != 0:
            m += 1
    support = np.empty(m, dtype=np.intp)
    vext = np.empty(m + 1, dtype=np.float64)
    vext[m] = 0.0
    bits = np.zeros((flat.size + 7) // 8, dtype=np.uint8)
    k = 0
    neg = 0
    finite = True
    for i in range(flat.size):
        x = flat[i]
        if x != 0:
            support[k] = i
            vext[k] = x
            k += 1
            bits[i >> 3] |= np.uint8(1 << (7 - (i & 7)))
            if x < 0:
                neg += 1
            if not np.isfinite(x):
                finite = False
    return support, vext, bits, neg, finite


def support_of(
    flat: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.uint8], int, bool]:
    """The non-zero pixels of ``flat`` ``(n,)`` float64, in a counting pass and a filling
    pass: their indices (ascending), their values followed by one 0 (``(m + 1,)``), the
    non-zero pixels as bits (``np.packbits(flat != 0)``), how many are negative and whether
    all are finite (NaN is non-zero, so it is among them)."""
    support, vext, bits, neg, finite = _support_of(flat)
    return support, vext, bits, int(neg), bool(finite)


@njit(cache=True, nogil=True)
def _gather_at(
    place: Any, support: Any, m: int, vext: Any, rext: Any, cext: Any, v: Any, r: Any, c: Any
) -> Any:  # pragma: no cover
    both = 0
    for i in range(support.size):
        w = place[support[i]]
        v[i] = vext[w]
        r[i] = rext[w]
        c[i] = cext[w]
        if w < m:
            both += 1
    return both, _numpy_sum(r), _numpy_sum(c)


def gather_at(
    place: NDArray[Any],
    support: NDArray[np.intp],
    m: int,
    vext: NDArray[np.float64],
    rext: NDArray[np.float64],
    cext: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int, float, float]:
    """Another map's values, centred ranks and centred values (each followed by its zero
    block's, indexed by ``place``) at the pixels ``support``: ``np.take(x, place[support])``
    of each, in one pass; how many of those pixels are on the other map's support (a
    place below its size ``m``); and NumPy's sums of the gathered ranks and values
    (:func:`numpy_sum`)."""
    k = support.size
    v, r, c = np.empty(k), np.empty(k), np.empty(k)
    both, r_sum, c_sum = _gather_at(place, support, m, vext, rext, cext, v, r, c)
    return v, r, c, int(both), float(r_sum), float(c_sum)


@njit(cache=True, nogil=True)
def _scatter_positions(order: Any, first: int, mean: float, out: Any) -> None:  # pragma: no cover
    for k in range(order.size):
        out[order[k]] = np.float64(first + k) - mean


def scatter_positions(
    order: NDArray[np.intp], first: int, mean: float, out: NDArray[np.float64]
) -> None:
    """``out[order] = np.arange(first, first + order.size, dtype=float64) - mean`` in one
    pass (each position an integer below 2⁵³, exact as a float)."""
    _scatter_positions(order, int(first), float(mean), out)


@njit(cache=True, nogil=True)
def _sim_terms(h: Any, o: Any, tp: float, tq: float, out: Any) -> None:  # pragma: no cover
    for i in range(h.size):
        a = h[i] / tp
        b = o[i] / tq
        out[i] = b if b < a else a


def sim_terms(
    h: NDArray[np.float64], o: NDArray[np.float64], tp: float, tq: float
) -> NDArray[np.float64]:
    """``np.minimum(h / tp, o / tq)`` in one pass (finite values without NaN: the smaller
    of the two, either where they are equal)."""
    out = np.empty(h.size, dtype=np.float64)
    _sim_terms(h, o, float(tp), float(tq), out)
    return out


@njit(cache=True, nogil=True)
def _index_keys(u: Any, k: int, key: Any) -> None:  # pragma: no cover
    high = ~np.uint64((1 << k) - 1)
    for i in range(u.size):
        key[i] = (u[i] & high) | np.uint64(i)


def index_keys(u: NDArray[np.uint64], k: int) -> NDArray[np.uint64]:
    """``(u & ~(2**k - 1)) | arange(u.size)``: each key's lowest ``k`` bits replaced by its
    index (``u.size`` ≤ 2**k), in one pass."""
    key = np.empty(u.size, dtype=np.uint64)
    _index_keys(u, int(k), key)
    return key


@njit(cache=True, nogil=True)
def _order_of_keys(key: Any, k: int, v: Any, sv: Any) -> tuple[bool, bool]:  # pragma: no cover
    low = np.uint64((1 << k) - 1)
    rising = True
    backwards = False
    for i in range(key.size):
        o = key[i] & low
        key[i] = o
        x = v[o]
        sv[i] = x
        if i:
            prev = sv[i - 1]
            if not x > prev:
                rising = False
                if x < prev:
                    backwards = True
    return rising, backwards


def order_of_keys(
    key: NDArray[np.uint64], k: int, v: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64], bool, bool]:
    """From sorted keys of :func:`index_keys`, in one pass: the order (their low ``k``
    bits, written over the keys and returned as a view of them), the values ``v`` in that
    order, whether those rise strictly (``np.all(sv[1:] > sv[:-1])``) and whether any
    falls (``(sv[1:] < sv[:-1]).any()``)."""
    sv = np.empty(key.size, dtype=np.float64)
    rising, backwards = _order_of_keys(key, int(k), v, sv)
    return key.view(np.intp), sv, bool(rising), bool(backwards)


@njit(cache=True, nogil=True)
def _places(support: Any, out: Any) -> None:  # pragma: no cover
    m = support.size
    k = 0
    for i in range(out.size):
        if k < m and support[k] == i:
            out[i] = k
            k += 1
        else:
            out[i] = m


def places(support: NDArray[np.intp], n: int, dtype: Any) -> NDArray[Any]:
    """Every pixel's place on ``support`` (ascending indices), or the support's size for a
    pixel not on it (``(n,)`` of ``dtype``): ``np.full(n, m)`` with ``arange(m)`` scattered
    at ``support``, in one pass."""
    out = np.empty(n, dtype=dtype)
    _places(support, out)
    return out


@njit(cache=True, nogil=True)
def _gather_over(x: Any, idx: Any, d: float, out: Any) -> None:  # pragma: no cover
    for j in range(idx.size):
        out[j] = x[idx[j]] / d


def gather_over(x: NDArray[np.float64], idx: NDArray[np.intp], d: float) -> NDArray[np.float64]:
    """``x[idx] / d`` in one pass (the gather, then one division each)."""
    out = np.empty(idx.size, dtype=np.float64)
    _gather_over(x, idx, float(d), out)
    return out


@njit(cache=True, nogil=True)
def _both_nonzero(h: Any, o: Any, hb: Any, ob: Any) -> None:  # pragma: no cover
    k = 0
    for i in range(o.size):
        if o[i] != 0:
            hb[k] = h[i]
            ob[k] = o[i]
            k += 1


def both_nonzero(
    h: NDArray[np.float64], o: NDArray[np.float64], count: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``h[o != 0]`` and ``o[o != 0]`` (``count`` of them), in pixel order, in one pass."""
    hb, ob = np.empty(count), np.empty(count)
    _both_nonzero(h, o, hb, ob)
    return hb, ob


@njit(cache=True, nogil=True)
def _mend_runs(order: Any, sv: Any, budget: int) -> bool:  # pragma: no cover
    moves = 0
    for i in range(1, sv.size):
        x = sv[i]
        if not x < sv[i - 1]:
            continue
        o = order[i]
        h = i
        while h > 0 and sv[h - 1] > x:
            sv[h] = sv[h - 1]
            order[h] = order[h - 1]
            h -= 1
        sv[h] = x
        order[h] = o
        moves += i - h
        if moves > budget:
            return False
    return True


def mend_runs(order: NDArray[np.intp], sv: NDArray[np.float64]) -> bool:
    """Sort ``sv`` and ``order`` with it, in place, where values fall: an insertion sort
    that moves an element back while the one before is larger. For keys sorted on the
    values' top bits (then their index) a value only falls within a run of equal top bits
    — values within ~10⁻¹¹ of each other, a few hundred pixels of a resampled map — so it
    costs one pass and the few moves inside those runs (exact ties stay where they are).
    ``False`` where the moves pass 8 × the values (a long run in reverse order): the arrays
    are then a permutation, not sorted, and the caller sorts another way."""
    return bool(_mend_runs(order, sv, 8 * sv.size + 64))


@njit(cache=True, nogil=True)
def _tied_ranks(order: Any, sv: Any, out: Any) -> None:  # pragma: no cover
    m = sv.size
    i = 0
    while i < m:
        e = i + 1
        while e < m and sv[e] == sv[i]:
            e += 1
        r = 0.5 * (e + i + 1)
        for t in range(i, e):
            out[order[t]] = r
        i = e


def tied_ranks(order: NDArray[np.intp], sv: NDArray[np.float64]) -> NDArray[np.float64]:
    """``scipy.stats.rankdata(v, method="average")`` from the order ``(m,)`` that sorts
    ``v`` and the sorted values ``sv``: each run of equal values (positions i … e − 1) gets
    ``0.5 * (e + i + 1)``, scipy's formula with the same integers, in one pass."""
    out = np.empty(sv.size, dtype=np.float64)
    _tied_ranks(order, sv, out)
    return out


@njit(cache=True, nogil=True)
def _add_unit_mass(total: Any, m: Any, mass: float, mode: int) -> int:  # pragma: no cover
    positive = 0
    for j in range(m.size):
        x = m[j]
        if x > 0:
            positive += 1
        if mode:
            u = x / mass if mass > 0 else 0.0
            if mode == 1:
                total[j] = u
            else:
                total[j] += u
    return positive


def add_unit_mass(
    total: NDArray[np.float64] | None, m: NDArray[np.float64], mass: float, *, first: bool
) -> int:
    """How many pixels of ``m`` are > 0 (``np.count_nonzero(m > 0)``) and, with a
    ``total``, the unit-mass map ``m / mass`` (zeros where ``mass`` is not positive)
    written into it (``first``) or added to it, in place, in one pass without the
    unit-mass map: the floats of ``total = m / mass`` and then
    ``np.add(total, m / mass, out=total)``. ``total`` must have ``m``'s shape."""
    flat = m.reshape(-1)
    if total is None:
        return int(_add_unit_mass(flat, flat, 1.0, 0))
    if total.shape != m.shape or not total.flags.c_contiguous:
        raise ValueError(f"a total of shape {total.shape} for a map of shape {m.shape}")
    return int(_add_unit_mass(total.reshape(-1), flat, float(mass), 1 if first else 2))


@njit(cache=True, nogil=True)
def _auc_thresholds(
    idx: Any, sup: Any, values: Any, hi: float, noise: Any, v_lo: float, scale: float, out: Any
) -> None:  # pragma: no cover
    m = sup.size
    for q in range(idx.size):
        x = idx[q]
        p = min(np.searchsorted(sup, x), m - 1)
        if sup[p] == x:
            v = values[p] / hi + noise[sup[p]]
        else:
            v = noise[x]
        out[q] = (v - v_lo) / scale


FEW_THRESHOLDS = 256
"""Up to this many AUC thresholds :func:`auc_counts` counts the support's noise by a pass
each (~3.5 µs per 50 000 values); above, by a binary search a value (~29 ns each)."""


@njit(cache=True, nogil=True)
def _auc_above(
    t: Any,
    a: Any,
    noise_sup: Any,
    order: Any,
    noise_sorted: Any,
    v_lo: float,
    scale: float,
    jit: float,
    zero_max: float,
    out: Any,
) -> None:  # pragma: no cover
    m = a.size
    n = noise_sorted.size
    at = np.empty(t.size, dtype=np.float64)
    for i in range(t.size):
        ti = t[i]
        # the support: every pixel with a >= a_hi counts, none with a < a_lo, the few
        # between are computed as the reference computes them
        a_hi = ti * scale + v_lo
        while (a_hi - v_lo) / scale < ti:
            a_hi = np.nextafter(a_hi, np.inf)
        a_lo = a_hi - 2 * jit
        while ((a_lo + jit) - v_lo) / scale >= ti:
            a_lo -= jit
        j_hi = np.searchsorted(a, a_hi)
        j_lo = np.searchsorted(a, a_lo)
        c = m - j_hi
        for j in range(j_lo, j_hi):
            v = a[j] + noise_sup[order[j]]
            if (v - v_lo) / scale >= ti:
                c += 1
        # the zero block: the first place p in the sorted noise where f reaches t, less
        # the support's pixels whose noise is at or above the noise there
        at[i] = np.inf  # no support pixel's noise is counted out
        if ti <= zero_max:
            p = np.searchsorted(noise_sorted, ti * scale + v_lo)
            while p > 0 and (noise_sorted[p - 1] - v_lo) / scale >= ti:
                p -= 1
            while p < n and (noise_sorted[p] - v_lo) / scale < ti:
                p += 1
            c += n - p
            if p < n:
                at[i] = noise_sorted[p]
        out[i] = c
    # the support's pixels among them: its noise >= at (descending with t: p only falls)
    if t.size <= FEW_THRESHOLDS:  # a counting pass a threshold
        for i in range(t.size):
            if at[i] < np.inf:
                cut = at[i]
                k = 0
                for j in range(noise_sup.size):
                    k += noise_sup[j] >= cut
                out[i] -= k
    else:  # a binary search a pixel for the first threshold it meets, counted, summed
        hist = np.zeros(t.size + 1, dtype=np.int64)
        for j in range(noise_sup.size):
            x = noise_sup[j]
            lo, hi = 0, t.size
            while lo < hi:
                mid = (lo + hi) >> 1
                if x >= at[mid]:
                    hi = mid
                else:
                    lo = mid + 1
            hist[lo] += 1
        acc = 0
        for i in range(t.size):
            acc += hist[i]
            out[i] -= acc


def auc_counts(
    idx: NDArray[np.intp],
    sup: NDArray[np.intp],
    values: NDArray[np.float64],
    hi: float,
    noise: NDArray[np.float64],
    a: NDArray[np.float64],
    noise_sup: NDArray[np.float64],
    order: NDArray[Any],
    noise_sorted: NDArray[np.float64],
    v_lo: float,
    scale: float,
    jit: float,
    zero_max: float,
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """:meth:`~gazelab.analysis.metrics.PreparedMap.auc_counter`'s work for the fixated
    pixels ``idx`` (flat, ascending) in two compiled loops: each fixated pixel's threshold
    ``f(v) = (v - v_lo) / scale`` of its jittered value (``values / hi`` plus its noise on
    the support ``sup``, its noise alone off it), sorted descending, and the number of
    pixels at or above each threshold — the support's (``a``: the sorted scaled values,
    ``noise_sup`` in pixel order, ``order`` their sort) and the zero block's (through
    ``noise_sorted``, the sorted noise of all pixels; none above ``zero_max``). Every
    float is the one the NumPy passes it replaces computed (the same operations in the
    same order; a threshold at a time instead of all at once), every count the same
    integer. The support's noise is counted by a pass a threshold up to
    :data:`FEW_THRESHOLDS`, above that by a binary search a value."""
    thr = np.empty(idx.size, dtype=np.float64)
    _auc_thresholds(idx, sup, values, float(hi), noise, float(v_lo), float(scale), thr)
    t = np.sort(thr)[::-1].copy()
    out = np.empty(t.size, dtype=np.intp)
    _auc_above(t, a, noise_sup, order, noise_sorted, float(v_lo), float(scale), float(jit),
               float(zero_max), out)  # fmt: skip
    return t, out


@njit(cache=True, nogil=True)
def _auc_area(above: Any, n: int) -> float:  # pragma: no cover
    k = above.size
    tpr = np.empty(k + 2, dtype=np.float64)
    fpr = np.empty(k + 2, dtype=np.float64)
    tpr[0] = fpr[0] = 0.0
    tpr[k + 1] = fpr[k + 1] = 1.0
    for i in range(k):
        tpr[i + 1] = np.float64(i + 1) / np.float64(k)
        fpr[i + 1] = np.float64(above[i] - (i + 1)) / np.float64(n - k)
    terms = np.empty(k + 1, dtype=np.float64)
    for j in range(k + 1):
        terms[j] = (fpr[j + 1] - fpr[j]) * (tpr[j + 1] + tpr[j]) / 2
    return _numpy_sum(terms)


def auc_area(above: NDArray[np.intp], n: int) -> float:
    """AUC-Judd's area from the pixels at or above each of the k thresholds (descending)
    among ``n``: the trapezoids of the ROC curve through (0, 0), (fp_i, tp_i) and (1, 1),
    ``tp_i = i / k``, ``fp_i = (above_i - i) / (n - k)``, summed as NumPy sums: the floats
    of the NumPy expressions it replaces, in one call."""
    return float(_auc_area(np.ascontiguousarray(above, dtype=np.intp), int(n)))


@njit(cache=True, nogil=True)
def _kl_terms(o: Any, p: Any, tq: float, eps: float, out: Any) -> None:  # pragma: no cover
    for i in range(o.size):
        out[i] = p[i] / (o[i] / tq + eps) + eps


@njit(cache=True, nogil=True)
def _product_sum(r: Any, p: Any) -> float:  # pragma: no cover
    for i in range(r.size):
        r[i] *= p[i]
    return _numpy_sum(r)


def kl_divergence(
    o: NDArray[np.float64], p: NDArray[np.float64], tq: float, eps: float | np.floating[Any]
) -> float:
    """KL's sum ``Σ p · log(eps + p / (eps + o / tq))`` over the human support: the ratio in
    one compiled pass, NumPy's logarithm, the products and NumPy's sum in another; the
    floats of ``r = o / tq; r += eps; p / r; + eps; log; * p; sum``."""
    r = np.empty(o.size, dtype=np.float64)
    _kl_terms(o, p, float(tq), float(eps), r)
    np.log(r, out=r)
    return float(_product_sum(r, p))


# -- NumPy's sums, in compiled loops --------------------------------------------------------
NUMPY_SUM_CHUNK = 8192
"""The buffer NumPy's reductions hand their inner loop at a time (``np.getbufsize()``)."""


@njit(cache=True, nogil=True)
def _pairwise(a: Any, lo: int, n: int) -> float:  # pragma: no cover
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        end = n - n % 8
        while i < end:
            r0 += a[lo + i]
            r1 += a[lo + i + 1]
            r2 += a[lo + i + 2]
            r3 += a[lo + i + 3]
            r4 += a[lo + i + 4]
            r5 += a[lo + i + 5]
            r6 += a[lo + i + 6]
            r7 += a[lo + i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, lo, n2) + _pairwise(a, lo + n2, n - n2)


@njit(cache=True, nogil=True)
def _numpy_sum(a: Any) -> float:  # pragma: no cover
    acc = 0.0
    for lo in range(0, a.size, NUMPY_SUM_CHUNK):
        acc += _pairwise(a, lo, min(NUMPY_SUM_CHUNK, a.size - lo))
    return acc


def numpy_sum(a: NDArray[np.float64]) -> float:
    """``np.sum`` of a 1-D float64 array, the same float: NumPy (1.26) adds the chunks of
    :data:`NUMPY_SUM_CHUNK` values its reduction is handed, each summed pairwise (blocks
    of 128 in eight running sums, halves above), to 0 in turn. Tested against ``np.sum``
    at every size to 300 and around the chunk's edges, so a NumPy that sums otherwise
    fails the tests. Two limits: NumPy's default buffer (a program that calls
    ``np.setbufsize`` gets NumPy's chunks, not these: the last bit may differ), and finite
    values (where NaNs of both signs meet, the NaN's sign bit may differ; maps with NaN
    are refused before any sum)."""
    return float(_numpy_sum(np.ascontiguousarray(a, dtype=np.float64)))


@njit(cache=True, nogil=True)
def _centre_pass(
    v: Any, zero_value: float, n_zero: int, n: int, ext: Any
) -> Any:  # pragma: no cover
    s = _numpy_sum(v)
    mean = (s + n_zero * zero_value) / n
    m = v.size
    for i in range(m):
        ext[i] = v[i] - mean
    cz = zero_value - mean
    ext[m] = cz
    return s, cz, _numpy_sum(ext[:m])


def centre_pass(
    v: NDArray[np.float64], zero_value: float, n_zero: int, n: int
) -> tuple[NDArray[np.float64], float, float, float]:
    """A map's values ``v`` on its support centred on the mean of all ``n`` pixels (the
    ``n_zero`` others at ``zero_value``), in one call: ``(ext, sum, cz, centred sum)`` —
    the centred values followed by the zero block's ``cz`` (``(m + 1,)``), ``v.sum()``
    and ``ext[:-1].sum()``, the floats of ``mean = (v.sum() + n_zero * zero_value) / n``,
    ``v - mean`` and NumPy's sums."""
    ext = np.empty(v.size + 1, dtype=np.float64)
    s, cz, cs = _centre_pass(
        np.ascontiguousarray(v, dtype=np.float64), float(zero_value), int(n_zero), int(n), ext
    )
    return ext, float(s), float(cz), float(cs)


@njit(cache=True, nogil=True)
def _sim_sum(h: Any, o: Any, tp: float, tq: float) -> float:  # pragma: no cover
    out = np.empty(h.size, dtype=np.float64)
    _sim_terms(h, o, tp, tq, out)
    return _numpy_sum(out)


def sim_sum(h: NDArray[np.float64], o: NDArray[np.float64], tp: float, tq: float) -> float:
    """``sim_terms(h, o, tp, tq).sum()``: SIM's terms and NumPy's sum of them, in one call."""
    return float(_sim_sum(h, o, float(tp), float(tq)))
