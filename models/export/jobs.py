"""Mask jobs: the masks to export, from a model's relevance maps
(:func:`jobs_from_relevance`) or from an analysed project's gaze
(:func:`jobs_from_comparison`), each computed only if it is not on disk yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.models.export.apply import resize_mask
from gazelab.models.export.files import ExportError, MaskJob, image_sha256
from gazelab.models.masks import HUMAN, MODEL_MASKS, MaskParameters, model_mask


def _fit(mask: NDArray[np.bool_], size: int | None) -> NDArray[np.bool_]:
    return mask if size is None or mask.shape == (size, size) else resize_mask(mask, (size, size))


def relevance_kernel(settings: Any, rel_size: int) -> tuple[float, float]:
    """The heatmap kernel (docs/algorithms.md#heatmaps) in relevance-map pixels, for an image that
    fills the stimulus square
    and is resized to ``rel_size`` for the model: stimulus px × rel_size / square_px."""
    from gazelab.gaze.heatmaps import HeatmapKernel

    k = HeatmapKernel.from_geometry(settings.display, settings.heatmap.span_deg,
                                    settings.heatmap.fwhm_fraction)  # fmt: skip
    f = rel_size / settings.stimulus.square_px
    return k.c * f, k.radius * f


def jobs_from_relevance(
    ids: Sequence[str],
    relevance: NDArray[np.float32],
    algorithm: str,
    *,
    settings: Any,
    n: int,
    dataset: str = "",
    model: str = "",
    size: int | None = None,
    image_hashes: Sequence[str] | None = None,
) -> list[MaskJob]:
    """Model masks for a whole dataset (no gaze needed)."""
    if algorithm not in MODEL_MASKS:
        raise ExportError(f"{algorithm!r} is not a model mask; use {', '.join(MODEL_MASKS)}")
    c, r = relevance_kernel(settings, int(relevance.shape[-1]))
    mp = MaskParameters(settings.masks.negative_fraction, n, c, r)
    params = MODEL_MASKS[algorithm].recorded(mp)

    def job(k: int) -> MaskJob:
        return MaskJob(
            ids[k],
            lambda: _fit(model_mask(relevance[k], algorithm, mp), size),
            algorithm, dataset, params, "", model, False,
            image_hashes[k] if image_hashes else "",
        )  # fmt: skip

    return [job(k) for k in range(len(ids))]


def jobs_from_comparison(
    comp: Any,
    algorithm: str,
    *,
    settings: Any,
    size: int,
    annotator: str | None = None,
    mixed: bool = False,
    dataset: str = "",
) -> list[MaskJob]:
    """Masks for the images of an analysed project (:class:`~gazelab.analysis.compare.Comparison`).

    ``human``: the heatmap of the annotator's fixations (``annotator=None``: all annotators'
    fixations pooled), at ``size``×``size``. Images nobody looked at are skipped, or with
    ``mixed`` fall back to the model's perceptive mask (recorded as ``fallback``)."""
    from gazelab.models.masks import human_mask_from_fixations

    jobs: list[MaskJob] = []
    for im in comp.images:
        rel = im.relevance
        shape = (int(im.image.shape[0]), int(im.image.shape[1]))
        c_rel, r_rel = relevance_kernel(settings, int(rel.shape[-1]))
        fallback_params = MaskParameters(0.0, comp.n_points, c_rel, r_rel)
        ihash = image_sha256(im.image)
        if algorithm != HUMAN:
            jobs += jobs_from_relevance([im.image_id], rel[None], algorithm, settings=settings,
                                        n=comp.n_points, dataset=dataset, model=comp.model_hash,
                                        size=size, image_hashes=[ihash])  # fmt: skip
            continue
        who = [annotator] if annotator else list(im.humans)
        pts = [im.humans[a].points for a in who if a in im.humans]
        points = np.concatenate(pts) if pts else np.zeros((0, 2))
        if len(points):
            c_img, r_img = im.kernel_px

            def compute(points=points, shape=shape, c_img=c_img, r_img=r_img):  # type: ignore[no-untyped-def]
                return human_mask_from_fixations(points, shape, (size, size), c_img, r_img)

            jobs.append(MaskJob(im.image_id, compute, HUMAN, dataset,
                                {"point_source": comp.analysis.point_source,
                                 "points": int(len(points))},
                                annotator or "+".join(who), "", False, ihash))  # fmt: skip
        elif mixed:

            def fallback(rel=rel, p=fallback_params):  # type: ignore[no-untyped-def]
                return _fit(model_mask(rel, "perceptive", p), size)

            jobs.append(MaskJob(im.image_id, fallback, "perceptive", dataset,
                                MODEL_MASKS["perceptive"].recorded(fallback_params),
                                annotator or "", comp.model_hash, True, ihash))  # fmt: skip
    return jobs
