"""The same map metrics for many pairs: a :class:`PreparedMap` does once, on its non-zero
support, the work every comparison repeats, and :func:`map_scores` scores two of them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.analysis.metrics.maps import (
    AUC_JITTER,
    EPS,
    MetricError,
    _auc_from_values,
    _auc_scaled,
    _average_ranks,
)

_JITTER_CACHE: dict[tuple[int, int], tuple[NDArray[Any], ...]] = {}
"""(size, seed) -> MIT jitter noise, sorted, its sort order and each pixel's place in it: one
draw per size and seed."""


def _jitter(size: int, seed: int) -> tuple[NDArray[Any], ...]:
    key = (size, seed)
    if key not in _JITTER_CACHE:
        if len(_JITTER_CACHE) > 8:
            _JITTER_CACHE.clear()
        noise: NDArray[np.float64] = np.random.default_rng(seed).random(size) * AUC_JITTER
        order = np.argsort(noise, kind="stable")
        where = np.empty(size, dtype=np.intp)  # each pixel's place in the sorted noise
        where[order] = np.arange(size)
        _JITTER_CACHE[key] = (noise, noise[order], order, where)
    return _JITTER_CACHE[key]


class OrderStore(Protocol):
    """Where :class:`PreparedMap` keeps the sort of a map's support between runs, by the
    map's content (:meth:`PreparedMap.content_key`); e.g.
    :class:`~gazelab.analysis.cache.SaliencyCache`."""

    def get_order(self, key: str) -> NDArray[Any] | None: ...

    def put_order(self, key: str, order: NDArray[Any]) -> None: ...


class PreparedMap:
    """One map with the work every comparison repeats done once, on its support.

    Study heatmaps are 88–91 % exact zeros, so a map is kept as its non-zero pixels
    (indices and values) plus the size of its zero block; ranks, centred values and
    sums of squares, mass, NSS mean/sd and the MIT-jittered AUC values are computed
    from those. Scoring one map against many others (rows grow as annotators²) then
    costs work on the two supports, not on every pixel. :func:`map_scores` gives the
    numbers of the plain functions (equal to within float rounding of the summation
    order; tested to 1e-12).
    """

    def __init__(self, a: ArrayLike, orders: OrderStore | None = None) -> None:
        x = np.asarray(a, dtype=np.float64)
        if not np.isfinite(x).all():
            raise MetricError("maps contain NaN or infinite values")
        self.x = x
        self.shape = x.shape
        self.flat = x.ravel()
        self.n = self.flat.size
        self.support = np.flatnonzero(self.flat)  # sorted indices of the non-zero pixels
        self.values = self.flat[self.support]
        self.n_zero = self.n - self.support.size
        self._cache: dict[str, Any] = {}
        self._orders = orders

    def _get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @staticmethod
    def _centre(
        on_support: NDArray[np.float64], zero_value: float, n_zero: int, n: int
    ) -> tuple[NDArray[np.float64], float, float]:
        mean = (on_support.sum() + n_zero * zero_value) / n
        c = on_support - mean
        cz = zero_value - mean
        return c, float(cz), float(np.dot(c, c) + n_zero * cz * cz)

    @property
    def ranks_centred(self) -> tuple[NDArray[np.float64], float, float]:
        """(centred ranks on the support, centred rank of the zero block, sum of squares)."""

        def make() -> tuple[NDArray[np.float64], float, float]:
            v = self.values
            n_neg = int(np.count_nonzero(v < 0))
            r = _average_ranks(v, self.order) if v.size else v
            r = r + np.where(v > 0, self.n_zero, 0)
            return self._centre(r, n_neg + (self.n_zero + 1) / 2.0, self.n_zero, self.n)

        return self._get("ranks", make)

    @property
    def order(self) -> NDArray[np.intp]:
        """The order that sorts :attr:`values` ascending (one sort per map: the ranks and
        AUC-Judd's sorted values are both taken from it)."""
        return self._get("order", self._make_order)

    def content_key(self) -> str:
        """A hash of the map's non-zero values in pixel order (hex, 32 characters): all the
        sort of the support depends on."""
        h = hashlib.blake2b(f"{self.values.dtype.str}{self.values.size}".encode(), digest_size=16)
        h.update(np.ascontiguousarray(self.values).tobytes())
        return h.hexdigest()

    def _make_order(self) -> NDArray[np.intp]:
        """The sort of the support, from the ``orders`` store when it holds one for this
        content (checked: a permutation that sorts the values), else sorted and stored."""
        m = self.values.size
        if self._orders is None or m < 2:
            return np.argsort(self.values)
        key = self.content_key()
        got = self._orders.get_order(key)
        if got is not None and got.shape == (m,) and got.min() >= 0 and got.max() < m:
            order = got.astype(np.intp)
            sv = self.values[order]
            if bool(np.all(sv[1:] >= sv[:-1])) and int(np.bincount(order).max()) == 1:
                return order
        order = np.argsort(self.values)
        self._orders.put_order(key, order.astype(np.int32 if m < 2**31 else np.int64))
        return order

    @property
    def values_centred(self) -> tuple[NDArray[np.float64], float, float]:
        return self._get("values", lambda: self._centre(self.values, 0.0, self.n_zero, self.n))

    def centred_and_zero(self, ranks: bool) -> NDArray[np.float64]:
        """The centred ranks (or values) on the support followed by the zero block's one
        value: indexed by :attr:`place`, every pixel's centred rank (or value)."""

        def make() -> NDArray[np.float64]:
            c, cz, _ = self.ranks_centred if ranks else self.values_centred
            return np.append(c, cz)

        return self._get(f"ext{ranks}", make)

    @property
    def place(self) -> NDArray[np.int32]:
        """Every pixel's place on the support, or the support's size for a zero pixel
        (``(n,)`` int32, a quarter of a dense float64 map)."""

        def make() -> NDArray[np.int32]:
            out = np.full(self.n, self.support.size, dtype=np.int32)
            out[self.support] = np.arange(self.support.size, dtype=np.int32)
            return out

        return self._get("place", make)

    @property
    def nonzero(self) -> NDArray[np.bool_]:
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
            if (self.values < 0).any():
                return MetricError("SIM and KL need non-negative maps")
            t = float(self.values.sum())
            return t if t > 0 else MetricError("SIM and KL need maps with positive mass")

        return self._get("total", make)

    @property
    def mean_sd(self) -> tuple[float, float]:
        def make() -> tuple[float, float]:
            c, cz, ss = self.values_centred
            return float(self.values.sum() / self.n), float(np.sqrt(ss / self.n))

        return self._get("mean_sd", make)

    def auc_counter(self, seed: int = 0) -> Callable[[NDArray[np.bool_]], float]:
        """AUC-Judd of this map at a fixated-pixel map, as :func:`auc_judd` computes it.

        The reference adds MIT's jitter to every pixel, rescales and sorts them all. Here
        the zero block is counted through the (cached, sorted) jitter of all pixels minus
        that of the support: every value is the same float the reference computes, and
        every count the same integer, without sorting the map.
        """
        return self._get(f"auc{seed}", lambda: self._make_auc(seed))

    def _make_auc(self, seed: int) -> Callable[[NDArray[np.bool_]], float]:
        flat, sup, n = self.flat, self.support, self.n
        if self.n_zero == 0 or sup.size == 0 or self.values.min() < 0:
            values = _auc_scaled(flat, True, seed)  # no zero block to exploit: the reference
            return lambda fix: _auc_from_values(values[fix], values)
        noise, noise_sorted, noise_order, noise_where = _jitter(n, seed)
        hi = float(self.values.max())  # the map's min is 0 (its zero block)
        v_sup = self.values / hi + noise[sup]  # as _auc_scaled: (s - 0) / (hi - 0) + noise
        # the jittered map's min: the zero block's smallest noise (found among the
        # smallest noise values overall); its max: on the support (a value of 1 + noise)
        k = 0
        while self.nonzero[noise_order[k]]:
            k += 1
        v_lo = min(float(v_sup.min()), float(noise_sorted[k]))
        scale = max(float(v_sup.max()), float(noise_sorted[-1])) - v_lo
        r_sup = (v_sup - v_lo) / scale
        # sorted from the values' order, which the 1e-7 jitter leaves nearly sorted: a
        # stable (merge) sort then costs about one pass; the same floats as np.sort(r_sup)
        r_sup_sorted = np.sort(r_sup[self.order], kind="stable")
        # support pixels, as if zero: their noise in the cached sorted order (a monotone
        # map of sorted values is sorted; the same floats as sorting them)
        in_sorted = np.zeros(n, dtype=bool)  # the support's places in the sorted noise
        in_sorted[noise_where[sup]] = True
        r_sup_noise = (noise_sorted[in_sorted] - v_lo) / scale

        def zero_block_above(t: float) -> int:
            """Pixels whose value would be ≥ t if they were in the zero block: the
            monotone f(u) = (u − lo) / scale searched on the sorted noise, exactly."""
            p = int(np.searchsorted(noise_sorted, t * scale + v_lo, side="left"))
            while p > 0 and (noise_sorted[p - 1] - v_lo) / scale >= t:
                p -= 1
            while p < n and (noise_sorted[p] - v_lo) / scale < t:
                p += 1
            return n - p

        def auc(fix: NDArray[np.bool_]) -> float:
            idx = np.flatnonzero(fix)
            pos = np.minimum(np.searchsorted(sup, idx), sup.size - 1)
            on_sup = sup[pos] == idx
            thr = np.where(on_sup, r_sup[pos], (noise[idx] - v_lo) / scale)
            s_fix = np.sort(thr)[::-1]
            n_fix = s_fix.size
            zero_above = np.array([zero_block_above(float(t)) for t in s_fix], dtype=np.int64)
            above = (
                (sup.size - np.searchsorted(r_sup_sorted, s_fix, side="left"))
                + zero_above
                - (sup.size - np.searchsorted(r_sup_noise, s_fix, side="left"))
            )
            tp = np.arange(1, n_fix + 1) / n_fix
            fp = (above - np.arange(1, n_fix + 1)) / (n - n_fix)
            tpr = np.concatenate([[0.0], tp, [1.0]])
            fpr = np.concatenate([[0.0], fp, [1.0]])
            return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))

        return auc


def _pearson_sparse(
    a: PreparedMap, b: PreparedMap, ranks: bool, b_at_a: NDArray[np.int32] | None = None
) -> float:
    """Pearson's r of two maps given on their supports with a constant elsewhere:
    Σ a·b = Σ over a's support of a·b + a_zero · (Σ over all of b − Σ over a's support
    of b), with ``b`` gathered at a's support through its :attr:`~PreparedMap.place`
    (``b_at_a``: ``b.place[a.support]``, when the caller has it)."""
    ca, za, ssa = a.ranks_centred if ranks else a.values_centred
    cb, zb, ssb = b.ranks_centred if ranks else b.values_centred
    den = np.sqrt(ssa * ssb)
    if not den > 0:
        return 0.0
    b_on_a = b.centred_and_zero(ranks)[b.place[a.support] if b_at_a is None else b_at_a]
    b_total = float(cb.sum() + b.n_zero * zb)
    dot = float(np.dot(ca, b_on_a)) + za * (b_total - float(b_on_a.sum()))
    return dot / float(den)


def map_scores(
    human: PreparedMap, other: PreparedMap, fixated: NDArray[np.bool_] | None = None
) -> dict[str, float]:
    """Every map metric of ``other`` against ``human`` (the :data:`MAP_METRICS` and, with
    a ``fixated`` pixel map of the human fixations, NSS and AUC-Judd of ``other``);
    NaN where a metric is undefined (SIM/KL of a map without mass, NSS/AUC without a
    fixated pixel)."""
    if human.shape != other.shape:
        raise MetricError(
            f"maps differ in shape: {human.shape} vs {other.shape}; resample one first"
        )
    out: dict[str, float] = {}
    both = other.support[human.nonzero[other.support]]  # pixels non-zero in both (sorted)
    hp, op = human.flat[both] > 0, other.flat[both] > 0
    n_h = int(np.count_nonzero(human.values > 0))
    n_o = int(np.count_nonzero(other.values > 0))
    inter = int(np.count_nonzero(hp & op))
    union = n_h + n_o - inter
    out["iou"] = 1.0 if union == 0 else inter / union
    other_at_human = other.place[human.support]
    out["spearman"] = _pearson_sparse(human, other, True, other_at_human)
    nx, ny = human.norm, other.norm
    cos = float(np.dot(human.flat[both], other.flat[both])) if both.size else 0.0
    out["cosine_distance"] = 1.0 if nx == 0 or ny == 0 else float(1.0 - cos / (nx * ny))
    out["cc"] = _pearson_sparse(human, other, False, other_at_human)
    tp, tq = human.total, other.total
    if isinstance(tp, MetricError) or isinstance(tq, MetricError):
        out["sim"] = out["kld"] = math.nan
    else:
        out["sim"] = float(np.minimum(human.flat[both] / tp, other.flat[both] / tq).sum())
        p = human.values / tp  # P log(...) is 0 where P is 0
        q = other.flat[human.support] / tq
        out["kld"] = float(np.sum(p * np.log(EPS + p / (EPS + q))))
    if fixated is None:
        return out
    fix = fixated.ravel()
    if fix.shape != other.flat.shape or not fix.any():
        out["nss"] = out["auc_judd"] = math.nan
        return out
    mean, sd = other.mean_sd
    out["nss"] = float((other.flat[fix].mean() - mean) / sd) if sd > 0 else 0.0
    out["auc_judd"] = other.auc_counter()(fix) if fix.sum() < fix.size else math.nan
    return out
