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
    return _auc_from_sorted(v[fix], np.sort(v))


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


def _auc_from_sorted(at_fixations: NDArray[np.float64], s_sorted: NDArray[np.float64]) -> float:
    """AUC-Judd from the (scaled) values at the fixated pixels and all values sorted."""
    s_fix = np.sort(at_fixations)[::-1]
    n_fix, n_pix = s_fix.size, s_sorted.size
    # pixels at or above each threshold (ties count as above, as in the reference code)
    above = n_pix - np.searchsorted(s_sorted, s_fix, side="left")
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


class PreparedMap:
    """One map with the work every comparison repeats done once: its ranks, centred
    values and norms, its mass distribution, its positive pixels, and for NSS/AUC its
    mean, spread and MIT-jittered sorted values.

    Scoring one map against many others (every annotator against the model and each
    other annotator, rows growing as annotators²) then costs a few O(pixels) products
    per pair instead of two full rankings and a sort. :func:`map_scores` on prepared
    maps gives the numbers of the plain functions (equal to within float rounding of
    the summation order; tested to 1e-12).
    """

    def __init__(self, a: ArrayLike) -> None:
        x = np.asarray(a, dtype=np.float64)
        if not np.isfinite(x).all():
            raise MetricError("maps contain NaN or infinite values")
        self.x = x
        self.shape = x.shape
        self.flat = x.ravel()
        self._cache: dict[str, Any] = {}

    def _get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def positive(self) -> NDArray[np.bool_]:
        return self._get("positive", lambda: self.flat > 0)  # type: ignore[no-any-return]

    def _centred(self, key: str, values: Callable[[], NDArray[np.float64]]) -> Any:
        def make() -> tuple[NDArray[np.float64], float]:
            v = values()
            c = v - v.mean()
            return c, float(np.dot(c, c))

        return self._get(key, make)

    @property
    def ranks_centred(self) -> tuple[NDArray[np.float64], float]:
        return self._centred("ranks", lambda: _ranks(self.x))  # type: ignore[no-any-return]

    @property
    def values_centred(self) -> tuple[NDArray[np.float64], float]:
        return self._centred("values", lambda: self.flat)  # type: ignore[no-any-return]

    @property
    def norm(self) -> float:
        return self._get("norm", lambda: float(np.linalg.norm(self.x)))  # type: ignore[no-any-return]

    @property
    def distribution(self) -> NDArray[np.float64] | MetricError:
        """The map over its total mass, or the error SIM/KL report for it."""

        def make() -> NDArray[np.float64] | MetricError:
            try:
                return _distribution(self.flat)
            except MetricError as exc:
                return exc

        return self._get("dist", make)  # type: ignore[no-any-return]

    @property
    def mean_sd(self) -> tuple[float, float]:
        def make() -> tuple[float, float]:
            mean = float(self.flat.mean())
            return mean, float(np.sqrt(np.mean(np.square(self.flat - mean))))

        return self._get("mean_sd", make)  # type: ignore[no-any-return]

    def auc_values(self, seed: int = 0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(the map scaled and jittered as :func:`auc_judd` does, its sorted copy)."""

        def make() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            v = _auc_scaled(self.flat, True, seed)
            return v, np.sort(v)

        return self._get(f"auc{seed}", make)  # type: ignore[no-any-return]


def _pearson_prepared(
    a: tuple[NDArray[np.float64], float], b: tuple[NDArray[np.float64], float]
) -> float:
    den = np.sqrt(a[1] * b[1])
    return float(np.dot(a[0], b[0]) / den) if den > 0 else 0.0


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
    union = int(np.count_nonzero(human.positive | other.positive))
    out["iou"] = (
        1.0 if union == 0 else float(np.count_nonzero(human.positive & other.positive) / union)
    )
    out["spearman"] = _pearson_prepared(human.ranks_centred, other.ranks_centred)
    nx, ny = human.norm, other.norm
    out["cosine_distance"] = (
        1.0 if nx == 0 or ny == 0 else float(1.0 - np.dot(human.flat, other.flat) / (nx * ny))
    )
    out["cc"] = _pearson_prepared(human.values_centred, other.values_centred)
    p, q = human.distribution, other.distribution
    if isinstance(p, MetricError) or isinstance(q, MetricError):
        out["sim"] = out["kld"] = math.nan
    else:
        both = human.positive & other.positive  # min(P, Q) is 0 elsewhere
        out["sim"] = float(np.minimum(p[both], q[both]).sum())
        on = human.positive  # P log(...) is 0 where P is 0
        out["kld"] = float(np.sum(p[on] * np.log(EPS + p[on] / (EPS + q[on]))))
    if fixated is None:
        return out
    fix = fixated.ravel()
    if fix.shape != other.flat.shape or not fix.any():
        out["nss"] = out["auc_judd"] = math.nan
        return out
    mean, sd = other.mean_sd
    out["nss"] = float((other.flat[fix].mean() - mean) / sd) if sd > 0 else 0.0
    values, ordered = other.auc_values()
    out["auc_judd"] = _auc_from_sorted(values[fix], ordered) if fix.sum() < fix.size else math.nan
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
