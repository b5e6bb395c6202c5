"""Comparing two maps (human vs model, human vs human) and two label sets (SPEC §6).

The paper's three measures — IoU of the contour masks, Spearman rank
correlation, cosine distance — plus the standard saliency metrics of the MIT
benchmark (Bylinskii et al. 2019): NSS, AUC-Judd, CC, SIM and KL divergence.
Every function takes two ``(H, W)`` arrays of the same shape and returns a
float; inputs are never modified. Label agreement uses scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    from scipy.stats import rankdata

    return np.asarray(rankdata(x.ravel(), method="average"), dtype=np.float64)


def cc(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson's linear correlation coefficient over all pixels (0 if a map is constant)."""
    x, y = _pair(a, b)
    xc = x.ravel() - x.mean()
    yc = y.ravel() - y.mean()
    den = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    return float(np.dot(xc, yc) / den) if den > 0 else 0.0


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rank correlation over all pixels (ties get average ranks)."""
    x, y = _pair(a, b)
    return cc(_ranks(x), _ranks(y))


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
    """Normalised scanpath saliency: mean of the z-scored saliency at fixated pixels."""
    s = np.asarray(saliency, dtype=np.float64)
    fix = _fixations(fixation_map, s.shape)
    sd = s.std()
    z = (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)
    return float(z[fix].mean())


def auc_judd(saliency: ArrayLike, fixation_map: ArrayLike) -> float:
    """AUC-Judd: thresholds at the saliency of each fixated pixel; TPR over fixations,
    FPR over all other pixels; trapezoidal area with (0, 0) and (1, 1) added."""
    s = np.asarray(saliency, dtype=np.float64).ravel()
    fix = _fixations(fixation_map, np.asarray(saliency).shape).ravel()
    s_fix = np.sort(s[fix])[::-1]
    n_fix, n_pix = s_fix.size, s.size
    s_sorted = np.sort(s)
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
