"""Commands on images and models: ``synthetic``, ``masks``, ``train``, ``prune``, ``esr``,
``transfer``."""

from __future__ import annotations

import argparse
from pathlib import Path

from gazelab.app.commands import analysis_settings, settings_of, tqdm_progress
from gazelab.errors import GazelabError
from gazelab.fileio import atomic_write, save_model


def cmd_synthetic(args: argparse.Namespace) -> int:
    """Write synthetic faces in the folder-per-class layout (+ their regions.npz)."""
    from gazelab.models.synthetic import synthetic_faces, write_folder

    faces = synthetic_faces(args.n, size=args.size, seed=args.seed, rgb=args.rgb)
    out = write_folder(faces, args.out)
    print(f"wrote {args.n} synthetic faces ({args.size}×{args.size}) to {out}/<class>/")
    return 0


def cmd_masks(args: argparse.Namespace) -> int:
    """Export masks: from a project (human or model masks of its images) or, with
    --images, model masks for a whole image set (streamed batch by batch)."""
    from gazelab.models.architectures import load_classifier
    from gazelab.models.datasets.registry import check_image_spec
    from gazelab.models.export import (
        ExportError,
        export_image_set_masks,
        export_project_masks,
    )

    settings = settings_of(args)
    request = {k: v for k, v in vars(args).items()
               if k in ("algorithm", "annotator", "mixed", "size", "n", "analyzer",
                        "point_source", "images", "sessions")}  # fmt: skip
    request["negative_fraction"] = settings.masks.negative_fraction
    progress = tqdm_progress()
    if args.images:
        if not args.model:
            raise ExportError("model masks need --model M.keras")
        check_image_spec(args.images)  # a mistyped spec fails before the model
        summary = export_image_set_masks(
            load_classifier(args.model), args.images, args.algorithm, args.out,
            settings=settings, request=request, n=args.n, size=args.size,
            analyzer=args.analyzer, cache=args.cache, relevance=args.relevance,
            progress=lambda d, t: progress("masks", d, t),
        )  # fmt: skip
    else:
        summary = export_project_masks(
            args.project, args.algorithm, args.out, settings=settings,
            analysis=analysis_settings(args), request=request, store=args.store,
            model=args.model, cache=args.cache, sessions=args.sessions,
            annotator=args.annotator, mixed=args.mixed, size=args.size, progress=progress,
        )  # fmt: skip
    print(f"{summary.masks} {args.algorithm} masks ({summary.fallbacks} fallbacks) -> "
          f"{summary.manifest.parent}")  # fmt: skip
    return 0


def check_run_folder(out: Path, config_text: str) -> None:
    """Refuse to train into a folder that holds the results of another config (a model, a
    run record or a backup would be replaced). The same config again is allowed: an
    interrupted run resumes from its backup, a finished one is trained again to the same
    result. A folder with no results (a run that failed before its first epoch) is free."""
    if not out.exists():
        return
    if not out.is_dir():
        raise GazelabError(f"--out {out} is a file; name a folder for the run")
    results = [*out.rglob("*.keras"), *out.rglob("run.json"), *out.rglob("backup")]
    if not results:
        return
    saved = out / "config.toml"
    if not saved.is_file():
        raise GazelabError(f"{out} holds results that are not from this config ({results[0]});"
                           " choose another --out")  # fmt: skip
    if saved.read_bytes() != config_text.encode("utf-8"):  # bytes: CRLF configs compare too
        raise GazelabError(
            f"{out} holds a run of another config ({saved} differs); choose another "
            "--out, or move that run away first"
        )


def cmd_train(args: argparse.Namespace) -> int:
    """Train the Trainer, or run the Trainee experiment, from a run config."""
    from gazelab.models.training import (
        load_run_config,
        load_training_data,
        masked_training_images,
        run_experiment,
        train_run,
    )

    cfg = load_run_config(args.config, args.out)
    check_run_folder(cfg.out, cfg.text)
    t = cfg.settings.training
    print(f"loading {cfg.images} at {t.input_size} px …")
    data = load_training_data(cfg.images, t.input_size, val_fraction=cfg.val_fraction, seed=t.seed)
    print(f"{len(data.ids_train)} training, {len(data.ids_val)} validation images; "
          f"{t.architecture}, {t.epochs} epochs, strategy {t.strategy}")  # fmt: skip
    cfg.out.mkdir(parents=True, exist_ok=True)
    atomic_write(cfg.out / "config.toml", cfg.text.encode("utf-8"))  # as given, CRLF too
    atomic_write(cfg.out / "settings.toml", cfg.settings.to_toml())
    if args.role == "trainer":
        r = train_run(t, data, name="trainer", out=cfg.out, progress=print)
        print(f"best validation macro-F1 {r.best_f1:.4f}; model: {cfg.out / 'best.keras'}")
        return 0
    if not cfg.masks:
        from gazelab.models.training import TrainingError

        raise TrainingError(
            f"{cfg.source}: the Trainee needs [trainee.masks] (name = export folder)"
        )
    masked = masked_training_images(cfg, data)
    rows = run_experiment(t, data, masked, cfg.out, progress=print)
    print((cfg.out / "summary.md").read_text())
    print(f"{len(rows)} runs: {cfg.out}")
    return 0


def pruned_model_path(model: str | Path, out: str | Path | None) -> Path:
    """Where ``prune`` saves: ``--out`` or ``<model>-pruned.keras``. Refused before any work:
    a name without ``.keras`` (only that format is loaded again), the input model itself,
    and a folder."""
    path = Path(out) if out else Path(model).with_name(Path(model).stem + "-pruned.keras")
    if path.suffix != ".keras":
        raise GazelabError(f"--out {path} must end in .keras (the one format gazelab loads)")
    if path.is_dir():
        raise GazelabError(f"--out {path} is a folder; name a .keras file")
    if path.exists() and Path(model).exists() and path.samefile(model):
        raise GazelabError(f"--out {path} is the input model; name another file")
    return path


def cmd_prune(args: argparse.Namespace) -> int:
    """Distinctiveness pruning of the last (or a named) conv layer's feature maps."""
    import json

    import numpy as np

    from gazelab.models.architectures import load_classifier, to_model_input
    from gazelab.models.datasets.registry import check_image_spec, open_image_set
    from gazelab.models.pruning import prune

    check_image_spec(args.images)  # a mistyped spec fails before the model
    out = pruned_model_path(args.model, args.out)
    model = load_classifier(args.model)
    src = open_image_set(args.images)
    ids = src.ids[: args.limit] if args.limit else src.ids
    x = to_model_input([src.image(i) for i in ids], model.input_shape[1:])
    y = np.array([src.labels[i] for i in ids])
    pruned, res = prune(model, x, y, similar_deg=args.similar,
                        complementary_deg=args.complementary, layer_name=args.layer)  # fmt: skip
    save_model(pruned, out)
    summary = {**res.summary(), "model": str(args.model), "images": args.images,
               "n_images": len(ids), "merged_pairs": {str(k): v for k, v in res.plan.merged.items()},
               "complementary_maps": list(res.plan.complementary), "pruned_model": str(out)}  # fmt: skip
    atomic_write(out.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    print(f"{res.plan.n_maps} maps: {len(res.plan.merged)} merged (< {args.similar}°), "
          f"{len(res.plan.complementary)} removed as complementary (> {args.complementary}°); "
          f"accuracy {res.accuracy_before:.4f} -> {res.accuracy_after:.4f}; parameters "
          f"{res.parameters_before} -> {res.parameters_after}; model: {out}")  # fmt: skip
    return 0


def cmd_esr(args: argparse.Namespace) -> int:
    """Ensembles with shared representations: run an ESR protocol from a config."""
    from gazelab.models.esr_protocols import load_esr_config, run_esr_experiment

    cfg = load_esr_config(args.config)
    out = Path(args.out) if args.out else cfg.folder / "runs" / Path(args.config).stem
    run_esr_experiment(cfg, out, progress=print)
    print((out / "summary.md").read_text())
    print(f"results: {out / 'results.csv'}; Grad-CAM per branch: {out}/trial-*/gradcam.png")
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    """Memory integrity across datasets: every fine-tuning strategy, source and target test."""
    from gazelab.models.transfer import load_transfer_config, run_transfer

    cfg = load_transfer_config(args.config)
    out = Path(args.out) if args.out else Path(args.config).parent / "runs" / Path(args.config).stem
    run_transfer(cfg, out, progress=print)
    print((out / "table.md").read_text())
    print(f"table: {out / 'table.csv'}")
    return 0
