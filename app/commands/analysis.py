"""Commands of the analysis: ``saliency`` (relevance maps), ``compare`` (gaze vs saliency
report) and ``view`` (the overlay viewer)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gazelab.app.commands import analysis_settings, max_pixels, settings_of, tqdm_progress

REPORT_FIGURES = 24
"""Images drawn in a compare report's figures (their heatmaps are kept)."""


def cmd_saliency(args: argparse.Namespace) -> int:
    """Relevance maps of a model for a set of images (cached), as NPZ and overlay PNGs."""
    import numpy as np
    from PIL import Image

    from gazelab.analysis.cache import SaliencyCache, cached_relevance
    from gazelab.analysis.saliency import SaliencyError
    from gazelab.fileio import atomic_open, safe_filename
    from gazelab.models.architectures import load_classifier, to_model_input
    from gazelab.models.datasets.registry import check_image_spec, open_image_set

    Path(args.out).mkdir(parents=True, exist_ok=True)  # a bad --out fails before the work
    check_image_spec(args.images or args.dataset)  # a mistyped spec fails before the model
    model = load_classifier(args.model)
    if args.dataset:
        return saliency_dataset(args, model)
    if not args.images:
        raise SaliencyError("name the images: --images SPEC (small sets, one NPZ) or "
                            "--dataset SPEC (whole datasets, resumable shards)")  # fmt: skip
    src = open_image_set(args.images, max_pixels=max_pixels(args))
    ids = src.ids[: args.limit] if args.limit else src.ids
    # one image decoded at a time: only the (small) model input of each is kept
    x = np.concatenate([to_model_input([src.image(k)], model.input_shape[1:])
                        for k in range(len(ids))])  # fmt: skip
    cache = SaliencyCache(args.cache) if args.cache else None
    progress = tqdm_progress()
    rel, computed = cached_relevance(
        model, x, args.analyzer, cache, batch_size=args.batch_size,
        progress=lambda d, t: progress("saliency", d, t),
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / f"relevance_{args.analyzer}.npz") as f:
        np.savez_compressed(
            f, **{iid: r.astype(np.float16) for iid, r in zip(ids, rel, strict=True)}
        )
    if args.png:
        from gazelab.analysis.overlays import relevance_overlay

        for k, (iid, r) in enumerate(zip(ids, rel, strict=True)):
            pic = relevance_overlay(np.asarray(src.image(k)), r, title=f"{iid}: {args.analyzer}")
            # ids are paths (``happy/x.png``, even ``../x``): the name must stay inside --out
            with atomic_open(out / f"{safe_filename(iid)}_{args.analyzer}.png") as f:
                Image.fromarray(pic).save(f, format="PNG")
    print(f"{len(ids)} relevance maps ({computed} computed, {len(ids) - computed} from the "
          f"cache) -> {out / f'relevance_{args.analyzer}.npz'}")  # fmt: skip
    return 0


def saliency_dataset(args: argparse.Namespace, model) -> int:  # type: ignore[no-untyped-def]
    """``saliency --dataset``: stream a whole dataset into float16 NPZ shards (resumable)."""
    from gazelab.analysis.dataset_relevance import explain_dataset, worker_from_tf_config
    from gazelab.models.datasets.registry import open_image_set

    src = open_image_set(args.dataset)
    worker = getattr(args, "worker", None) or worker_from_tf_config()
    progress = tqdm_progress()
    maps = explain_dataset(
        model, src, args.out, args.analyzer, shard_size=args.shard_size,
        batch_size=args.batch_size, limit=args.limit, worker=worker,
        progress=lambda d, t: progress("saliency", d, t),
    )  # fmt: skip
    if maps is None:
        assert worker is not None
        print(f"worker {worker[0]}/{worker[1]}: its shards are written to {args.out}; the run is "
              "complete when every worker has finished (the last one writes index.csv)")  # fmt: skip
        return 0
    print(f"{len(maps)} relevance maps ({args.analyzer}) in {maps.meta['n_shards']} shards "
          f"-> {Path(args.out) / 'index.csv'}")  # fmt: skip
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Human gaze vs model saliency: the report (CSV, JSON, Markdown, figures)."""
    from gazelab.analysis.aoi import read_aoi_file, unmatched_aoi_images, write_aoi_csv
    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import AnalysisError, analyse_project, summaries
    from gazelab.analysis.report import write_report
    from gazelab.annotation.store import SessionStore
    from gazelab.models.architectures import load_classifier
    from gazelab.project import ProjectPaths

    paths = ProjectPaths.resolve(args.project, store=args.store, model=args.model, cache=args.cache)
    aoi_map = read_aoi_file(args.aois) if args.aois else None  # a bad file fails before the work
    settings = settings_of(args)  # so does a bad --config: read once, before the model loads
    if paths.model is None:
        raise AnalysisError("no model: give --model M.keras (or put model.keras in the project)")
    model = load_classifier(paths.model)
    sessions = args.sessions
    with SessionStore(paths.store) as store:
        comp = analyse_project(
            store,
            model,
            sessions,
            analysis=analysis_settings(args, settings),
            cache=SaliencyCache(paths.cache) if paths.cache else None,
            progress=tqdm_progress(),
            quality=settings.quality,
            keep_maps=REPORT_FIGURES,  # only the maps the report draws: memory stays flat
        )
    report = Path(args.report or (paths.store.parent / "report"))
    md = write_report(comp, report, max_image_figures=REPORT_FIGURES)
    write_aoi_csv(comp, report, aoi_map)
    unmatched = unmatched_aoi_images(comp, aoi_map) if aoi_map else []
    if unmatched:
        print(f"note: {args.aois} names {len(unmatched)} image(s) this project does not hold "
              f"(first: {', '.join(unmatched[:3])}); their AOIs are not used")  # fmt: skip
    summ = summaries(comp)
    print(f"{len(comp.images)} images, annotators {', '.join(comp.annotators)}; n = "
          f"{comp.n_points} (fixation {comp.analysis.point_source})")  # fmt: skip
    for r in summ["by_annotator"]:
        print(
            f"  {r['annotator']:>10} vs {r['versus']:<6} IoU {r['iou_mean']:.3f} ± "
            f"{r['iou_sd']:.3f}  Spearman {r['spearman_mean']:.3f}  "
            f"cosine distance {r['cosine_distance_mean']:.3f}"
        )
    if summ.get("layout_note"):
        print(f"  baselines: {summ['layout_note']}")
    print(f"report: {md}")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    """Open the overlay viewer on a project."""
    from gazelab.app.viewer import run_viewer

    settings = settings_of(args)  # [quality] limits leave out the trials compare leaves out
    return run_viewer(
        args.project, store=args.store, model=args.model, cache=args.cache,
        analysis=analysis_settings(args, settings), screenshot=args.screenshot,
        aois=args.aois, quality=settings.quality,
    )  # fmt: skip
