"""``gazelab demo``: the product end to end on its embedded defaults, headless.

Synthetic faces stand in for CK+, the Eye Tribe simulator for the tracker (over
its real TCP protocol), and simulated participants give automatic labels. The
stages write into one output folder and print what they did:

1. synthetic faces in the folder-per-class layout (``images/``);
2. two annotation sessions (annotators A1, A2) through the simulator into the
   project store (``project.sqlite``);
3. a BIDS-like export of each session (``bids/``);
4. fixations and human heatmaps per image, as NPZ and overlay PNGs (``heatmaps/``);
5. a small CNN trained on other synthetic faces (``model.keras``);
6. the comparison report, human gaze vs the model's deep Taylor saliency
   (``report/``; relevance maps cached in ``saliency-cache/``);
7. mask exports: the annotators' human masks of the annotated images and the
   model's negative / mean / perceptive masks of a training set (``masks/``);
8. a short Trainee experiment (seven runs) on those training images (``trainee/``).

The output folder is a project: ``gazelab view --project demo-out`` opens it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gazelab import CLASSES
from gazelab.errors import GazelabError
from gazelab.fileio import atomic_open, atomic_write, save_model

if TYPE_CHECKING:
    from gazelab.analysis.compare import Comparison
    from gazelab.annotation.store import SessionStore

S = 8  # stages


def demo_trackers() -> dict[str, str]:
    """``gazelab demo --tracker`` choices: each tracker with an in-process simulator (the
    tracker registry's ``simulates`` trait), mapped to the simulator's registered kind
    (``eyetribe`` -> ``sim``)."""
    from gazelab.gaze.trackers.registry import simulators

    return {real: sim.name for real, sim in simulators().items()}


@contextlib.contextmanager
def simulated_tracker(
    kind: str, settings: Any, *, seed: int, k: int
) -> Iterator[tuple[Any, Any, str]]:
    """(tracker, synthetic observer, where it runs) of annotator ``k``: a simulator of
    ``kind`` (:func:`demo_trackers`) and gazelab's real client for it, stopped on exit."""
    from gazelab.gaze.trackers.registry import TRACKERS, TrackerRequest, open_tracker_request

    sim_kind = demo_trackers().get(kind)
    if sim_kind is None:
        raise ValueError(f"demo tracker {kind!r}: choose one of {', '.join(demo_trackers())}")
    if kind == "eyetribe":  # each annotator's simulator noise seeded apart
        from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
        from gazelab.gaze.trackers.simulator import EyeTribeSimulator, SyntheticObserver

        observer = SyntheticObserver(settings.display.resolution_px, seed=seed + 10 + k)
        with EyeTribeSimulator(port=0, rate_hz=60, source=observer, seed=seed + k) as sim:
            yield (
                EyeTribeTracker(port=sim.port),
                observer,
                (f"simulated Eye Tribe on 127.0.0.1:{sim.port}"),
            )
        return
    request = TrackerRequest(
        kind=sim_kind,
        rate_hz=60,
        screen_px=settings.display.resolution_px,
        geometry=settings.display,
        seed=seed + 10 + k,
    )
    opened = open_tracker_request(request)
    try:
        port = getattr(opened.simulator, "port", None)
        stream = getattr(opened.tracker, "name", None)
        where = TRACKERS[sim_kind].help + (f" on 127.0.0.1:{port}" if port else "")
        where += f" ({stream!r})" if isinstance(stream, str) and not port else ""
        yield opened.tracker, opened.observer, where
    finally:
        opened.close()


DEMO_MARKER = ".gazelab-demo"
"""A file the demo leaves in its output folder: the one kind of folder it writes over."""


def check_demo_out(out: Path) -> None:
    """Refuse an output folder that holds anything but an earlier demo's output: the demo
    deletes and rewrites its ``project.sqlite``, ``images/`` and the rest."""
    if not out.exists():
        return
    if not out.is_dir():
        raise GazelabError(f"--out {out} is a file, not a folder; choose a folder for the demo")
    if (out / DEMO_MARKER).exists() or not any(out.iterdir()):
        return
    try:  # the output of a demo from before the marker: its summary.json says so
        old = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        if isinstance(old, dict) and {"sessions", "trainee"} <= old.keys():
            return
    except (OSError, ValueError):
        pass
    raise GazelabError(
        f"--out {out} is not empty and is not a gazelab demo's output; the demo writes over "
        f"its folder (project.sqlite, images, ...), so choose a new or empty folder (an "
        f"interrupted demo of an older gazelab: delete {out} first)"
    )


DEMO_OUTPUTS = (
    "images",
    "bids",
    "heatmaps",
    "report",
    "masks",
    "trainee",
    "saliency-cache",
    "gaze-cache",
)
"""The demo's folders, cleared before a rerun: each holds what one run's sessions, images
and seed made (a BIDS export or mask export of other sessions would be refused or reused)."""


def clear_demo_out(out: Path) -> None:
    """Remove an earlier demo's store and outputs from ``out`` (a demo folder, checked by
    :func:`check_demo_out`), so that a rerun starts from nothing."""
    import shutil

    for suffix in ("", "-wal", "-shm"):
        Path(f"{out / 'project.sqlite'}{suffix}").unlink(missing_ok=True)
    for name in DEMO_OUTPUTS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)


def run_demo(
    out: Path,
    *,
    n_images: int = 8,
    seed: int = 0,
    quick: bool = False,
    tracker: str = "eyetribe",
) -> dict[str, object]:
    from PIL import Image

    from gazelab.analysis.human import trial_gaze
    from gazelab.analysis.overlays import heat_overlay, place_in_square
    from gazelab.annotation.bids import export_session
    from gazelab.annotation.simulated import Stimulus, run_simulated_session
    from gazelab.annotation.store import SessionStore
    from gazelab.models.synthetic import synthetic_faces, write_folder
    from gazelab.settings import ProtocolSettings, Settings

    t_start = time.monotonic()
    check_demo_out(out)
    out.mkdir(parents=True, exist_ok=True)
    clear_demo_out(out)
    atomic_write(out / DEMO_MARKER, "written by gazelab demo; it may write over this folder\n")
    size = 240 if quick else 480
    annotators = ("A1",) if quick else ("A1", "A2")
    view_s = (0.6, 0.9) if quick else (1.5, 2.5)
    settings = Settings()
    # the kind recorded with the sessions (BIDS sidecar: manufacturer, model, kind)
    settings = settings.replace(
        tracker=dataclasses.replace(settings.tracker, kind=demo_trackers()[tracker])
    )
    if quick:
        settings = settings.replace(
            protocol=ProtocolSettings(blank1_ms=100, cross_ms=100, blank2_ms=100)
        )

    print(f"[1/{S}] synthetic faces: {n_images} images, {size}×{size} px")
    faces = synthetic_faces(n_images, size=size, seed=seed)
    write_folder(faces, out / "images")
    stimuli = [
        Stimulus(fid, (size, size), int(lab), reg)
        for fid, lab, reg in zip(faces.ids, faces.labels, faces.regions, strict=True)
    ]
    images = dict(zip(faces.ids, faces.images, strict=True))

    store_path = out / "project.sqlite"
    sessions = []
    quality: dict[str, dict[str, object]] = {}
    with SessionStore(store_path, create=True) as store:
        for k, who in enumerate(annotators):
            with simulated_tracker(tracker, settings, seed=seed, k=k) as (trk, observer, where):
                print(f"[2/{S}] session of {who}: {where}, {len(stimuli)} trials")
                rec = run_simulated_session(
                    store,
                    stimuli,
                    trk,
                    participant=who,
                    settings=settings,
                    observer=observer,
                    view_s=view_s,
                    seed=seed + k,
                    progress=lambda i, n: print(f"      trial {i}/{n}", end="\r", flush=True),
                    image_source=f"synthetic:{n_images}:{seed}:{size}",
                )
                print()
            n_samples = store.sample_count(rec.id)
            agree = np.mean(
                [
                    store.final_labels(rec.id)[i] == CLASSES[faces.labels[faces.ids.index(img)]]
                    for i, img in enumerate(rec.stimulus_order)
                ]
            )
            print(
                f"      {n_samples} gaze samples, {len(store.final_labels(rec.id))} labels "
                f"({agree:.0%} match the generator's classes)"
            )
            quality[who] = data_quality(store, rec.id)
            print(f"      data quality: {quality[who]['text']}")
            sessions.append(rec)

        print(f"[3/{S}] BIDS-like export to {out / 'bids'}")
        for rec in sessions:
            export_session(store, rec.id, out / "bids")

        print(f"[4/{S}] fixations and heatmaps to {out / 'heatmaps'}")
        heat_dir = out / "heatmaps"
        heat_dir.mkdir(exist_ok=True)
        summary: dict[str, object] = {"sessions": []}
        square = settings.stimulus.square_px
        for rec in sessions:
            trials = trial_gaze(store, rec.id, {fid: (size, size) for fid in faces.ids})
            n_fix = [len(t.fixations["onset_ms"]) for t in trials]
            in_regions = []
            arrays = {}
            for t in trials:
                fx = t.fixations
                reg = faces.regions[faces.ids.index(t.image_id)]
                xi = np.clip(fx["x_img"].astype(int), 0, size - 1)
                yi = np.clip(fx["y_img"].astype(int), 0, size - 1)
                if len(xi):
                    in_regions.append(float(np.mean(reg[yi, xi] > 0)))
                arrays[t.image_id] = t.heatmap.astype(np.float32)
                base = place_in_square(images[t.image_id], square)
                over = heat_overlay(base, t.heatmap)
                small = Image.fromarray(over).resize((400, 400), Image.BILINEAR)
                with atomic_open(heat_dir / f"{rec.participant}_{t.image_id}.png") as f:
                    small.save(f, format="PNG")
            with atomic_open(heat_dir / f"{rec.participant}_heatmaps.npz") as f:
                np.savez_compressed(f, **arrays)
            row = {
                "participant": rec.participant,
                "session": rec.id,
                "fixations_per_image": float(np.mean(n_fix)) if n_fix else 0.0,
                "fixations_in_diagnostic_regions": float(np.mean(in_regions))
                if in_regions
                else 0.0,
                "data_quality": {k: v for k, v in quality[rec.participant].items() if k != "text"},
            }
            summary["sessions"].append(row)  # type: ignore[union-attr]
            print(
                f"      {rec.participant}: {row['fixations_per_image']:.1f} fixations per image, "
                f"{row['fixations_in_diagnostic_regions']:.0%} in diagnostic regions"
            )
    summary["model"] = train_demo_model(out / "model.keras", seed=seed, quick=quick)
    summary["comparison"], comp = compare_stage(
        out, analyzer="gradient" if quick else "deep_taylor"
    )
    summary["trainee"] = masks_and_trainee_stage(out, comp, seed=seed, quick=quick)
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    atomic_write(out / "summary.json", json.dumps(summary, indent=2))
    print(f"done in {summary['seconds']} s: {out}/summary.json")
    return summary


def data_quality(store: SessionStore, session_id: int) -> dict[str, object]:
    """The session's data quality as papers report it (gaze/quality.py): the first
    validation's accuracy and precision, and the data loss over the image phases."""
    from gazelab.annotation.sessions import session_loss_pct

    runs = store.validation_qualities(session_id)
    loss = session_loss_pct(store.trial_quality(session_id))
    out: dict[str, object] = {"trial_loss_pct": round(loss, 2)}
    if runs:
        q = runs[0]["quality"]
        out |= {
            "accuracy_deg": round(q.mean_accuracy_deg, 3),
            "max_accuracy_deg": round(q.max_accuracy_deg, 3),
            "rms_s2s_deg": round(q.rms_s2s_deg, 3),
            "std_deg": round(q.std_deg, 3),
            "validation_loss_pct": round(q.loss_pct, 2),
            "validation_passed": bool(runs[0]["passed"]),
            "validation_problems": list(runs[0]["problems"]),
        }
    parts = [f"data loss {loss:.1f} % of the image-phase samples"]
    if runs:
        parts.insert(0, f"validation accuracy {out['accuracy_deg']}° (worst target"
                     f" {out['max_accuracy_deg']}°), precision RMS-S2S {out['rms_s2s_deg']}°,"
                     f" STD {out['std_deg']}°")  # fmt: skip
        if not runs[0]["passed"]:  # a lab would recalibrate: the demo says it went on anyway
            problems = "; ".join(runs[0]["problems"]) or "thresholds not met"
            parts.insert(0, f"VALIDATION FAILED ({problems}), the session went on as overridden")
    out["text"] = "; ".join(parts)
    return out


def train_demo_model(path: Path, *, seed: int, quick: bool) -> dict[str, float]:
    """Stage 5: a small CNN trained on synthetic faces other than the annotated ones."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from gazelab.models.architectures import build_model, to_model_input
    from gazelab.models.scores import macro_f1
    from gazelab.models.synthetic import synthetic_faces

    n_train, size, epochs = (600, 32, 2) if quick else (3000, 64, 4)
    print(f"[5/{S}] training a small CNN on {n_train} other synthetic faces ({size}×{size} px)")
    tf.keras.utils.set_random_seed(seed)
    # rendered larger and downsampled, like the annotated images the model will explain
    # (a model trained on faces rendered at 64 px scores ~25 points lower on them)
    train = synthetic_faces(n_train, size=2 * size, seed=seed + 1000)
    test = synthetic_faces(n_train // 8, size=4 * size, seed=seed + 2000)
    model = build_model("small_cnn", (size, size, 1), len(CLASSES))
    model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    x, xt = (
        to_model_input(train.images, (size, size, 1)),
        to_model_input(test.images, (size, size, 1)),
    )
    for epoch in range(1, epochs + 1):
        model.fit(x, train.labels, batch_size=32, epochs=1, verbose=0, shuffle=True)
        pred = model.predict(xt, verbose=0).argmax(axis=1)
        f1 = macro_f1(test.labels, pred)
        print(f"      epoch {epoch}/{epochs}: held-out macro-F1 {f1:.3f}")
    save_model(model, path)
    return {"macro_f1": round(f1, 4), "train_images": n_train, "input_px": size}


def compare_stage(out: Path, *, analyzer: str) -> tuple[dict[str, object], Comparison]:
    """Stage 6: human gaze vs model saliency, the report written into ``out/report``;
    returns the printed numbers and the comparison (reused by stage 7)."""
    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import analyse_project, summaries
    from gazelab.analysis.report import write_report
    from gazelab.annotation.store import SessionStore
    from gazelab.models.architectures import load_classifier
    from gazelab.settings import AnalysisSettings

    print(f"[6/{S}] comparing human gaze with the model's {analyzer} saliency")
    model = load_classifier(out / "model.keras")
    with SessionStore(out / "project.sqlite") as store:
        comp = analyse_project(
            store, model, analysis=AnalysisSettings(analyzer=analyzer),
            cache=SaliencyCache(out / "saliency-cache"),
        )  # fmt: skip
    md = write_report(comp, out / "report")
    summ = summaries(comp)
    result: dict[str, object] = {"n_points": comp.n_points, "annotators": {}}
    for r in summ["by_annotator"]:
        print(
            f"      {r['annotator']} vs {r['versus']:<5}: IoU {r['iou_mean']:.3f}, "
            f"Spearman {r['spearman_mean']:.3f}, cosine distance {r['cosine_distance_mean']:.3f}"
        )
        result["annotators"][f"{r['annotator']} vs {r['versus']}"] = {  # type: ignore[index]
            m: r[f"{m}_mean"] for m in ("iou", "spearman", "cosine_distance")
        }
    pg = summ["pointing_game"]
    if pg["model_hit_rate"] is not None:
        print(
            f"      model's most relevant pixel in a diagnostic region: {pg['model_hit_rate']:.0%}"
        )
        result["pointing_game"] = pg["model_hit_rate"]
    if summ.get("layout_note"):
        print(textwrap.fill(summ["layout_note"], 88, initial_indent="      ",
                            subsequent_indent="      "))  # fmt: skip
        result["layout_note"] = summ["layout_note"]
    print(f"      report: {md}  (open the project: gazelab view --project {out})")
    return result, comp


def masks_and_trainee_stage(
    out: Path, comp: Comparison, *, seed: int, quick: bool
) -> dict[str, object]:
    """Stages 7-8: human and model mask exports, then the seven-run Trainee experiment."""
    from gazelab.analysis.cache import SaliencyCache, cached_relevance, model_hash
    from gazelab.models.architectures import load_classifier, to_model_input
    from gazelab.models.export import (
        export_masks,
        jobs_from_comparison,
        jobs_from_relevance,
        load_masks,
        masked_images,
    )
    from gazelab.models.synthetic import synthetic_faces
    from gazelab.models.training import TrainData, reading_note, run_experiment
    from gazelab.settings import Settings, TrainingSettings

    analyzer = comp.analysis.analyzer
    settings = Settings()
    model = load_classifier(out / "model.keras")
    size = int(model.input_shape[1])
    print(f"[7/{S}] mask exports to {out / 'masks'}")
    for who in comp.annotators:
        jobs = jobs_from_comparison(comp, "human", settings=settings, size=size, annotator=who,
                                    mixed=True, dataset="demo")  # fmt: skip
        export_masks(jobs, out / "masks" / f"human_{who}", request={"annotator": who, "size": size})
        kept = load_masks(out / "masks" / f"human_{who}").masks.mean()
        print(f"      human masks of {who}: {len(jobs)} images, {kept:.0%} of pixels kept")
    n_train, px, epochs, masked_epochs = (256, 32, 2, 1) if quick else (1200, 32, 4, 2)
    train = synthetic_faces(n_train, size=2 * px, seed=seed + 3000)
    val = synthetic_faces(n_train // 4, size=2 * px, seed=seed + 4000)
    x_model = to_model_input(train.images, model.input_shape[1:])
    rel, _ = cached_relevance(model, x_model, analyzer, SaliencyCache(out / "saliency-cache"),
                              chunk=n_train)  # fmt: skip
    shape = (px, px, 1)
    data = TrainData(to_model_input(train.images, shape), train.labels.astype("int64"),
                     list(train.ids), to_model_input(val.images, shape),
                     val.labels.astype("int64"), list(val.ids), "synthetic")  # fmt: skip
    masked = {}
    for alg in ("negative", "mean", "perceptive"):
        jobs = jobs_from_relevance(list(train.ids), rel, alg, settings=settings,
                                   n=max(1, comp.n_points), dataset="synthetic",
                                   model=model_hash(model), size=px)  # fmt: skip
        folder = out / "masks" / f"train_{alg}"
        export_masks(jobs, folder, request={"algorithm": alg, "n": comp.n_points, "size": px})
        ms = load_masks(folder)
        masked[alg] = masked_images(data.x_train, data.ids_train, ms)
        print(f"      {alg} masks of {n_train} training faces: {ms.masks.mean():.0%} kept")
    # no augmentation here: augmented, 4 epochs of 1 200 faces stay on the ln 8 plateau
    print(f"[8/{S}] Trainee experiment: 7 runs × {epochs} epochs on {n_train} faces ({px} px)")
    t = TrainingSettings(architecture="small_cnn", input_size=px, epochs=epochs,
                         masked_epochs=masked_epochs, seed=seed, eval_every_steps=5,
                         augment=False)  # fmt: skip
    rows = run_experiment(t, data, masked, out / "trainee")
    for r in rows:
        ratio = r["ratio_to_baseline_steps"]
        print(f"      {r['run']:<24} final macro-F1 {r['final_macro_f1']:.3f}, steps to the "
              f"baseline's final: {'never' if ratio is None else f'{ratio:.2f}× baseline'}")  # fmt: skip
    for line in [*reading_note(rows), *TRAINEE_SCOPE]:
        print(textwrap.fill(line, 88, initial_indent="      ", subsequent_indent="      "))
    return {r["run"]: r["final_macro_f1"] for r in rows}


TRAINEE_SCOPE = (
    "What these numbers can show: that the whole chain runs (Trainer relevance -> negative, "
    "mean and perceptive masks -> the seven Trainee runs) and how the runs of this one seed "
    "compare on a few hundred synthetic faces in a few epochs. What they cannot show: "
    "whether masks speed up training, for or against the paper. One seed at this size moves "
    "by more than the differences between runs, and what a mask keeps or removes on a drawn "
    "face says little about what it does on a photograph; a run 'behind' or 'never' here "
    "is not a verdict on the method.",
    "The paper's experiment on real faces (a Trainer trained on FER2013, masks of CK+ "
    "crops, seven Trainee runs over 3 seeds, mean ± 95 % CI of steps to the baseline and "
    "final macro-F1): the bench_trainee_real.py table in benchmarks/results.md; how to "
    "get the data and point gazelab at it: docs/real-faces.md.",
)
"""Printed after the demo's Trainee table: what it can and cannot show, and where the
real-data result is."""
