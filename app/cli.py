"""The ``gazelab`` command line: one entry point, one sub-command per job (DESIGN "CLI").

Every sub-command imports what it needs inside its handler, so ``gazelab
--help`` and the tracker/annotation commands start without TensorFlow or Qt.
Errors a user can fix (bad settings, a wrong dataset layout, an unknown
session) are printed as one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from gazelab import __version__
from gazelab.analysis.saliency import ANALYZERS as ANALYZER_CHOICES
from gazelab.app.commands.heatmaps import cmd_heatmaps
from gazelab.gaze.trackers.registry import tracker_usage
from gazelab.models.datasets.registry import layout_usage, layouts
from gazelab.models.masks import ALGORITHMS as MASK_ALGORITHMS

Handler = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace):
    from gazelab.settings import Settings, load_settings

    return load_settings(args.config) if getattr(args, "config", None) else Settings()


# -- handlers ------------------------------------------------------------------------------------
def cmd_settings(args: argparse.Namespace) -> int:
    """Print the settings (defaults, or a file's after validation) as TOML."""
    print(_settings(args).to_toml(), end="")
    return 0


def cmd_synthetic(args: argparse.Namespace) -> int:
    from gazelab.models.synthetic import synthetic_faces, write_folder

    faces = synthetic_faces(args.n, size=args.size, seed=args.seed, rgb=args.rgb)
    out = write_folder(faces, args.out)
    print(f"wrote {args.n} synthetic faces ({args.size}×{args.size}) to {out}/<class>/")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gazelab.annotation.bids import export_session
    from gazelab.annotation.store import SessionStore

    with SessionStore(args.store) as store:
        ids = [args.session] if args.session is not None else [s.id for s in store.sessions()]
        for sid in ids:
            paths = export_session(store, sid, args.out)
            print(f"session {sid}: {paths['gaze'].parent}")
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    """List a store's sessions: participant, date, progress, data quality (issue #18)."""
    from gazelab.annotation.sessions import list_sessions, sessions_csv, sessions_table
    from gazelab.annotation.store import SessionStore

    with SessionStore(args.store) as store:
        rows = list_sessions(store)
    print(sessions_csv(rows) if args.csv else sessions_table(rows), end="")
    return 0


def cmd_simulate_tracker(args: argparse.Namespace) -> int:
    """A tracker without hardware: an Eye Tribe server, a GazePoint Open Gaze server, or an
    LSL gaze stream, each driven by the synthetic observer (or a replay file)."""
    from gazelab.gaze.trackers.simulator import EyeTribeSimulator, ReplaySource

    source = ReplaySource(args.replay) if args.replay else None
    what = f"replay of {args.replay}" if args.replay else "synthetic observer"
    sim: Any
    if args.protocol == "gazepoint":
        from gazelab.gaze.trackers.gazepoint import DEFAULT_PORT
        from gazelab.gaze.trackers.gazepoint_sim import GazePointSimulator

        sim = GazePointSimulator(args.host, DEFAULT_PORT if args.port is None else args.port,
                                 rate_hz=args.rate, source=source, seed=args.seed).start()  # fmt: skip
        print(f"GazePoint Open Gaze simulator on {args.host}:{sim.port} at {args.rate} Hz "
              f"({what}); Ctrl-C stops")  # fmt: skip
    elif args.protocol == "lsl":
        from gazelab.gaze.trackers.lsl_sim import LSLGazeOutlet

        sim = LSLGazeOutlet(source, rate_hz=args.rate, seed=args.seed,
                            wait_for_consumer=False).start()  # fmt: skip
        print(f"LSL gaze stream {sim.name!r} (type Gaze) at {args.rate} Hz ({what}); "
              f"annotate with --tracker lsl:name={sim.name}; Ctrl-C stops")  # fmt: skip
    else:
        from gazelab.gaze.trackers.protocol import DEFAULT_PORT

        sim = EyeTribeSimulator(
            args.host, DEFAULT_PORT if args.port is None else args.port, rate_hz=args.rate,
            source=source, seed=args.seed, heartbeat_ms=args.heartbeat_ms,
        ).start()  # fmt: skip
        print(f"Eye Tribe simulator on {args.host}:{sim.port} at {args.rate} Hz ({what}); "
              "Ctrl-C stops")  # fmt: skip
    sim.serve_forever()
    return 0


def cmd_annotate(args: argparse.Namespace) -> int:
    """Run (or resume) an annotation session in the full-screen window."""
    from gazelab.annotation.session import config_from_options

    images = args.images
    if args.dataset:
        images = f"{args.dataset[0]}:{args.dataset[1]}"
    config = config_from_options(
        store=args.store,
        participant=args.participant or "",
        images=images,
        tracker=args.tracker,
        voice=args.voice,
        diagonal_in=args.screen_in,
        resolution=args.resolution,
        distance_cm=args.distance_cm,
        settings=_settings(args),
        resume=args.resume,
    )
    from gazelab.app.annotate import Autopilot, run_annotation
    from gazelab.app.qt import application

    application()
    if not args.no_dialog:
        from gazelab.app.setup_dialog import SetupDialog

        dialog = SetupDialog(config)
        if not dialog.exec() or dialog.config is None:
            print("cancelled", file=sys.stderr)
            return 1
        config = dialog.config
    else:
        config.check()
    autopilot = Autopilot(view_s=args.autopilot) if args.autopilot is not None else None
    sid = run_annotation(
        config,
        windowed=args.windowed,
        autopilot=autopilot,
        skip_calibration=args.skip_calibration,
    )
    print(f"session {sid} in {config.store}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gazelab.app.demo import run_demo

    run_demo(Path(args.out), n_images=args.images, seed=args.seed, quick=args.quick)
    return 0


def _tqdm_progress():  # type: ignore[no-untyped-def]
    """A (stage, done, total) callback drawing one tqdm bar per stage."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>8}", unit="img", leave=True,
                                     disable=None)  # fmt: skip  # no bars into a pipe or log
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return progress


def _analysis_settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from gazelab.settings import AnalysisSettings

    base = _settings(args).analysis
    return AnalysisSettings(
        analyzer=args.analyzer or base.analyzer,
        point_source=args.point_source or base.point_source,
    )


def cmd_saliency(args: argparse.Namespace) -> int:
    """Relevance maps of a model for a set of images (cached), as NPZ and overlay PNGs."""
    import numpy as np
    from PIL import Image

    from gazelab.analysis.cache import SaliencyCache, cached_relevance
    from gazelab.analysis.saliency import SaliencyError
    from gazelab.fileio import safe_filename
    from gazelab.models.architectures import load_classifier, to_model_input
    from gazelab.models.datasets.library import load_image_set
    from gazelab.models.datasets.registry import check_image_spec

    Path(args.out).mkdir(parents=True, exist_ok=True)  # a bad --out fails before the work
    check_image_spec(args.images or args.dataset)  # a mistyped spec fails before the model
    model = load_classifier(args.model)
    if args.dataset:
        return _saliency_dataset(args, model)
    if not args.images:
        raise SaliencyError("name the images: --images SPEC (small sets, one NPZ) or "
                            "--dataset SPEC (whole datasets, resumable shards)")  # fmt: skip
    limit = int(_settings(args).stimulus.max_image_megapixels * 1_000_000)
    src = load_image_set(args.images, max_pixels=limit)
    ids = src.ids[: args.limit] if args.limit else src.ids
    # one image decoded at a time: only the (small) model input of each is kept
    x = np.concatenate([to_model_input([src.image(k)], model.input_shape[1:])
                        for k in range(len(ids))])  # fmt: skip
    cache = SaliencyCache(args.cache) if args.cache else None
    progress = _tqdm_progress()
    rel, computed = cached_relevance(
        model, x, args.analyzer, cache, batch_size=args.batch_size,
        progress=lambda d, t: progress("saliency", d, t),
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / f"relevance_{args.analyzer}.npz",
        **{iid: r.astype(np.float16) for iid, r in zip(ids, rel, strict=True)},
    )
    if args.png:
        for iid, r in zip(ids, rel, strict=True):
            peak = float(np.abs(r).max()) or 1.0
            grey = np.clip(np.abs(r) / peak * 255, 0, 255).astype(np.uint8)
            # ids are paths (``happy/x.png``, even ``../x``): the name must stay inside --out
            Image.fromarray(grey).save(out / f"{safe_filename(iid)}_{args.analyzer}.png")
    print(f"{len(ids)} relevance maps ({computed} computed, {len(ids) - computed} from the "
          f"cache) -> {out / f'relevance_{args.analyzer}.npz'}")  # fmt: skip
    return 0


def _saliency_dataset(args: argparse.Namespace, model) -> int:  # type: ignore[no-untyped-def]
    """``saliency --dataset``: stream a whole dataset into float16 NPZ shards (resumable)."""
    from gazelab.analysis.dataset_relevance import explain_dataset
    from gazelab.annotation.session import open_image_source

    src = open_image_source(args.dataset)
    progress = _tqdm_progress()
    maps = explain_dataset(
        model, src, args.out, args.analyzer, shard_size=args.shard_size,
        batch_size=args.batch_size, limit=args.limit,
        progress=lambda d, t: progress("saliency", d, t),
    )  # fmt: skip
    print(f"{len(maps)} relevance maps ({args.analyzer}) in {maps.meta['n_shards']} shards "
          f"-> {Path(args.out) / 'index.csv'}")  # fmt: skip
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Human gaze vs model saliency: the report (CSV, JSON, Markdown, figures)."""
    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import AnalysisError, analyse_project, summaries
    from gazelab.analysis.report import write_report
    from gazelab.annotation.store import SessionStore
    from gazelab.models.architectures import load_classifier
    from gazelab.project import ProjectPaths

    paths = ProjectPaths.resolve(args.project, store=args.store, model=args.model, cache=args.cache)
    if paths.model is None:
        raise AnalysisError("no model: give --model M.keras (or put model.keras in the project)")
    model = load_classifier(paths.model)
    sessions = args.sessions
    with SessionStore(paths.store) as store:
        comp = analyse_project(
            store,
            model,
            sessions,
            analysis=_analysis_settings(args),
            cache=SaliencyCache(paths.cache) if paths.cache else None,
            progress=_tqdm_progress(),
        )
    report = Path(args.report or (paths.store.parent / "report"))
    md = write_report(comp, report)
    summ = summaries(comp)
    print(f"{len(comp.images)} images, annotators {', '.join(comp.annotators)}; n = "
          f"{comp.n_points} (fixation {comp.analysis.point_source})")  # fmt: skip
    for r in summ["by_annotator"]:
        print(
            f"  {r['annotator']:>10} vs {r['versus']:<6} IoU {r['iou_mean']:.3f} ± "
            f"{r['iou_sd']:.3f}  Spearman {r['spearman_mean']:.3f}  "
            f"cosine distance {r['cosine_distance_mean']:.3f}"
        )
    print(f"report: {md}")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    """Open the overlay viewer on a project."""
    from gazelab.app.viewer import run_viewer

    return run_viewer(
        args.project, store=args.store, model=args.model, cache=args.cache,
        analysis=_analysis_settings(args), screenshot=args.screenshot,
    )  # fmt: skip


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

    settings = _settings(args)
    request = {k: v for k, v in vars(args).items()
               if k in ("algorithm", "annotator", "mixed", "size", "n", "analyzer",
                        "point_source", "images", "sessions")}  # fmt: skip
    request["negative_fraction"] = settings.masks.negative_fraction
    progress = _tqdm_progress()
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
            analysis=_analysis_settings(args), request=request, store=args.store,
            model=args.model, cache=args.cache, sessions=args.sessions,
            annotator=args.annotator, mixed=args.mixed, size=args.size, progress=progress,
        )  # fmt: skip
    print(f"{summary.masks} {args.algorithm} masks ({summary.fallbacks} fallbacks) -> "
          f"{summary.manifest.parent}")  # fmt: skip
    return 0


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
    t = cfg.settings.training
    print(f"loading {cfg.images} at {t.input_size} px …")
    data = load_training_data(cfg.images, t.input_size, val_fraction=cfg.val_fraction, seed=t.seed)
    print(f"{len(data.ids_train)} training, {len(data.ids_val)} validation images; "
          f"{t.architecture}, {t.epochs} epochs, strategy {t.strategy}")  # fmt: skip
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "config.toml").write_text(cfg.text)
    (cfg.out / "settings.toml").write_text(cfg.settings.to_toml())
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


def cmd_prune(args: argparse.Namespace) -> int:
    """Distinctiveness pruning of the last (or a named) conv layer's feature maps."""
    import json

    import numpy as np

    from gazelab.annotation.session import open_image_source
    from gazelab.models.architectures import load_classifier, to_model_input
    from gazelab.models.datasets.registry import check_image_spec
    from gazelab.models.pruning import prune

    check_image_spec(args.images)  # a mistyped spec fails before the model
    model = load_classifier(args.model)
    src = open_image_source(args.images)
    ids = src.ids[: args.limit] if args.limit else src.ids
    x = to_model_input([src.image(i) for i in ids], model.input_shape[1:])
    y = np.array([src.labels[i] for i in ids])
    pruned, res = prune(model, x, y, similar_deg=args.similar,
                        complementary_deg=args.complementary, layer_name=args.layer)  # fmt: skip
    out = Path(args.out or Path(args.model).with_name(Path(args.model).stem + "-pruned.keras"))
    pruned.save(out)
    summary = {**res.summary(), "model": str(args.model), "images": args.images,
               "n_images": len(ids), "merged_pairs": {str(k): v for k, v in res.plan.merged.items()},
               "complementary_maps": list(res.plan.complementary), "pruned_model": str(out)}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
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


# -- parser --------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (what was wrong, where to look), exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def _count(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in ``lo..hi``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < lo or (hi is not None and value > hi):
            span = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{value} is out of range ({span})")
        return value

    return parse


def _number(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse type: a finite number in ``lo..hi``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is out of range ({lo:g}..{hi:g})")
        return value

    return parse


def _out_folder(text: str) -> str:
    """An argparse type: an output folder, existing or not, but not an existing file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the output folder name is empty")
    try:
        is_file = Path(text).exists() and not Path(text).is_dir()
    except OSError as exc:  # e.g. a name too long for the file system
        raise argparse.ArgumentTypeError(_one_line(exc)) from None
    if is_file:
        raise argparse.ArgumentTypeError(f"{text} is a file; name a folder (new or existing)")
    return text


def _session_ids(text: str) -> list[int]:
    """An argparse type: comma-separated session ids, e.g. ``1,2,5``."""
    try:
        ids = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of session ids (e.g. 1,2,5)"
        ) from None
    if any(i < 1 for i in ids):
        raise argparse.ArgumentTypeError(f"session ids start at 1 (got {text!r})")
    return ids


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gazelab",
        description="Eye-tracking studies of facial-expression recognition: run annotation "
        "sessions, compare gaze with model saliency, export human masks, train with masks.",
    )
    parser.add_argument("--version", action="version", version=f"gazelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    p = add("demo", cmd_demo, "run the whole product on synthetic faces and a simulated Eye Tribe")
    p.add_argument(
        "--out", type=_out_folder, default="demo-out", help="output folder (default: demo-out)"
    )
    p.add_argument("--images", type=_count(1, 10_000), default=8,
                   help="images per session (default: 8)")  # fmt: skip
    p.add_argument("--seed", type=_count(0, 2**32 - 1), default=0, help="random seed (default: 0)")
    p.add_argument("--quick", action="store_true", help="smallest sizes, for tests")

    p = add(
        "annotate",
        cmd_annotate,
        "run or resume an annotation session (full screen: calibration, blank, cross, image,"
        " spoken or typed labels)",
    )
    p.add_argument("--store", default="study.sqlite", help="project store (default: study.sqlite)")
    p.add_argument("--participant", help="pseudonym, e.g. P01 (asked in the dialog if missing)")
    p.add_argument(
        "--images",
        default="synthetic:8:0",
        help=f"image spec (default synthetic:8:0): {layout_usage()}",
    )
    p.add_argument("--dataset", nargs=2, metavar=("LAYOUT", "PATH"),
                   help=f"e.g. --dataset ck+ DIR; LAYOUT: {', '.join(layouts())}")  # fmt: skip
    p.add_argument("--tracker", default="sim", help=f"default sim; one of {tracker_usage()}")
    p.add_argument("--voice", default="keys", help="keys (default), default, or vosk:MODEL_DIR")
    p.add_argument("--screen-in", type=_number(5, 200),
                   help='screen diagonal in inches (default 27")')  # fmt: skip
    p.add_argument("--resolution", help="screen resolution WIDTHxHEIGHT (default 2560x1440)")
    p.add_argument("--distance-cm", type=_number(10, 1000),
                   help="eye-to-screen distance (default 70 cm)")  # fmt: skip
    p.add_argument("--config", help="settings TOML (timings, stimulus, calibration points ...)")
    p.add_argument("--resume", type=_count(1), metavar="SESSION", help="resume this session id")
    p.add_argument("--no-dialog", action="store_true", help="start without the set-up dialog")
    p.add_argument("--windowed", action="store_true", help="a window instead of full screen")
    p.add_argument("--skip-calibration", action="store_true", help="no calibration/validation")
    p.add_argument(
        "--autopilot",
        type=_number(0, 3600),
        metavar="SECONDS",
        help="simulated participant: label each image correctly after SECONDS (demos, tests)",
    )

    p = add(
        "simulate-tracker",
        cmd_simulate_tracker,
        "run a tracker simulator: Eye Tribe server, GazePoint Open Gaze server or LSL stream",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--protocol", choices=("eyetribe", "gazepoint", "lsl"), default="eyetribe",
                   help="Eye Tribe TCP JSON (default), GazePoint Open Gaze XML or LSL")  # fmt: skip
    p.add_argument("--port", type=_count(0, 65535),
                   help="TCP port (default: 6555 Eye Tribe, 4242 GazePoint; 0: any free port)")  # fmt: skip
    p.add_argument("--rate", type=_count(1, 1000), default=60,
                   help="frame rate, Hz: 30/60, up to 1000")  # fmt: skip
    p.add_argument(
        "--heartbeat-ms",
        type=_count(10, 60_000),
        default=250,
        help="heartbeat interval (default: 250)",
    )
    p.add_argument("--replay", help="JSON-lines file of {t_ms, x, y, fix, state} to replay")
    p.add_argument("--seed", type=_count(0, 2**32 - 1), default=0)

    p = add("heatmaps", cmd_heatmaps, "fixations and human heatmaps of a recorded session")
    p.add_argument("--store", required=True, help="project store (.sqlite)")
    p.add_argument("--session", type=_count(1), required=True, help="session id")
    p.add_argument("--images", help="the session's images (default: the image spec stored with "
                   f"it): {layout_usage()}, or a PATH in the --dataset layout")  # fmt: skip
    p.add_argument("--dataset", default="folder",
                   help=f"layout of a bare --images PATH: {', '.join(layouts())}")  # fmt: skip
    p.add_argument("--out", type=_out_folder, required=True, help="output folder")

    p = add("settings", cmd_settings, "print the default settings (or a validated file) as TOML")
    p.add_argument("--config", help="settings TOML file to validate and print")

    p = add("synthetic", cmd_synthetic, "write synthetic faces in the folder-per-class layout")
    p.add_argument("--out", type=_out_folder, required=True, help="output folder")
    p.add_argument(
        "-n", type=_count(1, 1_000_000), default=64, help="number of faces (default: 64)"
    )
    p.add_argument("--size", type=_count(16, 4096), default=256,
                   help="side in pixels, 16-4096 (default: 256)")  # fmt: skip
    p.add_argument("--seed", type=_count(0, 2**32 - 1), default=0)
    p.add_argument("--rgb", action="store_true", help="RGB instead of grey-scale")

    p = add("sessions", cmd_sessions,
            "list a store's sessions: participant, date, progress, accuracy, precision, loss")  # fmt: skip
    p.add_argument("--store", required=True, help="project store (.sqlite)")
    p.add_argument("--csv", action="store_true", help="CSV instead of a table")

    p = add("export", cmd_export, "export sessions to a BIDS-like folder (gaze.tsv.gz, events.tsv)")
    p.add_argument("--store", required=True, help="project store (.sqlite)")
    p.add_argument("--session", type=_count(1), help="session id (default: all)")
    p.add_argument("--out", type=_out_folder, required=True, help="output folder")

    def project_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--project", help="project folder (project.sqlite, model.keras)")
        p.add_argument("--store", help="project store (.sqlite), instead of --project")
        p.add_argument("--model", help="trained classifier (.keras)")
        p.add_argument("--cache", help="saliency cache folder (default: beside the store)")
        p.add_argument("--analyzer", choices=ANALYZER_CHOICES, help="default: deep_taylor")
        p.add_argument("--point-source", choices=("events", "samples"),
                       help="fixation points: events (default) or samples in fixations")  # fmt: skip
        p.add_argument("--config", help="settings TOML ([analysis] section)")

    p = add("saliency", cmd_saliency, "relevance maps of a model (deep Taylor, LRP, Grad-CAM...)")
    p.add_argument("--model", required=True, help="trained classifier (.keras)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--images", help=f"a small image set, one NPZ: {layout_usage()}")
    which.add_argument("--dataset", help="a whole dataset (same specs), streamed into "
                       "resumable float16 NPZ shards + index.csv")  # fmt: skip
    p.add_argument("--analyzer", default="deep_taylor", choices=ANALYZER_CHOICES)
    p.add_argument("--out", type=_out_folder, required=True, help="output folder")
    p.add_argument("--cache", help="saliency cache folder (--images; reused across runs)")
    p.add_argument("--limit", type=_count(1), help="only the first N images")
    p.add_argument("--batch-size", type=_count(1, 4096), default=32)
    p.add_argument(
        "--shard-size", type=_count(1, 100_000), default=256, help="--dataset: images per shard"
    )
    p.add_argument("--png", action="store_true", help="also write |relevance| PNGs")

    p = add("compare", cmd_compare, "human gaze vs model saliency: metrics report")
    project_args(p)
    p.add_argument("--sessions", type=_session_ids,
                   help="comma-separated session ids (default: all)")  # fmt: skip
    p.add_argument("--report", type=_out_folder, help="report folder (default: <project>/report)")

    p = add("view", cmd_view, "overlay viewer: images, human and model heatmaps, metrics")
    project_args(p)
    p.add_argument("--screenshot", help=argparse.SUPPRESS)

    p = add("masks", cmd_masks, "export masks (negative, mean, perceptive, human) for training")
    p.add_argument("--algorithm", required=True, choices=MASK_ALGORITHMS)
    p.add_argument(
        "--out",
        type=_out_folder,
        required=True,
        help="export folder (re-run to finish an interrupted one)",
    )
    project_args(p)
    p.add_argument("--sessions", type=_session_ids,
                   help="comma-separated session ids (default: all)")  # fmt: skip
    p.add_argument("--annotator", help="human masks of one annotator (default: all pooled)")
    p.add_argument(
        "--mixed",
        action="store_true",
        help="images without the annotator's gaze get the model's perceptive mask",
    )
    p.add_argument("--images", help="model masks for a whole image set instead of a project")
    p.add_argument("--relevance", help="with --images: relevance shards written by "
                   "`gazelab saliency --dataset` (same model and images) instead of computing")  # fmt: skip
    p.add_argument(
        "--size", type=_count(8, 4096), help="mask side in px (default: the model's input)"
    )
    p.add_argument("-n", type=_count(1, 10_000), default=7,
                   help="points for perceptive masks with --images")  # fmt: skip

    p = add("prune", cmd_prune, "distinctiveness pruning of a conv layer's feature maps")
    p.add_argument("--model", required=True, help="trained classifier (.keras)")
    p.add_argument("--images", required=True, help="validation images with labels (image spec)")
    p.add_argument(
        "--similar", type=_number(0, 180), default=10.0, help="merge pairs under this angle (°)"
    )
    p.add_argument("--complementary", type=_number(0, 180), default=170.0,
                   help="remove both maps of pairs over this angle (°)")  # fmt: skip
    p.add_argument("--layer", help="conv layer to prune (default: the last Conv2D)")
    p.add_argument("--limit", type=_count(1), help="only the first N images")
    p.add_argument("--out", help="pruned model (default: <model>-pruned.keras; + .json)")

    p = add("esr", cmd_esr, "ensembles with shared representations: run an ESR protocol")
    p.add_argument("--config", required=True,
                   help="ESR config TOML ([data], [esr], [training]); see examples/esr-*.toml")  # fmt: skip
    p.add_argument(
        "--out", type=_out_folder, help="output folder (default: runs/<config name> beside it)"
    )

    p = add("transfer", cmd_transfer,
            "memory integrity across datasets: fine-tuning strategies BL/FC/FC+CL/RE/FU")  # fmt: skip
    p.add_argument("--config", required=True,
                   help="config TOML ([transfer], [training]); see examples/transfer-*.toml")  # fmt: skip
    p.add_argument(
        "--out", type=_out_folder, help="output folder (default: runs/<config name> beside it)"
    )

    p = add("train", cmd_train, "train the Trainer, or run the Trainee experiment")
    p.add_argument("role", choices=("trainer", "trainee"))
    p.add_argument("--config", required=True, help="run config TOML ([data], [training], ...)")
    p.add_argument(
        "--out", type=_out_folder, help="output folder (default: runs/<config name> beside it)"
    )

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # File names that are not valid UTF-8 reach us surrogate-escaped: print them escaped
    # instead of failing inside the error message itself.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        print(f"gazelab {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: Exception) -> str:
    """The message of a user error on one line; an OS error says what to do about it."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{where}{_OS_HINTS.get(exc.errno or 0, '')}"
    else:
        text = str(exc)
    return " ".join(text.split())


_OS_HINTS = {
    errno.ENOSPC: " — free some space and run the command again (finished work is kept)",
    errno.EDQUOT: " — free some space and run the command again (finished work is kept)",
    errno.ENAMETOOLONG: " — use a shorter file name or path",
    errno.EACCES: " — check the permissions, or choose another folder",
    errno.EROFS: " — choose a writable folder",
    errno.EISDIR: " — name a file, not a folder",
    errno.ENOTDIR: " — a part of the path is a file, not a folder",
    errno.ENOENT: " — check the path",
}


def _is_user_error(exc: BaseException) -> bool:
    """Errors that come from the user's input or machine (bad values, files, a full disk)."""
    from gazelab.errors import GazelabError

    return isinstance(exc, (GazelabError, OSError, UnicodeError))


if __name__ == "__main__":
    sys.exit(main())
