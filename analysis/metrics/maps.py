"""Two maps compared: IoU of the contour masks, Spearman, cosine distance, and the MIT
benchmark's NSS, AUC-Judd, CC, SIM and KL divergence (:data:`MAP_METRICS`), each taking
two ``(H, W)`` arrays of one shape and returning a float.
"""

from __future__ import annotations

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


def _average_ranks(
    v: NDArray[np.float64], order: NDArray[np.intp], sv: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """``scipy.stats.rankdata(v, method="average")`` given ``order`` (any order that sorts
    ``v`` ascending; ``sv``: ``v[order]`` where the caller has it): without ties every rank
    is its position in the order (scattered in one pass); with ties, scipy's formula on the
    sorted values (the same floats)."""
    if sv is None:
        sv = v[order]
    r = np.empty(v.size, dtype=np.float64)
    if sv.size < 2 or bool(np.all(sv[1:] > sv[:-1])):
        r[order] = np.arange(1, v.size + 1, dtype=np.float64)
        return r
    # ties: scipy's formula on the sorted values, each tie group its mean rank (one pass)
    from gazelab.analysis.metrics.kernels import tied_ranks

    return tied_ranks(order, sv)


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

    The last scaling ``f(u) = (u − lo) / (hi − lo)`` is monotone in floating point, so
    it is applied to the fixated pixels only: each threshold ``t`` becomes the least
    float ``x`` with ``f(x) ≥ t`` and the unscaled map is counted against ``x`` — the
    same integers as counting the scaled map, so the same area, bit for bit.
    """
    s = np.asarray(saliency, dtype=np.float64)
    fix = _fixations(fixation_map, s.shape).ravel()
    if fix.all():
        raise MetricError("every pixel is fixated: AUC-Judd has no non-fixated pixel")
    u, lo, scale = _auc_unscaled(s.ravel(), jitter, seed)
    n_pix = u.size
    if not scale > 0:  # a constant map: every value is 0 and every pixel ties
        return _auc_area(np.full(int(fix.sum()), n_pix, dtype=np.int64), n_pix)
    t = np.sort((u[fix] - lo) / scale)  # the reference's thresholds, ascending
    x = _least_scaled_at_or_above(t, lo, scale)
    if x is None:  # (not seen) the search did not settle: count the scaled map itself
        return _auc_area(_n_at_or_above((u - lo) / scale, t)[::-1], n_pix)
    return _auc_area(_n_at_or_above(u, x)[::-1], n_pix)


def _auc_unscaled(
    s: NDArray[np.float64], jitter: bool, seed: int
) -> tuple[NDArray[np.float64], float, float]:
    """``(u, lo, scale)`` with ``(u − lo) / scale`` elementwise the reference's values
    (:func:`_auc_scaled`): the flat map scaled to 0..1 and, with ``jitter``, MIT's noise
    added (from a generator seeded by ``seed``), before the last scaling to 0..1.
    ``scale`` is 0 for a constant map without jitter (every value 0)."""
    lo, hi = float(s.min()), float(s.max())
    if not jitter:
        return (s, lo, hi - lo) if hi > lo else (np.zeros_like(s), 0.0, 0.0)
    u = np.random.default_rng(seed).random(s.size)
    u *= AUC_JITTER
    if hi > lo:
        # already 0..1 (MIT's maps): (s − 0) / (1 − 0) is s itself, skip the two passes
        u += s if (lo, hi) == (0.0, 1.0) else (s - lo) / (hi - lo)
    lo, hi = float(u.min()), float(u.max())
    return u, lo, hi - lo


def _auc_scaled(s: NDArray[np.float64], jitter: bool, seed: int) -> NDArray[np.float64]:
    """The flat map scaled to 0..1 and, with ``jitter``, MIT's tie-breaking noise added
    (from a generator seeded by ``seed``) and scaled to 0..1 again."""
    u, lo, scale = _auc_unscaled(s, jitter, seed)
    return (u - lo) / scale if scale > 0 else np.zeros_like(u)


_AUC_MAX_STEPS = 64
"""Float steps the threshold search may take from its first guess (a few in practice)."""


def _least_scaled_at_or_above(
    t: NDArray[np.float64], lo: float, scale: float
) -> NDArray[np.float64] | None:
    """For each threshold ``t``: the least float ``x`` with ``(x − lo) / scale ≥ t``
    (``scale > 0``), so that ``(u − lo) / scale ≥ t`` exactly when ``u ≥ x`` for every
    float ``u`` (subtraction and division by a positive number round monotonically).
    Stepped one float at a time from ``t · scale + lo``; None if that takes more than
    :data:`_AUC_MAX_STEPS` steps."""
    x = t * scale + lo
    for _ in range(_AUC_MAX_STEPS):  # down while the float below still maps to >= t
        down = np.nextafter(x, -np.inf)
        m = (down - lo) / scale >= t
        if not m.any():
            break
        x[m] = down[m]
    else:
        return None
    for _ in range(_AUC_MAX_STEPS):  # up while x itself maps below t
        m = (x - lo) / scale < t
        if not m.any():
            return x
        x[m] = np.nextafter(x[m], np.inf)
    return None


def _auc_area(above: NDArray[np.int64], n_pix: int) -> float:
    """The trapezoidal area from the pixels at or above each threshold, thresholds in
    descending order (as the reference walks them)."""
    n_fix = above.size
    tp = np.arange(1, n_fix + 1) / n_fix
    fp = (above - np.arange(1, n_fix + 1)) / (n_pix - n_fix)
    tpr = np.concatenate([[0.0], tp, [1.0]])
    fpr = np.concatenate([[0.0], fp, [1.0]])
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _auc_from_values(at_fixations: NDArray[np.float64], values: NDArray[np.float64]) -> float:
    """AUC-Judd from the (scaled) values at the fixated pixels and all values, unsorted."""
    return _auc_area(_n_at_or_above(values, np.sort(at_fixations))[::-1], values.size)


_AUC_PASSES = 400
"""Up to this many thresholds AUC-Judd counts with one compare-and-count pass over the
map each (~0.2 ns a pixel); above, with one binary search per pixel among the sorted
thresholds (~40–80 ns a pixel, branch mispredictions): measured crossing at ~400."""


def _n_at_or_above(u: NDArray[np.float64], th: NDArray[np.float64]) -> NDArray[np.int64]:
    """How many of ``u`` are ≥ each of the ascending thresholds ``th``: exact integers,
    by whichever of the two counts costs less (:data:`_AUC_PASSES`). The reference
    makes one pass per threshold too, but sums a fresh boolean map each time (about
    2.5× the compare and count into one reused buffer here)."""
    k = th.size
    if k <= _AUC_PASSES:
        buf = np.empty(u.shape, dtype=bool)
        return np.array(
            [np.count_nonzero(np.greater_equal(u, t, out=buf)) for t in th], dtype=np.int64
        )
    # for each value, how many thresholds are <= it (a tie counts as above)
    passed = np.bincount(np.searchsorted(th, u, side="right"), minlength=k + 1)
    return np.cumsum(passed[::-1])[::-1][1:]  # values >= th[j], j ascending


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
