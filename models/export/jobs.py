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


Kernel = tuple[tuple[float, float], tuple[float, float, float, float] | None]
"""A human heatmap kernel in image px: ``((c, radius), (c_x, c_y, r_x, r_y) or None)``."""


def kernel_record(kernel: Kernel) -> tuple[float, float, float, float]:
    """``(c_x, c_y, r_x, r_y)`` of a kernel, rounded to 4 decimals for a manifest."""
    (c, r), xy = kernel
    return tuple(round(float(v), 4) for v in (xy or (c, c, r, r)))  # type: ignore[return-value]


def kernel_groups(gazes: Sequence[Any], im: Any) -> list[tuple[Kernel, NDArray[np.float64]]]:
    """The fixation points of ``gazes`` (annotators' :class:`AnnotatorGaze` on one image)
    grouped by their trial's kernel, in order of first use: one group in the common case
    (every trial on the same screen and rectangle). A gaze without a kernel takes the
    image's (``im.kernel_px``, ``im.kernel_xy``)."""
    groups: dict[Kernel, list[NDArray[np.float64]]] = {}
    for g in gazes:
        if g.kernel_px is None:
            key: Kernel = (tuple(im.kernel_px), getattr(im, "kernel_xy", None))
        else:
            key = (tuple(g.kernel_px), g.kernel_xy)
        groups.setdefault(key, []).append(np.asarray(g.points, dtype=np.float64).reshape(-1, 2))
    return [(k, np.concatenate(v)) for k, v in groups.items() if sum(len(p) for p in v)]


def group_mask(
    groups: Sequence[tuple[Kernel, NDArray[np.float64]]],
    image_shape: tuple[int, int],
    out_shape: tuple[int, int],
) -> NDArray[np.bool_]:
    """The human mask of points grouped by kernel (:func:`kernel_groups`): the union of each
    group's heatmap support, i.e. the support of their sum (every term is ≥ 0). One group
    is :func:`~gazelab.models.masks.human_mask_from_fixations` itself."""
    from gazelab.models.masks import human_mask_from_fixations

    out: NDArray[np.bool_] | None = None
    for ((c, r), xy), points in groups:
        if xy is None:
            m = human_mask_from_fixations(points, image_shape, out_shape, c, r)
        else:
            cx, cy, rx, ry = xy
            m = human_mask_from_fixations(points, image_shape, out_shape, cx, rx,
                                          c_y_img=cy, radius_y_img=ry)  # fmt: skip
        out = m if out is None else out | m
    if out is None:
        return np.zeros(out_shape, dtype=bool)
    return out


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
        groups = kernel_groups([im.humans[a] for a in who if a in im.humans], im)
        points = np.concatenate([p for _, p in groups]) if groups else np.zeros((0, 2))
        if len(points):

            def compute(groups=groups, shape=shape):  # type: ignore[no-untyped-def]
                return group_mask(groups, shape, (size, size))

            params: dict[str, Any] = {"point_source": comp.analysis.point_source,
                                      "points": int(len(points))}  # fmt: skip
            if len(groups) > 1 or groups[0][0][1] is not None:  # not the one circle
                params["kernels_image_px"] = [list(kernel_record(k)) for k, _ in groups]
            jobs.append(MaskJob(im.image_id, compute, HUMAN, dataset, params,
                                annotator or "+".join(who), "", False, ihash))  # fmt: skip
        elif mixed:

            def fallback(rel=rel, p=fallback_params):  # type: ignore[no-untyped-def]
                return _fit(model_mask(rel, "perceptive", p), size)

            jobs.append(MaskJob(im.image_id, fallback, "perceptive", dataset,
                                MODEL_MASKS["perceptive"].recorded(fallback_params),
                                annotator or "", comp.model_hash, True, ihash))  # fmt: skip
    return jobs
