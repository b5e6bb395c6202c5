"""Baselines for map agreement: how much of a human-vs-human or model-vs-human score is
just the layout of a face (docs/algorithms.md#model-heatmaps).

Faces shown aligned put eyes, nose and mouth at nearly the same pixels in every image, so
two maps agree a good deal even when they were made on *different* images. A score can
only be read against that floor. Two baselines, each scored exactly as the observed pairs
(:func:`~gazelab.analysis.metrics.map_scores`, the reference annotator's map and fixated
pixels on image *i*):

shuffled image
    The other side of the pair (annotator *b*, or the model) on other images *j ≠ i* of
    the set with the same pixel size: the next ``draws`` images after *i* in a seeded
    random cyclic order of those images; the scores are averaged over them. What remains
    of the observed score above it is specific to image *i* (Borji & Itti 2013 call its
    NSS/AUC form "shuffled" metrics).

centre bias
    One map that does not look at the image at all: the mean of every human map of the
    *other* images (leave-one-image-out, each map scaled to unit mass), or a centred
    isotropic Gaussian (``sigma_fraction`` × the shorter side). Its support is cut to the
    most salient pixels covering the mean support of one human map, so IoU compares areas
    of the same size (a mean of many maps is non-zero almost everywhere).

For each comparison kind (``human``, ``model``) and metric, per image: the mean of the
observed rows and the mean of the baseline rows; over images: their means, the
difference with a Student-t 95 % confidence interval over images, and the ratio of the
means with a paired bootstrap 95 % interval over images. :func:`layout_sentence` says in
one sentence how much of the agreement is layout.

The package holds one concept per module: :mod:`.maps` (centre-bias maps),
:mod:`.rows` (the baseline rows, for a comparison or one image), :mod:`.summary`
(observed against baseline, the layout sentence) and :mod:`.stats` (intervals over
images). Import from here: ``from gazelab.analysis.baselines import baseline_rows``.

References: Borji, A., Itti, L. (2013) State-of-the-art in visual attention modeling.
IEEE TPAMI 35(1), 185-207; Tatler, B. W. (2007) The central fixation bias in scene viewing.
J. Vision 7(14):4.
"""

from __future__ import annotations

from gazelab.analysis.baselines.maps import (
    CENTRES,
    CentreTotals,
    centre_gaussian,
    keep_top_fraction,
    leave_one_out_means,
    support_fraction,
    unit_mass,
)
from gazelab.analysis.baselines.rows import (
    BASELINES,
    baseline_rows,
    bounded_references,
    image_baseline_rows,
    partner_indices,
)
from gazelab.analysis.baselines.stats import (
    mean_ci,
    ratio_ci,
)
from gazelab.analysis.baselines.summary import (
    baseline_summary,
    layout_sentence,
)

__all__ = [
    "BASELINES",
    "CENTRES",
    "CentreTotals",
    "baseline_rows",
    "baseline_summary",
    "bounded_references",
    "centre_gaussian",
    "image_baseline_rows",
    "keep_top_fraction",
    "layout_sentence",
    "leave_one_out_means",
    "mean_ci",
    "partner_indices",
    "ratio_ci",
    "support_fraction",
    "unit_mass",
]
