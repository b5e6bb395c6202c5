"""The same map metrics for many pairs: a :class:`PreparedMap` does once, on its non-zero
support, the work every comparison repeats, and :func:`map_scores` scores two of them.
"""

from __future__ import annotations

import hashlib
import math
import os
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.analysis.metrics.kernels import (
    auc_area,
    auc_counts,
    both_nonzero,
    centre_pass,
    gather_at,
    gather_over,
    index_keys,
    kl_divergence,
    mend_runs,
    order_of_keys,
    places,
    scatter_positions,
    sim_sum,
    support_of,
    tied_ranks,
)
from gazelab.analysis.metrics.maps import (
    AUC_JITTER,
    EPS,
    MetricError,
    _auc_from_values,
    _auc_scaled,
)

_JITTER_CACHE: dict[tuple[int, int], tuple[NDArray[Any], ...]] = {}
"""(size, seed) -> MIT jitter noise, sorted, its sort order and each pixel's place in it: one
draw per size and seed."""


def _jitter(size: int, seed: int) -> tuple[NDArray[Any], ...]:
    key = (size, seed)
    got = _JITTER_CACHE.get(key)  # one read: another thread may clear the cache after it
    if got is None:
        if len(_JITTER_CACHE) > 8:
            _JITTER_CACHE.clear()
        noise: NDArray[np.float64] = np.random.default_rng(seed).random(size) * AUC_JITTER
        order = np.argsort(noise, kind="stable")
        where = np.empty(size, dtype=np.intp)  # each pixel's place in the sorted noise
        where[order] = np.arange(size)
        got = _JITTER_CACHE[key] = (noise, noise[order], order, where)
    return got


class OrderStore(Protocol):
    """Where :class:`PreparedMap` keeps the sort of a map's support between runs, by the
    map's content (:meth:`PreparedMap.content_key`); e.g.
    :class:`~gazelab.analysis.cache.SaliencyCache`. A store with a ``min_sort_values``
    attribute is asked only for maps with at least that many non-zero pixels (smaller
    ones sort faster than their sort is looked up)."""

    def get_order(self, key: str) -> NDArray[Any] | None: ...

    def put_order(self, key: str, order: NDArray[Any]) -> None: ...


class ScoreStore(Protocol):
    """Where :func:`map_scores` keeps a pair's scores between runs, by :func:`pair_key`
    (the exact content of both maps and of the fixated pixels, and this module's code);
    e.g. :class:`~gazelab.analysis.cache.SaliencyCache`. A store without these methods is
    only an :class:`OrderStore`."""

    def get_scores(self, key: str) -> dict[str, float] | None: ...

    def put_scores(self, key: str, scores: dict[str, float]) -> None: ...


def code_key(files: Sequence[Path]) -> str:
    """SHA-256 (hex) of what a stored pair's scores depend on besides the maps: the bytes of
    the metrics' source ``files`` and the numeric environment (Python, NumPy and the
    machine's architecture: a NumPy upgrade may change a sum or the AUC jitter in its last
    bits). A file that cannot be read (a frozen build) makes a key no run repeats."""
    import platform
    import sys

    h = hashlib.sha256(f"{sys.version}|{np.__version__}|{platform.machine()}".encode())
    for f in files:
        try:
            h.update(f.read_bytes())
        except OSError:
            h.update(os.urandom(16))
    return h.hexdigest()


_CODE_KEY = code_key(
    [Path(__file__), *(Path(__file__).with_name(f) for f in ("maps.py", "kernels.py"))]
)
"""The metrics' :func:`code_key` (this module, the plain metrics and the compiled passes),
taken when the module is imported (the code that runs)."""


RADIX_MIN = 4096
"""From this many values on, :func:`sort_order` sorts by radix passes (unless
:data:`SIMD_ARGSORT`); below, ``argsort``."""


def _simd_argsort() -> bool:
    """Whether NumPy's ``argsort`` of float64 runs on AVX-512 here (x86-simd-sort, NumPy
    >= 1.25, on a CPU with AVX512_SKX)."""
    try:
        major, minor = (int(p) for p in np.__version__.split(".")[:2])
        features = np.core._multiarray_umath.__cpu_features__
    except (AttributeError, ValueError):
        return False
    return (major, minor) >= (1, 25) and bool(features.get("AVX512_SKX", False))


SIMD_ARGSORT = _simd_argsort()
"""NumPy's sorts are vectorised (AVX-512) on this machine: its ``argsort`` of a pooled
map's 227 000 values ~3.7 ms against ~6.7 ms for the radix passes (interleaved, same
process), and its ``np.sort`` of 64-bit keys faster still, so :func:`sort_order` sorts
keys that carry the index (:func:`_packed_order`); elsewhere ``argsort`` is an introsort
(~17 ms) and the radix passes are faster. Each gives the same sorted values and ranks."""


def sort_order(values: NDArray[np.float64]) -> NDArray[np.intp]:
    """An order ``(m,)`` that sorts ``values`` ``(m,)`` (finite floats, no zeros needed)
    ascending; equal values in any order (they share their average rank, and every use of
    a map's sort accepts any order that sorts it).

    Where NumPy's sorts are vectorised (:data:`SIMD_ARGSORT`) it is one sort of 64-bit
    keys with the index in their low bits (:func:`_packed_order`). Elsewhere
    ``np.argsort`` of the 240 000 non-zero values of a pooled 400 × 600 px map costs
    ~17 ms; NumPy's stable argsort of 16-bit keys is a radix sort (~1 ms). The float's
    bits, made monotone (a non-negative float's bits already are; a negative one's are
    flipped, a positive one's sign bit set), are sorted on their top 32 bits in two stable
    radix passes of 16 bits (least significant first), and the runs of equal top bits —
    values within ~10⁻⁶ of each other, a few hundred pixels of a study map — are then
    sorted on the full values where they are out of order: ~7 ms, the same ranks and the
    same sorted values as ``argsort``."""
    return sorted_order(values)[0]


def sorted_order(
    values: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """:func:`sort_order` and the sorted values ``values[order]`` ``(m,)`` it checks (the
    ranks take them instead of gathering them again)."""
    order, sv, _ = _sort_support(values)
    return order, sv


def _sort_support(
    values: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.float64], bool | None]:
    """:func:`sorted_order` and, where its check found it out, whether the sorted values
    rise strictly (no ties: the ranks' one scatter, :meth:`PreparedMap._centred_positions`);
    ``None`` where the ranks must look."""
    v = np.ascontiguousarray(values, dtype=np.float64)
    m = v.size
    if m < RADIX_MIN:
        order = np.argsort(v)
        return order, v[order], None
    u = v.view(np.uint64)
    if bool((v < 0).any()):
        u = np.where(u >> np.uint64(63), ~u, u | np.uint64(1 << 63))
    if SIMD_ARGSORT:
        return _packed_order(v, u)
    hi = u >> np.uint64(32)
    order = np.argsort(hi.astype(np.uint16), kind="stable")
    order = order[np.argsort((hi >> np.uint64(16)).astype(np.uint16)[order], kind="stable")]
    sv = v[order]
    if bool((sv[1:] < sv[:-1]).any()):  # the runs of equal top 32 bits, on their full values
        order, sv = _mended(v, order, sv)
    return order, sv, None


def _mended(
    v: NDArray[np.float64], order: NDArray[np.intp], sv: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """``order`` and ``sv`` sorted where values fall within runs of equal top bits
    (:func:`~gazelab.analysis.metrics.kernels.mend_runs`, in place), or, where a run is too
    long for that, ``argsort`` of ``v`` and its sorted values."""
    if mend_runs(order, sv):
        return order, sv
    order = np.argsort(v)
    return order, v[order]


def _packed_order(
    v: NDArray[np.float64], u: NDArray[np.uint64]
) -> tuple[NDArray[np.intp], NDArray[np.float64], bool | None]:
    """:func:`sorted_order` by one vectorised sort of 64-bit keys: each value's monotone
    bits ``u`` ``(m,)`` with their lowest k bits replaced by the value's index (k bits hold
    m − 1), so the sorted keys give the order in their low bits. NumPy's ``np.sort`` of
    uint64 is AVX-512 where its ``argsort`` is (x86-simd-sort), and sorts plain keys about
    twice as fast as ``argsort`` sorts values with their indices; the keys are made in one
    compiled pass and read back in another (the order, the sorted values and how they
    rise: :func:`~gazelab.analysis.metrics.kernels.order_of_keys`): ~1.9 ms for a pooled
    map's 206 000 values against ~3.7 ms for ``argsort`` and the gather. The third value
    says whether the sorted values rise strictly (``None``: not known after a run was
    re-sorted).

    The k dropped bits are the last of a 52-bit mantissa (18 for a 400 × 600 px map: a
    relative difference below ~6·10⁻¹¹), so values that differ only there come out in
    index order; the runs of equal top bits are then sorted on the full values where they
    are out of order, as the radix passes do. Exact ties come out in index order (NumPy's
    ``argsort`` leaves them in any order; every use of a sort accepts any that sorts)."""
    m = v.size
    k = max(1, (m - 1).bit_length())
    if k > 40:  # no room for the index beside enough of the value
        by_value = np.argsort(v)
        return by_value, v[by_value], None
    key = index_keys(u, k)  # (u & ~(2**k - 1)) | arange(m)
    key.sort()
    # the order (the keys' low bits), the sorted values and how they rise, in one pass
    order, sv, rising, backwards = order_of_keys(key, k, v)
    if rising:  # sorted, without ties: nothing to mend
        return order, sv, True
    if backwards:  # the runs of equal top bits that fall, each sorted on its full values
        order, sv = _mended(v, order, sv)
        return order, sv, None
    return order, sv, False


class PreparedMap:
    """One map with the work every comparison repeats done once, on its support.

    Study heatmaps are 80–91 % exact zeros, so a map is kept as its non-zero pixels
    (indices and values) plus the size of its zero block; ranks, centred values and
    sums of squares, mass, NSS mean/sd and the MIT-jittered AUC values are computed
    from those. Scoring one map against many others (rows grow as annotators²) then
    costs work on the two supports, not on every pixel. :func:`map_scores` gives the
    numbers of the plain functions (equal to within float rounding of the summation
    order; tested to 1e-12).
    """

    def __init__(self, a: ArrayLike, orders: OrderStore | None = None) -> None:
        x = np.asarray(a, dtype=np.float64)
        self.shape = x.shape
        flat = x.ravel()
        self.n = flat.size
        # in one pass (support_of): the sorted indices of the non-zero pixels; the support
        # as bits (n / 8 bytes: what names it in exact_key); the values on the support,
        # followed by the zero block's 0 (indexed by place: every pixel's value; the dense
        # map itself is not kept, x rebuilds it); how many are negative, whether all are
        # finite
        self.support, vext, self._support_bits, n_neg, finite = support_of(flat)
        self.m = self.support.size
        self.values = vext[: self.m]
        if not finite:  # zeros are finite: NaN and ±inf are on the support
            raise MetricError("maps contain NaN or infinite values")
        self.n_zero = self.n - self.m
        self.n_neg = n_neg
        self._cache: dict[str, Any] = {"vext": vext}
        self._orders = orders

    @property
    def x(self) -> NDArray[np.float64]:
        """The map ``shape``, rebuilt from the support (a new array each time)."""
        out = np.zeros(self.n, dtype=np.float64)
        out[self.support] = self.values
        return out.reshape(self.shape)

    @property
    def flat(self) -> NDArray[np.float64]:
        """The map flattened ``(n,)``, rebuilt from the support (a new array each time)."""
        return self.x.ravel()

    def _get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @staticmethod
    def _centre(
        on_support: NDArray[np.float64], zero_value: float, n_zero: int, n: int
    ) -> tuple[NDArray[np.float64], float, float]:
        """(centred values on the support followed by the zero block's one, that one, sum of
        squares): the support's part is ``ext[:-1]``, one array for both uses."""
        return PreparedMap._centre_sums(on_support, zero_value, n_zero, n)[:3]

    @staticmethod
    def _centre_sums(
        on_support: NDArray[np.float64], zero_value: float, n_zero: int, n: int
    ) -> tuple[NDArray[np.float64], float, float, float, float]:
        """:meth:`_centre` and, from the same compiled pass (:func:`centre_pass`: NumPy's
        floats), the sum of ``on_support`` and of its centred values."""
        ext, total, cz, c_sum = centre_pass(on_support, zero_value, n_zero, n)
        c = ext[:-1]
        return ext, cz, float(np.dot(c, c) + n_zero * cz * cz), total, c_sum

    @property
    def ranks_centred(self) -> tuple[NDArray[np.float64], float, float]:
        """(centred ranks on the support, centred rank of the zero block, sum of squares)."""

        ext, cz, ss = self._get("ranks", self._make_ranks)
        return ext[:-1], cz, ss

    def _make_ranks(self) -> tuple[NDArray[np.float64], float, float]:
        v = self.values
        if v.size:
            order = self.order  # first: reading a stored sort back leaves its sorted values
            sv = self._cache.pop("sorted", None)  # the check's, when the sort was read back
            rising = self._cache.pop("rising", None)  # the same check's finding, when it made one
            if sv is None:
                sv = v[order]
            if rising is None:
                rising = sv.size < 2 or bool(np.all(sv[1:] > sv[:-1]))
            if self.n_neg == 0 and rising:
                return self._centred_positions(order)
            r = tied_ranks(order, sv)  # ties (rising was False or unknown): one pass
        else:
            r = v.copy()
        if self.n_neg == 0:  # every value positive: all ranks shift by the zero block
            r += self.n_zero  # integers and halves: exact, as r + where(v > 0, n_zero, 0)
        else:
            r = r + np.where(v > 0, self.n_zero, 0)
        ext, cz, ss, _, c_sum = self._centre_sums(
            r, self.n_neg + (self.n_zero + 1) / 2.0, self.n_zero, self.n
        )
        self._cache["csumTrue"] = c_sum
        return ext, cz, ss

    def _centred_positions(
        self, order: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], float, float]:
        """:meth:`_make_ranks` of a positive map without ties, in one scatter: the support's
        ranks are n_zero + 1 … n in sorted order, so their sum is known exactly (integers
        below 2⁵³: any summation order gives it) and each centred rank is the float
        ``(n_zero + k) - mean`` that ``_centre`` computes from them — the same floats in
        the same pixels, without the ranks array, its shift and its sum."""
        m, n_zero, n = self.m, self.n_zero, self.n
        zero_value = (n_zero + 1) / 2.0
        total = m * n_zero + m * (m + 1) // 2  # Σ (n_zero + k), k = 1 … m, exactly
        mean = (np.float64(total) + n_zero * zero_value) / n
        ext = np.empty(m + 1, dtype=np.float64)
        c = ext[:-1]
        scatter_positions(order, n_zero + 1, float(mean), c)  # c[order] = (n_zero + k) - mean
        cz = zero_value - mean
        ext[-1] = cz
        return ext, float(cz), float(np.dot(c, c) + n_zero * cz * cz)

    @property
    def order(self) -> NDArray[np.intp]:
        """The order that sorts :attr:`values` ascending (one sort per map: the ranks are
        taken from it)."""
        return self._get("order", self._make_order)

    def content_key(self) -> str:
        """A fingerprint of the map's non-zero values in pixel order (hex, 32 characters):
        their number and every 8th of them. It only routes to a stored sort, which is
        checked before use (any sort that passes the check gives the same numbers), so a
        map that shares it with another costs a re-sort, never a wrong number."""
        h = hashlib.blake2b(f"{self.values.dtype.str}{self.values.size}".encode(), digest_size=16)
        h.update(np.ascontiguousarray(self.values[::8]).tobytes())
        return h.hexdigest()

    def exact_key(self) -> str:
        """SHA-256 of the whole map: its shape, the support (one bit a pixel, ``packbits``)
        and its values in pixel order (hex, 64 characters). Unlike :meth:`content_key` it
        names one map exactly, so a score stored under it (:func:`map_scores` with a
        :class:`ScoreStore`) is read back without a check; ~1 ms for a pooled 400 × 600 px
        map's 227 000 non-zero pixels (1.6 ms with the support's indices as int32)."""

        def make() -> str:
            h = hashlib.sha256(f"{self.shape}{self.values.dtype.str}{self.m}".encode())
            h.update(self._support_bits.data)
            h.update(np.ascontiguousarray(self.values).data)
            return h.hexdigest()

        return self._get("exact", make)

    def _make_order(self) -> NDArray[np.intp]:
        """The sort of the support, from the ``orders`` store when it holds one for this
        content (checked: a permutation that sorts the values), else sorted and stored."""
        m = self.values.size
        if self._orders is None or m < max(2, getattr(self._orders, "min_sort_values", 0)):
            order, self._cache["sorted"], self._cache["rising"] = _sort_support(self.values)
            return order
        key = self.content_key()
        got = self._orders.get_order(key)
        if got is not None and got.shape == (m,) and got.min() >= 0 and got.max() < m:
            order = got.astype(np.intp)
            sv = self.values[order]
            # strictly rising: no pixel is in the order twice (it would repeat its value), so
            # m places in range are a permutation; with ties that is checked (bincount)
            rising = bool(np.all(sv[1:] > sv[:-1]))
            if rising or (bool(np.all(sv[1:] >= sv[:-1])) and int(np.bincount(order).max()) == 1):
                self._cache["sorted"] = sv  # the ranks take the sorted values from here
                self._cache["rising"] = rising
                return order
        order, self._cache["sorted"], self._cache["rising"] = _sort_support(self.values)
        self._orders.put_order(key, order.astype(np.int32 if m < 2**31 else np.int64))
        return order

    @property
    def values_centred(self) -> tuple[NDArray[np.float64], float, float]:
        """(centred values on the support, centred value of the zero block, sum of squares)."""
        ext, cz, ss = self._get("values", self._make_values)
        return ext[:-1], cz, ss

    def _make_values(self) -> tuple[NDArray[np.float64], float, float]:
        ext, cz, ss, total, c_sum = self._centre_sums(self.values, 0.0, self.n_zero, self.n)
        self._cache["vsum"] = total  # the values' own sum: mean_sd and total read it
        self._cache["csumFalse"] = c_sum
        return ext, cz, ss

    @property
    def values_sum(self) -> float:
        """``values.sum()`` (NumPy's float), from the centring pass where it ran."""
        return self._get("vsum", lambda: float(self.values.sum()))

    def centred_and_zero(self, ranks: bool) -> NDArray[np.float64]:
        """The centred ranks (or values) on the support followed by the zero block's one
        value: indexed by :attr:`place`, every pixel's centred rank (or value)."""
        if ranks:
            return self._get("ranks", self._make_ranks)[0]
        return self._get("values", self._make_values)[0]

    def centred_total(self, ranks: bool) -> float:
        """The sum over all pixels of the centred ranks (or values): the support's sum
        plus the zero block's."""

        def make() -> float:
            c, cz, _ = self.ranks_centred if ranks else self.values_centred
            c_sum = self._cache.get(f"csum{ranks}")
            return float((c.sum() if c_sum is None else c_sum) + self.n_zero * cz)

        return self._get(f"total{ranks}", make)

    @property
    def values_and_zero(self) -> NDArray[np.float64]:
        """The support's values followed by a 0: indexed by :attr:`place`, every pixel's
        value."""
        return self._cache["vext"]

    @property
    def place(self) -> NDArray[np.unsignedinteger[Any] | np.signedinteger[Any]]:
        """Every pixel's place on the support, or the support's size for a zero pixel
        (``(n,)``: uint16 for a support of fewer than 2¹⁶ pixels, an eighth of a dense
        float64 map — a 560 px heatmap's ~60 000 — else int32, a quarter)."""

        def make() -> NDArray[np.unsignedinteger[Any] | np.signedinteger[Any]]:
            m = self.support.size
            kind = np.uint16 if m < 2**16 else np.int32
            return places(self.support, self.n, kind)  # one pass: np.full, arange scattered

        return self._get("place", make)

    @property
    def nonzero(self) -> NDArray[np.bool_]:
        """``(n,)`` bool: the pixels on the support."""

        def make() -> NDArray[np.bool_]:
            m = np.zeros(self.n, dtype=bool)
            m[self.support] = True
            return m

        return self._get("nonzero", make)

    @property
    def norm(self) -> float:
        return self._get("norm", lambda: float(np.sqrt(np.dot(self.values, self.values))))

    @property
    def total(self) -> float | MetricError:
        """The map's mass, or the error SIM/KL report for it."""

        def make() -> float | MetricError:
            if self.n_neg:
                return MetricError("SIM and KL need non-negative maps")
            t = self.values_sum
            return t if t > 0 else MetricError("SIM and KL need maps with positive mass")

        return self._get("total", make)

    @property
    def distribution(self) -> NDArray[np.float64]:
        """The support's values over the map's mass (KL's P); needs a positive :attr:`total`."""

        def make() -> NDArray[np.float64]:
            t = self.total
            if isinstance(t, MetricError):
                raise t
            return self.values / t

        return self._get("p", make)

    @property
    def mean_sd(self) -> tuple[float, float]:
        def make() -> tuple[float, float]:
            c, cz, ss = self.values_centred
            return float(np.float64(self.values_sum) / self.n), float(np.sqrt(ss / self.n))

        return self._get("mean_sd", make)

    def auc_counter(self, seed: int = 0) -> Callable[[NDArray[Any]], float]:
        """AUC-Judd of this map at the fixated pixels, as :func:`auc_judd` computes it:
        the returned function takes a fixated-pixel map (bool, this map's shape) or the
        fixated pixels' flat indices (ascending).

        The reference adds MIT's jitter to every pixel, rescales and sorts them all. Here
        the zero block is counted through the (cached, sorted) jitter of all pixels minus
        that of the support, and the support's pixels at or above each threshold are
        counted directly (one pass per threshold for a few thresholds, one binary search
        per pixel for many): every value is the same float the reference computes, and
        every count the same integer, without sorting the map.
        """
        count = self._get(f"auc{seed}", lambda: self._make_auc(seed))

        def auc(fix: NDArray[Any]) -> float:
            f = np.asarray(fix)
            return float(count(np.flatnonzero(f) if f.dtype == np.bool_ else f.ravel()))

        return auc

    def _make_auc(self, seed: int) -> Callable[[NDArray[np.intp]], float]:
        sup, n, m = self.support, self.n, self.m
        if self.n_zero == 0 or m == 0 or self.n_neg:
            scaled = _auc_scaled(self.flat, True, seed)  # no zero block to exploit: the reference
            return lambda idx: _auc_from_values(scaled[idx], scaled)
        noise, noise_sorted, noise_order, _ = _jitter(n, seed)
        jit = AUC_JITTER  # every noise value is in [0, jit]
        order = self.order
        sv = self._cache.get("sorted")
        hi = float(self.values[order[-1]])  # the map's max; its min is 0 (its zero block)
        # a: the scaled values in sorted order (fl(v / hi) is monotone: sorted). The reference
        # jitters them: v = fl(a + noise) in [a, fl(a + jit)], then r = f(v) = (v - lo) / scale,
        # monotone in v. A support pixel's v and r are computed as the reference computes them
        # wherever the bounds below cannot decide.
        a = gather_over(self.values, order, hi) if sv is None else sv / hi
        # the noise of the support's pixels in pixel order (one gather in order): counted in
        # any order, the support's part of the zero block's counts; through the order, what
        # the jittered values at sorted positions add (only where they are computed)
        noise_sup = np.take(noise, sup)
        if "ranks" in self._cache:
            self._cache.pop("order", None)  # the counter holds it

        def v_at(j: NDArray[np.intp]) -> NDArray[np.float64]:
            """The jittered values at sorted positions ``j``: the reference's floats."""
            return np.asarray(a[j] + noise_sup[order[j]], dtype=np.float64)

        # the jittered map's min: on the support, among the pixels whose a is within jit of
        # the smallest (no other can be below it), or the zero block's smallest noise (found
        # among the smallest noise values overall); its max: on the support, among the
        # pixels whose a is within 2 jit of the largest
        first = int(np.searchsorted(a, a[0] + jit, side="right"))
        last = int(np.searchsorted(a, a[-1] - 2 * jit, side="left"))
        place = self.place
        k = 0
        while place[noise_order[k]] < m:
            k += 1
        v_lo = min(float(v_at(np.arange(first)).min()), float(noise_sorted[k]))
        v_hi = float(v_at(np.arange(last, m)).max())
        scale = max(v_hi, float(noise_sorted[-1])) - v_lo
        zero_max = float((noise_sorted[-1] - v_lo) / scale)  # a zero pixel's largest value

        values = self.values  # the closure below holds no reference to self (no cycle)

        def auc(idx: NDArray[np.intp]) -> float:
            # the compiled loops do not check their indices: a flat index outside the map
            # (or not an integer) is refused here, as NumPy's indexing refused it
            ix = np.asarray(idx)
            if ix.size and (ix.dtype.kind not in "iu" or ix.min() < 0 or ix.max() >= n):
                raise IndexError(
                    f"fixated pixels must be flat indices in 0..{n - 1} of the map, "
                    f"got {ix.dtype} from {ix.min()} to {ix.max()}"
                )
            # the thresholds (descending) and the pixels at or above each: support pixels
            # with a >= a_hi (f(a_hi) >= t) all count, none with a < a_lo (f(a_lo + jit)
            # < t), the few between computed; the zero block's through the sorted noise
            s_fix, above = auc_counts(ix.astype(np.intp), sup, values, hi, noise,
                                      a, noise_sup, order, noise_sorted, v_lo, scale, jit,
                                      zero_max)  # fmt: skip
            return auc_area(above, n)  # the trapezoids, summed as NumPy sums

        return auc


def _pearson_sparse(
    a: PreparedMap,
    b: PreparedMap,
    ranks: bool,
    b_at_a: NDArray[np.intp] | None = None,
    b_on_a: NDArray[np.float64] | None = None,
    b_sum: float | None = None,
) -> float:
    """Pearson's r of two maps given on their supports with a constant elsewhere:
    Σ a·b = Σ over a's support of a·b + a_zero · (Σ over all of b − Σ over a's support
    of b), with ``b`` gathered at a's support through its :attr:`~PreparedMap.place`
    (``b_at_a``: ``b.place[a.support]``, when the caller has it; ``b_on_a``: the gathered
    centred ranks or values themselves)."""
    ca, za, ssa = a.ranks_centred if ranks else a.values_centred
    _, _, ssb = b.ranks_centred if ranks else b.values_centred
    den = np.sqrt(ssa * ssb)
    if not den > 0:
        return 0.0
    if b_on_a is None:
        where = np.take(b.place, a.support).astype(np.intp) if b_at_a is None else b_at_a
        b_on_a = np.take(b.centred_and_zero(ranks), where)
    on_a = float(b_on_a.sum()) if b_sum is None else b_sum  # (b_sum: the caller's sum of it)
    dot = float(np.dot(ca, b_on_a)) + za * (b.centred_total(ranks) - on_a)
    return dot / float(den)


_FIXATED: dict[int, tuple[weakref.ref[NDArray[Any]], NDArray[np.intp]]] = {}
"""id -> (a weak reference to a read-only fixated-pixel map, its flat indices)."""


def fixated_indices(fixated: NDArray[Any]) -> NDArray[np.intp]:
    """``np.flatnonzero(fixated)``: the fixated pixels' flat indices (ascending). Kept, while
    the map lives, for a read-only map that owns its memory (as
    :func:`~gazelab.analysis.scoring.fixation_map` makes them): scoring pairs an annotator's
    fixated pixels with every other map, and each search reads the whole frame (~0.14 ms at
    560 px). A writable map, or a view, is searched each time (it may change). A map made
    writable again, changed and made read-only would keep its old indices: nothing here
    does that, and a caller must not."""
    key = id(fixated)
    got = _FIXATED.get(key)
    if got is not None and got[0]() is fixated:
        return got[1]
    idx = np.flatnonzero(fixated)
    if fixated.flags.writeable or fixated.base is not None:
        return idx
    idx.flags.writeable = False

    def forget(_: object) -> None:
        _FIXATED.pop(key, None)

    try:
        ref = weakref.ref(fixated, forget)
    except TypeError:
        return idx
    _FIXATED[key] = (ref, idx)
    return idx


_PAIR_KEYS = ("iou", "spearman", "cosine_distance", "cc", "sim", "kld")
_FIXATED_KEYS = (*_PAIR_KEYS, "nss", "auc_judd")


def pair_key(human: PreparedMap, other: PreparedMap, fixated: NDArray[np.bool_] | None) -> str:
    """The key a pair's scores are stored under: SHA-256 of the metrics' code, both maps'
    :meth:`~PreparedMap.exact_key` and the fixated pixels (hex, 64 characters)."""
    h = hashlib.sha256(f"{_CODE_KEY}{human.exact_key()}{other.exact_key()}".encode())
    if fixated is None:
        h.update(b"no fixated pixels")
    else:
        fix = np.asarray(fixated)  # as map_scores reads it: the pixels that are not 0
        h.update(f"{fix.shape}".encode())
        h.update(np.packbits(fix.ravel() if fix.dtype == np.bool_ else fix.ravel() != 0).data)
    return h.hexdigest()


def _keeps_scores(store: object) -> bool:
    return callable(getattr(store, "get_scores", None))


def map_scores(
    human: PreparedMap, other: PreparedMap, fixated: NDArray[np.bool_] | None = None
) -> dict[str, float]:
    """Every map metric of ``other`` against ``human`` (:func:`scores_of_pair`), read from
    the maps' store when it keeps scores (:class:`ScoreStore`: ``human``'s, else
    ``other``'s) and the same pair was scored before with the same code, else computed and
    kept there. A stored pair is the exact floats computed before: the key names both maps
    and the fixated pixels exactly (:func:`pair_key`)."""
    store = human._orders if _keeps_scores(human._orders) else other._orders
    if not _keeps_scores(store) or human.shape != other.shape:
        return scores_of_pair(human, other, fixated)
    key = pair_key(human, other, fixated)
    want = _PAIR_KEYS if fixated is None else _FIXATED_KEYS
    got = store.get_scores(key)  # type: ignore[union-attr]
    if got is not None and tuple(got) == want:
        return got
    out = scores_of_pair(human, other, fixated)
    if tuple(out) == want:
        store.put_scores(key, out)  # type: ignore[union-attr]
    return out


def scores_of_pair(
    human: PreparedMap, other: PreparedMap, fixated: NDArray[np.bool_] | None = None
) -> dict[str, float]:
    """Every map metric of ``other`` against ``human`` (the :data:`MAP_METRICS` and, with
    a ``fixated`` pixel map of the human fixations, NSS and AUC-Judd of ``other``);
    NaN where a metric is undefined (SIM/KL of a map without mass, NSS/AUC without a
    fixated pixel).

    Everything is taken on ``human``'s support, where ``other`` is gathered once through
    its :attr:`~PreparedMap.place`: its values there (0 off its support), its centred
    ranks and values; the pixels non-zero in both are those of the human support whose
    place is on ``other``'s."""
    if human.shape != other.shape:
        raise MetricError(
            f"maps differ in shape: {human.shape} vs {other.shape}; resample one first"
        )
    out: dict[str, float] = {}
    # the other's values, centred ranks and centred values at the human support, through
    # its places, in one pass (gather_at: np.take of each); and how many of those pixels
    # are on its support too
    o_on_h, r_on_h, c_on_h, both, r_sum, c_sum = gather_at(
        other.place, human.support, other.m, other.values_and_zero,
        other.centred_and_zero(True), other.centred_and_zero(False),
    )  # fmt: skip
    if both == human.m:  # other's support holds human's (a pooled map, mostly): no copies
        h_both, o_both = human.values, o_on_h  # read only below
    else:
        # of human's support, the pixels non-zero in both: where the other's value is not
        # 0 (its support's values are not, its zero block's is); in pixel order, one pass
        h_both, o_both = both_nonzero(human.values, o_on_h, both)
    n_h, n_o = human.m - human.n_neg, other.m - other.n_neg  # pixels > 0
    if human.n_neg == 0 and other.n_neg == 0:  # non-zero in both: > 0 in both
        inter = h_both.size
    else:
        inter = int(np.count_nonzero((h_both > 0) & (o_both > 0)))
    union = n_h + n_o - inter
    out["iou"] = 1.0 if union == 0 else inter / union
    out["spearman"] = _pearson_sparse(human, other, True, b_on_a=r_on_h, b_sum=r_sum)
    del r_on_h
    nx, ny = human.norm, other.norm
    cos = float(np.dot(h_both, o_both)) if h_both.size else 0.0
    out["cosine_distance"] = 1.0 if nx == 0 or ny == 0 else float(1.0 - cos / (nx * ny))
    out["cc"] = _pearson_sparse(human, other, False, b_on_a=c_on_h, b_sum=c_sum)
    del c_on_h
    tp, tq = human.total, other.total
    if isinstance(tp, MetricError) or isinstance(tq, MetricError):
        out["sim"] = out["kld"] = math.nan
    else:
        out["sim"] = sim_sum(h_both, o_both, tp, tq)  # Σ min(P, Q) where both
        # P log(EPS + P / (EPS + Q)) is 0 where P is 0: the human support only
        out["kld"] = kl_divergence(o_on_h, human.distribution, tq, EPS)
    if fixated is None:
        return out
    fix = fixated.ravel()
    if fix.shape != (other.n,):
        out["nss"] = out["auc_judd"] = math.nan
        return out
    idx = fixated_indices(fixated)
    if not idx.size:
        out["nss"] = out["auc_judd"] = math.nan
        return out
    mean, sd = other.mean_sd
    at_fix = np.take(other.values_and_zero, other.place[idx])  # other's values there
    out["nss"] = float((at_fix.mean() - mean) / sd) if sd > 0 else 0.0
    if idx.size < fix.size:
        out["auc_judd"] = other._get("auc0", lambda: other._make_auc(0))(idx)
    else:
        out["auc_judd"] = math.nan
    return out
