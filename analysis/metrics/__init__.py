"""Comparing two maps (human vs model, human vs human) and two label sets (SPEC §6).

The paper's three measures — IoU of the contour masks, Spearman rank
correlation, cosine distance — plus the standard saliency metrics of the MIT
benchmark (Bylinskii et al. 2019): NSS, AUC-Judd, CC, SIM and KL divergence.
Every function takes two ``(H, W)`` arrays of the same shape and returns a
float; inputs are never modified. Label agreement uses scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.errors import GazelabError

EPS = np.finfo(np.float64).eps


class MetricError(GazelabError, ValueError):
    """The maps cannot be compared (shape mismatch, NaN, empty fixation map)."""


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise MetricError(f"maps differ in shape: {x.shape} vs {y.shape}; resample one first")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise MetricError("maps contain NaN or infinite values")
    return x, y


def contour_iou(a: ArrayLike, b: ArrayLike) -> float:
    """|A∩B| / |A∪B| of the contour masks (map > 0); 1.0 when both masks are empty."""
    x, y = _pair(a, b)
    ma, mb = x > 0, y > 0
    union = np.count_nonzero(ma | mb)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(ma & mb) / union)


def _ranks(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Average ranks (1-based, ties share their mean rank) of ``x``'s values, flattened.

    Saliency and gaze maps are mostly exact zeros (88–91 % in a typical study), so
    only the non-zero values are sorted and the zeros are one tie group placed
    between the negative and the positive values. Equal to
    ``scipy.stats.rankdata(x, method="average")``: a negative value's rank among
    the non-zeros is its full rank; a positive one's is shifted by the zeros; the
    zeros share the mean of the ranks ``n_neg + 1 … n_neg + n_zero``.
    """
    from scipy.stats import rankdata

    flat = x.ravel()
    nonzero = flat != 0
    n_nonzero = int(np.count_nonzero(nonzero))
    if n_nonzero == flat.size:
        return np.asarray(rankdata(flat, method="average"), dtype=np.float64)
    n_zero = flat.size - n_nonzero
    values = flat[nonzero]
    n_neg = int(np.count_nonzero(values < 0))
    out = np.full(flat.size, n_neg + (n_zero + 1) / 2.0, dtype=np.float64)
    if n_nonzero:
        r = np.asarray(rankdata(values, method="average"), dtype=np.float64)
        r[values > 0] += n_zero
        out[nonzero] = r
    return out


def _average_ranks(v: NDArray[np.float64], order: NDArray[np.intp]) -> NDArray[np.float64]:
    """``scipy.stats.rankdata(v, method="average")`` given ``order`` (an argsort of ``v``):
    without ties every rank is its position in the order (scattered in one pass); with
    ties, scipy's."""
    sv = v[order]
    if sv.size > 1 and not bool(np.all(sv[1:] > sv[:-1])):  # ties (or an unsorted order)
        from scipy.stats import rankdata

        return np.asarray(rankdata(v, method="average"), dtype=np.float64)
    r = np.empty(v.size, dtype=np.float64)
    r[order] = np.arange(1, v.size + 1, dtype=np.float64)
    return r


def _pearson(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    xc = x.ravel() - x.mean()
    yc = y.ravel() - y.mean()
    den = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    return float(np.dot(xc, yc) / den) if den > 0 else 0.0


def cc(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson's linear correlation coefficient over all pixels (0 if a map is constant)."""
    return _pearson(*_pair(a, b))


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rank correlation over all pixels (ties get average ranks, see
    :func:`_ranks`: the zero block is one tie group, only non-zero values are sorted)."""
    x, y = _pair(a, b)
    return _pearson(_ranks(x), _ranks(y))


def cosine_distance(a: ArrayLike, b: ArrayLike) -> float:
    """1 − cos(a, b) of the flattened maps: 0 for proportional maps, 1 for orthogonal ones."""
    x, y = _pair(a, b)
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 1.0
    return float(1.0 - np.dot(x.ravel(), y.ravel()) / (nx * ny))


def _fixations(fixation_map: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    f = np.asarray(fixation_map)
    if f.shape != shape:
        raise MetricError(f"fixation map shape {f.shape} differs from the saliency map's {shape}")
    mask = f > 0
    if not mask.any():
        raise MetricError("the fixation map has no fixated pixel")
    return mask


def nss(saliency: ArrayLike, fixation_map: ArrayLike) -> float:
    """Normalised scanpath saliency: mean of the z-scored saliency at fixated pixels.

    Computed as ``(mean(s[fix]) − mean(s)) / std(s)`` without building the z-scored
    map (the same number; half the memory traffic of the textbook form).
    """
    s = np.asarray(saliency, dtype=np.float64)
    fix = _fixations(fixation_map, s.shape)
    mean = s.mean()
    sd = np.sqrt(np.mean(np.square(s - mean)))
    if not sd > 0:
        return 0.0
    return float((s[fix].mean() - mean) / sd)


AUC_JITTER = 1e-7
"""The MIT benchmark's tie-breaking jitter: ``rand / 10^7`` added to a map in 0..1."""


def auc_judd(
    saliency: ArrayLike, fixation_map: ArrayLike, *, jitter: bool = True, seed: int = 0
) -> float:
    """AUC-Judd as the MIT saliency benchmark computes it (``AUC_Judd.m``, Bylinskii et al.).

    The map is scaled to 0..1; with ``jitter`` (the benchmark's default) uniform noise
    of at most :data:`AUC_JITTER` is added, from a generator seeded by ``seed``, so that
    the large tied blocks of truncated heatmaps (exact zeros) are broken at random
    instead of counting every tied pixel as above the threshold; the result is then
    scaled to 0..1 again. Thresholds are the saliency values at the fixated pixels;
    TPR is over fixations, FPR over all other pixels (ties count as above, as in the
    reference); trapezoidal area with (0, 0) and (1, 1) added. ``jitter=False`` gives
    the reference's tie-as-above number (a lower bound on tied maps).
    """
    s = np.asarray(saliency, dtype=np.float64)
    fix = _fixations(fixation_map, s.shape).ravel()
    if fix.all():
        raise MetricError("every pixel is fixated: AUC-Judd has no non-fixated pixel")
    v = _auc_scaled(s.ravel(), jitter, seed)
    return _auc_from_values(v[fix], v)


def _auc_scaled(s: NDArray[np.float64], jitter: bool, seed: int) -> NDArray[np.float64]:
    """The flat map scaled to 0..1 and, with ``jitter``, MIT's tie-breaking noise added
    (from a generator seeded by ``seed``) and scaled to 0..1 again."""
    lo, hi = s.min(), s.max()
    s = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    if jitter:
        s = s + np.random.default_rng(seed).random(s.size) * AUC_JITTER
        lo, hi = s.min(), s.max()
        s = (s - lo) / (hi - lo)
    return s


_AUC_FEW_THRESHOLDS = 12
"""Up to this many fixated pixels, AUC-Judd counts with one pass over the map each."""


def _auc_from_values(at_fixations: NDArray[np.float64], values: NDArray[np.float64]) -> float:
    """AUC-Judd from the (scaled) values at the fixated pixels and all values, unsorted.

    The reference counts the pixels at or above each of the k thresholds with a pass
    over the map each (k passes); sorting the map costs N log N. Here one binary search
    per pixel into the k sorted thresholds (N log k) and one histogram give every count
    at once: the same integers, so the same area, bit for bit."""
    t = np.sort(at_fixations)  # ascending
    n_fix, n_pix = t.size, values.size
    if n_fix <= _AUC_FEW_THRESHOLDS:  # a few passes beat one binary search per pixel
        above = np.array([np.count_nonzero(values >= th) for th in t[::-1]])
    else:
        # for each pixel, how many thresholds are <= its value (a tie counts as above)
        passed = np.bincount(np.searchsorted(t, values, side="right"), minlength=n_fix + 1)
        above_asc = np.cumsum(passed[::-1])[::-1][1:]  # pixels >= t[j], j ascending
        above = above_asc[::-1]  # for the thresholds in descending order, as the reference
    tp = np.arange(1, n_fix + 1) / n_fix
    fp = (above - np.arange(1, n_fix + 1)) / (n_pix - n_fix)
    tpr = np.concatenate([[0.0], tp, [1.0]])
    fpr = np.concatenate([[0.0], fp, [1.0]])
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _distribution(x: NDArray[np.float64]) -> NDArray[np.float64]:
    if (x < 0).any():
        raise MetricError("SIM and KL need non-negative maps")
    total = x.sum()
    if total <= 0:
        raise MetricError("SIM and KL need maps with positive mass")
    return x / total


def sim(a: ArrayLike, b: ArrayLike) -> float:
    """Similarity (histogram intersection) of the two maps normalised to sum 1: 0..1."""
    x, y = _pair(a, b)
    return float(np.minimum(_distribution(x), _distribution(y)).sum())


def kld(p: ArrayLike, q: ArrayLike) -> float:
    """KL divergence KL(p ‖ q) of the maps normalised to sum 1, with ε regularisation
    (MIT benchmark form: Σ p log(ε + p / (ε + q)))."""
    x, y = _pair(p, q)
    P, Q = _distribution(x), _distribution(y)
    return float(np.sum(P * np.log(EPS + P / (EPS + Q))))


MAP_METRICS = {
    "iou": contour_iou,
    "spearman": spearman,
    "cosine_distance": cosine_distance,
    "cc": cc,
    "sim": sim,
    "kld": kld,
}
"""Metrics between two heatmaps, by report column name."""


def compare_maps(
    human: ArrayLike, other: ArrayLike, fixation_map: ArrayLike | None = None
) -> dict[str, float]:
    """Every map metric of ``other`` against ``human``; NSS and AUC-Judd of ``other`` at
    the human fixations when a ``fixation_map`` is given."""
    out = {name: fn(human, other) for name, fn in MAP_METRICS.items()}
    if fixation_map is not None:
        out["nss"] = nss(other, fixation_map)
        out["auc_judd"] = auc_judd(other, fixation_map)
    return out


_JITTER_CACHE: dict[tuple[int, int], tuple[NDArray[Any], ...]] = {}
"""(size, seed) -> MIT jitter noise, sorted, and its sort order: one draw per size and seed."""


def _jitter(size: int, seed: int) -> tuple[NDArray[Any], ...]:
    key = (size, seed)
    if key not in _JITTER_CACHE:
        if len(_JITTER_CACHE) > 8:
            _JITTER_CACHE.clear()
        noise: NDArray[np.float64] = np.random.default_rng(seed).random(size) * AUC_JITTER
        order = np.argsort(noise, kind="stable")
        _JITTER_CACHE[key] = (noise, noise[order], order)
    return _JITTER_CACHE[key]


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

    def __init__(self, a: ArrayLike) -> None:
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
        return self._get("order", lambda: np.argsort(self.values))

    @property
    def values_centred(self) -> tuple[NDArray[np.float64], float, float]:
        return self._get("values", lambda: self._centre(self.values, 0.0, self.n_zero, self.n))

    def dense_centred(self, ranks: bool) -> NDArray[np.float64]:
        """The centred ranks (or values) of every pixel, as one flat array."""

        def make() -> NDArray[np.float64]:
            c, cz, _ = self.ranks_centred if ranks else self.values_centred
            out = np.full(self.n, cz)
            out[self.support] = c
            return out

        return self._get(f"dense{ranks}", make)

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
        noise, noise_sorted, noise_order = _jitter(n, seed)
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
        r_sup_noise = (noise_sorted[self.nonzero[noise_order]] - v_lo) / scale

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


def _pearson_sparse(a: PreparedMap, b: PreparedMap, ranks: bool) -> float:
    """Pearson's r of two maps given on their supports with a constant elsewhere:
    Σ a·b = Σ over a's support of a·b + a_zero · (Σ over all of b − Σ over a's support
    of b), with ``b`` gathered from its dense form (built once per map)."""
    ca, za, ssa = a.ranks_centred if ranks else a.values_centred
    cb, zb, ssb = b.ranks_centred if ranks else b.values_centred
    den = np.sqrt(ssa * ssb)
    if not den > 0:
        return 0.0
    b_dense = b.dense_centred(ranks)
    b_on_a = b_dense[a.support]
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
    out["spearman"] = _pearson_sparse(human, other, ranks=True)
    nx, ny = human.norm, other.norm
    cos = float(np.dot(human.flat[both], other.flat[both])) if both.size else 0.0
    out["cosine_distance"] = 1.0 if nx == 0 or ny == 0 else float(1.0 - cos / (nx * ny))
    out["cc"] = _pearson_sparse(human, other, ranks=False)
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


# -- labels -------------------------------------------------------------------------------------
def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's κ between two annotators' labels of the same images (scikit-learn)."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) != len(b):
        raise MetricError(f"label lists differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        raise MetricError("no labels to compare")
    if len(set(a) | set(b)) == 1:
        return 1.0  # perfect agreement on a single class; sklearn returns NaN here
    return float(cohen_kappa_score(list(a), list(b)))


def label_agreement(
    truth: Sequence[str], given: Sequence[str], classes: Sequence[str]
) -> dict[str, object]:
    """Accuracy and the confusion matrix (rows: dataset label, columns: given label)."""
    from sklearn.metrics import accuracy_score, confusion_matrix

    if len(truth) != len(given):
        raise MetricError(f"label lists differ in length: {len(truth)} vs {len(given)}")
    return {
        "accuracy": float(accuracy_score(list(truth), list(given))) if truth else float("nan"),
        "confusion": confusion_matrix(list(truth), list(given), labels=list(classes)).tolist(),
        "classes": list(classes),
    }
