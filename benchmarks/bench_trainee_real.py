"""The paper's Trainee experiment on real faces: Trainer on FER2013, masks of CK+ crops.

The paper (section 5.5, 6) trains a Trainer on one real set (AffectNet), masks a second
real set (FERPlus) with the Trainer's deep Taylor relevance, and trains a Trainee seven
times on it: no mask (the baseline); negative / mean / perceptive masks for all epochs;
each mask for the first K epochs, then unmasked. Here, at CPU scale:

* Trainer: ``--trainer-arch`` trained on ``--trainer-n`` images of FER2013's training
  split (the AffectNet stand-in; a class-stratified sample, seed 0), validated on
  ``--trainer-val`` images of its validation split (PublicTest);
* masks: the Trainer's deep Taylor relevance of every CK+ crop (CK+48: 981 images, 118
  subjects, 7 classes, no neutral) gives negative / mean / perceptive masks (exported and
  read back through the mask export);
* Trainee: ``--arch`` trained seven times per seed on a subject-independent split of the
  CK+ crops (80 / 20, the split and the Trainee's initialisation change with the seed;
  the Trainer and the masks are the same for every seed). Validation is always on
  unmasked images; macro-F1 over the classes present (7).

Printed per run, as mean ± 95 % confidence half-width over the seeds (Student's t, seeds
- 1 degrees of freedom), in the paper's terms: steps to reach the baseline's final
validation macro-F1 as a ratio to the baseline's own steps (< 1: faster; seeds that never
reach it are counted apart), the final macro-F1 and its difference to the baseline of the
same seed, and for mask -> no mask runs the difference to the baseline after as many
unmasked steps (a warm start from the masked epochs), at the end and one epoch after the
switch to unmasked images, where it is also set against the baseline after as many total
steps (the paper's Figure 10 counts all steps).

Data (kept outside the repository; docs/real-faces.md says where it is published):
``--data DIR`` (or ``GAZELAB_FACE_DATA``) holding ``fer2013/`` (JPG folders
``train|validation|test/<class>/*.jpg``) and ``CK+48/`` (``<class>/S###_###_*.png``);
``--trainer-images`` / ``--trainee-images`` take any image specs instead. Without data the
benchmark says so and exits 0.

    python benchmarks/bench_trainee_real.py --data /work/data [--seeds 3] [--epochs 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cell(values: Sequence[float], digits: int = 3) -> str:
    from gazelab.analysis.baselines import mean_ci

    m, h = mean_ci(values)
    if m != m:  # nan: no value
        return "-"
    return f"{m:.{digits}f}" if h != h else f"{m:.{digits}f} ± {h:.{digits}f}"


def stratified_sample(labels: Any, n: int, seed: int) -> Any:
    """``n`` indices of ``labels`` with the classes in their proportions (seeded); all when
    ``n`` is 0 or at least the number of labels."""
    import numpy as np

    y = np.asarray(labels)
    if n <= 0 or n >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    take, _ = train_test_split(np.arange(len(y)), train_size=n, random_state=seed, stratify=y)
    return np.sort(take)


def model_input(images: Any, index: Any, size: int) -> Any:
    from gazelab.models.architectures import to_model_input

    return to_model_input([images.image(int(i)) for i in index], (size, size, 1))


def train_trainer(args: argparse.Namespace, out: Path) -> tuple[Any, dict[str, Any]]:
    """The Trainer on the FER2013 sample; returns the model and what to print."""
    import numpy as np

    from gazelab.models.architectures import load_classifier
    from gazelab.models.datasets.registry import open_image_set
    from gazelab.models.training import TrainData, train_run
    from gazelab.settings import TrainingSettings

    fer = open_image_set(args.trainer_images)
    split = np.asarray(fer.split)
    y = np.asarray(fer.labels)
    tr_all = np.nonzero(split == "train")[0]
    va_all = np.nonzero(split == "val")[0]
    if not len(tr_all) or not len(va_all):
        raise SystemExit(f"{args.trainer_images}: needs train and validation split folders")
    tr = tr_all[stratified_sample(y[tr_all], args.trainer_n, 0)]
    va = va_all[stratified_sample(y[va_all], args.trainer_val, 0)]
    data = TrainData(model_input(fer, tr, args.size), y[tr], [fer.ids[i] for i in tr],
                     model_input(fer, va, args.size), y[va], [fer.ids[i] for i in va],
                     args.trainer_images)  # fmt: skip
    t = TrainingSettings(architecture=args.trainer_arch, input_size=args.size,
                         epochs=args.trainer_epochs, seed=1, augment=args.trainer_augment)  # fmt: skip
    res = train_run(t, data, name="trainer", out=out / "trainer")
    model = load_classifier(out / "trainer" / "best.keras")
    return model, {"train": len(tr), "val": len(va), "best_f1": res.best_f1,
                   "seconds": res.seconds}  # fmt: skip


def one_seed(
    args: argparse.Namespace, seed: int, ck: Any, x: Any, masks: dict[str, Any], out: Path
) -> list[dict[str, Any]]:
    """The seven Trainee runs on one subject-independent split of the CK+ crops."""
    import numpy as np

    from gazelab.models.export import masked_images
    from gazelab.models.training import TrainData, run_experiment, split_indices
    from gazelab.settings import TrainingSettings

    y = np.asarray(ck.labels)
    tr, va = split_indices(y, np.asarray(ck.subjects), (0.8, 0.2), seed)
    ids = list(ck.ids)
    data = TrainData(x[tr], y[tr], [ids[i] for i in tr], x[va], y[va], [ids[i] for i in va],
                     args.trainee_images)  # fmt: skip
    masked = {alg: masked_images(data.x_train, data.ids_train, ms) for alg, ms in masks.items()}
    steps_per_epoch = len(tr) // 32
    t = TrainingSettings(architecture=args.arch, input_size=args.size, epochs=args.epochs,
                         masked_epochs=args.masked, seed=7 + seed, augment=args.trainee_augment,
                         eval_every_steps=max(1, steps_per_epoch // 4))  # fmt: skip
    t0 = time.monotonic()
    rows = run_experiment(t, data, masked, out / f"seed-{seed}")
    early(rows, out / f"seed-{seed}", steps_per_epoch)
    base = next(r for r in rows if r["run"] == "no_mask")
    print(f"seed {seed}: {len(tr)} training / {len(va)} validation crops of "
          f"{len(set(ck.subjects[tr]))} / {len(set(ck.subjects[va]))} subjects; baseline final "
          f"macro-F1 {base['final_macro_f1']:.3f}; {time.monotonic() - t0:.0f} s", flush=True)  # fmt: skip
    return rows


def _curve(folder: Path) -> tuple[list[int], list[float], int]:
    """(evaluated steps, validation macro-F1 there, last masked step) of a run's steps.csv."""
    import csv

    xs, ys, switch = [], [], 0
    with open(folder / "steps.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r.get("phase") == "masked":
                switch = int(r["step"])
            if r.get("val_macro_f1"):
                xs.append(int(r["step"]))
                ys.append(float(r["val_macro_f1"]))
    return xs, ys, switch


def _at(xs: list[int], ys: list[float], step: int) -> float | None:
    """Macro-F1 at the last evaluation at or before ``step``."""
    import bisect

    i = bisect.bisect_right(xs, step) - 1
    return ys[i] if i >= 0 else None


def early(rows: list[dict[str, Any]], out: Path, steps_per_epoch: int) -> None:
    """Add the early-training measures to each mask -> no mask row: macro-F1 one epoch
    after the switch to unmasked images against the baseline after its own first epoch
    (``early_vs_same_unmasked``: a head start from the masked epochs) and against the
    baseline at the same total steps (``early_vs_same_total``: the paper's x-axis)."""
    bx, by, _ = _curve(out / "no_mask")
    for r in rows:
        if "_then_" not in r["run"]:
            continue
        xs, ys, switch = _curve(out / r["run"])
        f = _at(xs, ys, switch + steps_per_epoch)
        b_unmasked = _at(bx, by, steps_per_epoch)
        b_total = _at(bx, by, switch + steps_per_epoch)
        if f is not None and b_unmasked is not None and b_total is not None:
            r["early_vs_same_unmasked"] = f - b_unmasked
            r["early_vs_same_total"] = f - b_total


def resolve(args: argparse.Namespace) -> bool:
    """Fill the image specs from ``--data``; False (and a note) when there is no data."""
    data = args.data or os.environ.get("GAZELAB_FACE_DATA", "")
    if not args.trainer_images and data and (Path(data) / "fer2013").is_dir():
        args.trainer_images = f"folder:{Path(data) / 'fer2013'}"
    if not args.trainee_images and data and (Path(data) / "CK+48").is_dir():
        args.trainee_images = f"folder:{Path(data) / 'CK+48'}"
    if args.trainer_images and args.trainee_images:
        return True
    print("skipped: no real face data. Give --data DIR (or GAZELAB_FACE_DATA) holding "
          "fer2013/ (JPG folders) and CK+48/ (class folders); docs/real-faces.md says where "
          "they are published.")  # fmt: skip
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="", help="folder with fer2013/ and CK+48/")
    ap.add_argument("--trainer-images", default="", help="image spec (default DATA/fer2013)")
    ap.add_argument("--trainee-images", default="", help="image spec (default DATA/CK+48)")
    ap.add_argument("--seeds", type=int, default=3, help="Trainee repetitions (>= 3 for a CI)")
    ap.add_argument("--size", type=int, default=48, help="input px (both sets are 48 px)")
    ap.add_argument("--trainer-arch", default="small_cnn",
                    help="small_cnn: simplified_vgg took 1.5 s a step on a 2-core CPU")  # fmt: skip
    ap.add_argument("--trainer-n", type=int, default=8000, help="FER2013 training images (0: all)")
    ap.add_argument("--trainer-val", type=int, default=1500, help="FER2013 validation images")
    ap.add_argument("--trainer-epochs", type=int, default=10)
    ap.add_argument(
        "--trainer-augment", action="store_true", help="SPEC augmentation for the Trainer"
    )
    ap.add_argument("--arch", default="small_cnn", help="Trainee architecture")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--masked", type=int, default=4, help="masked epochs of mask -> no mask")
    ap.add_argument(
        "--trainee-augment", action="store_true", help="SPEC augmentation for the Trainee"
    )
    ap.add_argument("--points", type=int, default=7, help="n for perceptive masks")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    if not resolve(args):
        return 0

    import numpy as np

    from gazelab.analysis.cache import cached_relevance
    from gazelab.models.datasets.registry import open_image_set
    from gazelab.models.export import export_masks, jobs_from_relevance, load_masks
    from gazelab.models.scores import classification_scores
    from gazelab.settings import Settings

    out = Path(args.out or tempfile.mkdtemp(prefix="gazelab-bench-trainee-real-"))
    t0 = time.monotonic()
    print(f"Trainer: {args.trainer_arch} on {args.trainer_images} (train sample "
          f"{args.trainer_n or 'all'}, validation sample {args.trainer_val}), {args.trainer_epochs} "
          f"epochs, augmentation {args.trainer_augment}. Trainee: {args.arch} on "
          f"{args.trainee_images}, {args.seeds} seeds × 7 runs × {args.epochs} epochs "
          f"({args.masked} masked), augmentation {args.trainee_augment}; {args.size} px.",
          flush=True)  # fmt: skip
    trainer, info = train_trainer(args, out)
    ck = open_image_set(args.trainee_images)
    x = model_input(ck, range(len(ck)), args.size)
    y = np.asarray(ck.labels)
    on_ck = classification_scores(y, trainer.predict(x, batch_size=256, verbose=0).argmax(axis=1))
    print(f"Trainer: {info['train']} FER2013 training images, best validation macro-F1 "
          f"{info['best_f1']:.3f} on {info['val']} (classes present), {info['seconds']:.0f} s; "
          f"on all {len(ck)} CK+ crops (another set, never trained on): macro-F1 "
          f"{on_ck['macro_f1']:.3f} over {len(on_ck['present'])} classes, accuracy "
          f"{on_ck['accuracy']:.3f}", flush=True)  # fmt: skip
    rel, _ = cached_relevance(trainer, x, "deep_taylor", None, batch_size=64, chunk=len(x))
    settings = Settings()
    masks, kept = {}, []
    for alg in ("negative", "mean", "perceptive"):
        jobs = jobs_from_relevance(list(ck.ids), rel, alg, settings=settings, n=args.points,
                                   dataset=args.trainee_images, size=args.size)  # fmt: skip
        export_masks(jobs, out / "masks" / alg, request={"algorithm": alg, "n": args.points})
        masks[alg] = load_masks(out / "masks" / alg)
        kept.append(f"{alg} {masks[alg].masks.mean():.0%}")
    print(f"masks of the {len(ck)} CK+ crops from the Trainer's deep Taylor relevance keep "
          f"{', '.join(kept)} of the pixels", flush=True)  # fmt: skip

    per_seed = [one_seed(args, s, ck, x, masks, out / "trainee") for s in range(args.seeds)]
    runs = [r["run"] for r in per_seed[0]]
    by = {name: [next(r for r in rows if r["run"] == name) for rows in per_seed] for name in runs}
    base = [r["final_macro_f1"] for r in by["no_mask"]]
    print(f"\nmean ± 95 % CI over {args.seeds} seeds (t, {args.seeds - 1} df); ratio = steps "
          "to the baseline's final macro-F1 / the baseline's own steps (< 1: faster)")  # fmt: skip
    print("| run | steps ratio | reached | final macro-F1 | Δ final vs baseline "
          "| Δ vs baseline at as many unmasked steps | 1 epoch after the switch: Δ vs baseline "
          "at as many unmasked steps | … at as many total steps |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    verdicts = []
    for name in runs:
        ratios = [r["ratio_to_baseline_steps"] for r in by[name]]
        reached = [v for v in ratios if v is not None]
        finals = [r["final_macro_f1"] for r in by[name]]
        delta = [f - b for f, b in zip(finals, base, strict=True)]
        warm = [r["final_macro_f1"] - r["baseline_at_unmasked_steps"] for r in by[name]
                if r.get("baseline_at_unmasked_steps") is not None]  # fmt: skip
        head = [r["early_vs_same_unmasked"] for r in by[name] if "early_vs_same_unmasked" in r]
        total = [r["early_vs_same_total"] for r in by[name] if "early_vs_same_total" in r]
        print(f"| {name} | {_cell(reached, 2)} | {len(reached)}/{len(ratios)} | {_cell(finals)} "
              f"| {'-' if name == 'no_mask' else _cell(delta)} "
              f"| {_cell(warm) if warm else '-'} | {_cell(head) if head else '-'} "
              f"| {_cell(total) if total else '-'} |")  # fmt: skip
        if warm:
            verdicts.append((name, "at the end, against the baseline after as many unmasked "
                             "steps", warm))  # fmt: skip
        if head:
            verdicts.append((name, "one epoch after the switch, against the baseline after as "
                             "many unmasked steps (a head start from the masked epochs)", head))  # fmt: skip
        if total:
            verdicts.append((name, "one epoch after the switch, against the baseline after as "
                             "many total steps (the paper's x-axis)", total))  # fmt: skip
    print()
    from gazelab.analysis.baselines import mean_ci

    for name, what, values in verdicts:
        m, h = mean_ci(values)
        if h != h:
            word = "one seed: no interval"
        elif m - h > 0:
            word = "ahead (the interval is above 0)"
        elif m + h < 0:
            word = "behind (the interval is below 0)"
        else:
            word = "not told apart from the baseline (the interval includes 0)"
        print(f"{name} {what}: {m:+.3f} ± {h:.3f} macro-F1, {word}")
    print(f"outputs: {out}  (total {time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
