"""Whole exports, as ``gazelab masks`` runs them: model masks of an image set streamed a
batch at a time (:func:`export_image_set_masks`), and human or model masks of a
project (:func:`export_project_masks`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.models.export.files import ExportError, MaskJob, export_masks, image_sha256
from gazelab.models.export.jobs import jobs_from_comparison, jobs_from_relevance
from gazelab.models.masks import HUMAN


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: its manifest, how many masks, how many were fallbacks."""

    manifest: Path
    masks: int
    fallbacks: int


def image_set_jobs(
    images: Any,
    algorithm: str,
    relevance_of: Callable[[list[int], NDArray[np.float32] | None], NDArray[np.float32]],
    *,
    settings: Any,
    n: int,
    input_shape: tuple[int, ...] | None,
    dataset: str = "",
    model: str = "",
    size: int | None = None,
    batch: int = 256,
) -> Iterator[MaskJob]:
    """Model-mask jobs for an :class:`~gazelab.models.datasets.base.ImageSet`, made batch by
    batch: ``batch`` images are decoded one at a time, hashed and (with ``input_shape``)
    turned into model input, then dropped; ``relevance_of(positions, x)`` gives their
    ``(B, S, S)`` relevance. Memory is one batch of model input and relevance, whatever the
    size of the set."""
    from gazelab.models.architectures import to_model_input

    for start in range(0, len(images), batch):
        idx = list(range(start, min(start + batch, len(images))))
        hashes: list[str] = []
        x = None if input_shape is None else np.empty((len(idx), *input_shape), np.float32)
        for j, k in enumerate(idx):
            img = images.image(k)
            hashes.append(image_sha256(img))
            if x is not None and input_shape is not None:
                x[j] = to_model_input([img], input_shape)[0]
            del img  # the decoded image (full size) is not kept past its row
        rel = relevance_of(idx, x)
        yield from jobs_from_relevance(
            [images.ids[k] for k in idx], rel, algorithm, settings=settings, n=n,
            dataset=dataset, model=model, size=size, image_hashes=hashes,
        )  # fmt: skip


def export_image_set_masks(
    model: Any,
    images: str,
    algorithm: str,
    out: str | Path,
    *,
    settings: Any,
    request: dict[str, Any],
    n: int,
    size: int | None = None,
    analyzer: str | None = None,
    cache: str | Path | None = None,
    relevance: str | Path | None = None,
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """``gazelab masks --images``: model masks for a whole image set (spec as for
    :func:`~gazelab.models.datasets.registry.open_image_set`), streamed ``batch`` images at a
    time. Relevance comes from ``relevance`` (shards of ``gazelab saliency --dataset`` for
    this model and these images) or is computed with ``analyzer`` (cached in ``cache``).
    Images over ``settings.stimulus.max_image_megapixels`` are refused before decoding."""
    from gazelab.analysis.cache import SaliencyCache, cached_relevance, model_hash
    from gazelab.models.datasets.registry import open_image_set

    if algorithm == HUMAN:
        raise ExportError("human masks come from recorded sessions: use --project/--store")
    limit = int(settings.stimulus.max_image_megapixels * 1_000_000)
    src = open_image_set(images, max_pixels=limit)
    mhash = model_hash(model)
    relevance_of: Callable[[list[int], NDArray[np.float32] | None], NDArray[np.float32]]
    if relevance is not None:  # maps written by `gazelab saliency --dataset`
        from gazelab.analysis.dataset_relevance import load_dataset_relevance

        maps = load_dataset_relevance(relevance)
        want = {"model_hash": mhash, "dataset": images}
        if analyzer:
            want["analyzer"] = analyzer
        wrong = [k for k, v in want.items() if maps.meta.get(k) != v]
        if wrong or maps.ids != src.ids:
            raise ExportError(
                f"{relevance} was written for another {', '.join(wrong) or 'image list'}"
                f" ({', '.join(f'{k}={maps.meta.get(k)!r}' for k in wrong)}); run gazelab "
                "saliency --dataset with this --model and these --images"
            )
        relevance_of = lambda idx, _x: np.stack([maps[k] for k in idx])  # noqa: E731
        input_shape = None
    else:
        store = SaliencyCache(cache) if cache else None

        def relevance_of(idx: list[int], x: NDArray[np.float32] | None) -> NDArray[np.float32]:
            assert x is not None
            return cached_relevance(model, x, analyzer or "deep_taylor", store, chunk=batch)[0]

        input_shape = tuple(int(v) for v in model.input_shape[1:])
    jobs = image_set_jobs(src, algorithm, relevance_of, settings=settings, n=n,
                          input_shape=input_shape, dataset=images, model=mhash, size=size,
                          batch=batch)  # fmt: skip
    manifest = export_masks(jobs, out, request=request, progress=progress, total=len(src))
    return ExportSummary(manifest, len(src), 0)


def export_project_masks(
    project: str | Path | None,
    algorithm: str,
    out: str | Path,
    *,
    settings: Any,
    analysis: Any,
    request: dict[str, Any],
    store: str | Path | None = None,
    model: str | Path | None = None,
    cache: str | Path | None = None,
    sessions: Sequence[int] | None = None,
    annotator: str | None = None,
    mixed: bool = False,
    size: int | None = None,
    progress: Any = None,
) -> ExportSummary:
    """``gazelab masks`` on a project: human masks from its sessions' gaze (or model masks of
    its images), after analysing it with the model (``--model`` or the project's
    ``model.keras``). ``progress(stage, done, total)``."""
    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import analyse_project, annotator_keys
    from gazelab.annotation.store import SessionStore
    from gazelab.models.architectures import load_classifier
    from gazelab.project import ProjectPaths

    paths = ProjectPaths.resolve(project, store=store, model=model, cache=cache)
    if paths.model is None:
        raise ExportError("masks need the model (--model M.keras): its relevance for model "
                          "masks and for the fallback of images without gaze")  # fmt: skip
    with SessionStore(paths.store) as db:
        if annotator:  # a mistyped name fails before the model loads
            records = [r for r in db.sessions() if sessions is None or r.id in sessions]
            known = sorted(set(annotator_keys(records).values()))
            if annotator not in known:
                where = f"sessions {list(sessions)} of " if sessions is not None else ""
                raise ExportError(f"no annotator {annotator!r} in {where}{paths.store}; its "
                                  f"annotators: {', '.join(known) or 'none yet'}")  # fmt: skip
        net = load_classifier(paths.model)
        comp = analyse_project(db, net, sessions, analysis=analysis,
                               cache=SaliencyCache(paths.cache) if paths.cache else None,
                               progress=progress)  # fmt: skip
    jobs = jobs_from_comparison(comp, algorithm, settings=settings,
                                size=size or int(net.input_shape[1]), annotator=annotator,
                                mixed=mixed, dataset=str(paths.store))  # fmt: skip
    if not jobs:
        raise ExportError("no masks to export: nobody looked at these images "
                          "(use --mixed to fall back to model masks)")  # fmt: skip
    stage = (lambda d, t: progress("masks", d, t)) if progress else None
    manifest = export_masks(jobs, out, request=request, progress=stage)
    return ExportSummary(manifest, len(jobs), sum(j.fallback for j in jobs))
