"""Comparing two maps (human vs model, human vs human) and two label sets (docs/algorithms.md#metrics).

The paper's three measures — IoU of the contour masks, Spearman rank
correlation, cosine distance — plus the standard saliency metrics of the MIT
benchmark (Bylinskii et al. 2019): NSS, AUC-Judd, CC, SIM and KL divergence.
Every function takes two ``(H, W)`` arrays of the same shape and returns a
float; inputs are never modified. Label agreement uses scikit-learn.

The package holds one concept per module: :mod:`.maps` (the metrics of two maps),
:mod:`.prepared` (the same metrics for many pairs, :class:`PreparedMap`) and
:mod:`.labels` (label agreement). Import from here:
``from gazelab.analysis.metrics import map_scores``.
"""

from __future__ import annotations

from gazelab.analysis.metrics.labels import (
    cohen_kappa,
    label_agreement,
)
from gazelab.analysis.metrics.maps import (
    AUC_JITTER,
    EPS,
    MAP_METRICS,
    MetricError,
    auc_judd,
    cc,
    compare_maps,
    contour_iou,
    cosine_distance,
    kld,
    nss,
    sim,
    spearman,
)
from gazelab.analysis.metrics.maps import _ranks as _ranks  # the tests check it
from gazelab.analysis.metrics.prepared import (
    PreparedMap,
    map_scores,
)

__all__ = [
    "AUC_JITTER",
    "EPS",
    "MAP_METRICS",
    "MetricError",
    "PreparedMap",
    "auc_judd",
    "cc",
    "cohen_kappa",
    "compare_maps",
    "contour_iou",
    "cosine_distance",
    "kld",
    "label_agreement",
    "map_scores",
    "nss",
    "sim",
    "spearman",
]
