"""The seven-run Trainee experiment on synthetic faces, over several seeds.

For every seed: a Trainer (small CNN) is trained on N synthetic faces; its deep Taylor
relevance of every training image gives negative / mean / perceptive masks (exported and
read back through the mask export); then the Trainee is trained seven times from the same
seed: no mask (the baseline); each mask for all epochs; each mask for the first K epochs,
then unmasked. Validation is always on unmasked images. Faces, Trainer and Trainee all
change with the seed.

Printed per run, as mean ± 95 % confidence half-width over the seeds (Student's t with
seeds - 1 degrees of freedom): the steps to reach the baseline's final validation
macro-F1 as a ratio to the baseline's own steps (the paper's claim: mask -> no mask
accelerates early training, ratio < 1; seeds where a run never reaches it are counted
apart), the final macro-F1, and its difference to the baseline's final macro-F1 on the
same seed (the paper: negative / mean -> no mask end at or above the baseline); for the
mask -> no mask runs also the difference to the baseline's macro-F1 after as many
unmasked steps as the run had (do the masked epochs give a warm start at all?).

    python benchmarks/bench_trainee.py [--seeds 3] [--n 1600] [--size 32] [--epochs 5] [--masked 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its two-sided ``level`` confidence interval from
    Student's t with ``n - 1`` degrees of freedom (``nan`` half-width for one value)."""
    import numpy as np
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float("nan")
    t = stats.t.ppf(0.5 + level / 2, df=v.size - 1)
    return float(v.mean()), float(t * v.std(ddof=1) / np.sqrt(v.size))


def one_seed(args: argparse.Namespace, seed: int, out: Path) -> list[dict[str, Any]]:
    """The whole experiment (Trainer, masks, seven Trainee runs) for one seed."""
    import numpy as np

    from gazelab.analysis.cache import cached_relevance
    from gazelab.models.architectures import load_classifier, to_model_input
    from gazelab.models.export import export_masks, jobs_from_relevance, load_masks, masked_images
    from gazelab.models.synthetic import synthetic_faces
    from gazelab.models.training import TrainData, run_experiment, train_run
    from gazelab.settings import Settings, TrainingSettings

    t0 = time.monotonic()
    shape = (args.size, args.size, 1)
    tr = synthetic_faces(args.n, size=args.size, seed=100 + 1000 * seed)
    va = synthetic_faces(args.n // 4, size=args.size, seed=200 + 1000 * seed)
    data = TrainData(to_model_input(tr.images, shape), tr.labels.astype(np.int64), list(tr.ids),
                     to_model_input(va.images, shape), va.labels.astype(np.int64), list(va.ids))  # fmt: skip
    trainer = TrainingSettings(architecture=args.arch, input_size=args.size,
                               epochs=args.trainer_epochs, seed=1 + seed,
                               augment=args.trainer_augment)  # fmt: skip
    tr_res = train_run(trainer, data, name="trainer", out=out / "trainer")
    model = load_classifier(out / "trainer" / "best.keras")
    rel, _ = cached_relevance(model, data.x_train, "deep_taylor", None, batch_size=64,
                              chunk=len(data.x_train))  # fmt: skip
    settings = Settings()
    masked = {}
    kept = []
    for alg in ("negative", "mean", "perceptive"):
        jobs = jobs_from_relevance(data.ids_train, rel, alg, settings=settings, n=args.points,
                                   dataset="synthetic")  # fmt: skip
        export_masks(jobs, out / "masks" / alg, request={"algorithm": alg, "n": args.points})
        ms = load_masks(out / "masks" / alg)
        masked[alg] = masked_images(data.x_train, data.ids_train, ms)
        kept.append(f"{alg} {ms.masks.mean():.0%}")
    trainee = TrainingSettings(architecture=args.arch, input_size=args.size, epochs=args.epochs,
                               masked_epochs=args.masked, seed=7 + seed,
                               augment=args.trainee_augment,
                               eval_every_steps=max(1, (args.n // 32) // 5))  # fmt: skip
    rows = run_experiment(trainee, data, masked, out / "trainee")
    print(f"seed {seed}: Trainer val macro-F1 {tr_res.best_f1:.3f}; masks keep "
          f"{', '.join(kept)}; {time.monotonic() - t0:.0f} s", flush=True)  # fmt: skip
    return rows


def _cell(values: Sequence[float], digits: int = 3) -> str:
    m, h = mean_ci(values)
    if m != m:  # nan: no value
        return "-"
    return f"{m:.{digits}f}" if h != h else f"{m:.{digits}f} ± {h:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3, help="independent repetitions (>= 3 for a CI)")
    ap.add_argument("--n", type=int, default=1600, help="training images")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--masked", type=int, default=2)
    ap.add_argument("--trainer-epochs", type=int, default=4)
    ap.add_argument("--points", type=int, default=7, help="n for perceptive masks")
    ap.add_argument("--arch", default="small_cnn")
    ap.add_argument("--out", default="")
    ap.add_argument("--trainer-augment", action="store_true",
                    help="SPEC augmentation for the Trainer (off: at this size on CPU the "
                    "augmented small CNN needs many more epochs)")  # fmt: skip
    ap.add_argument(
        "--trainee-augment",
        action="store_true",
        help="SPEC augmentation for the Trainee too (at this scale on CPU the "
        "augmented small CNN sat on the ln 8 plateau for 8+ epochs)",
    )
    args = ap.parse_args()

    out = Path(args.out or tempfile.mkdtemp(prefix="gazelab-bench-trainee-"))
    t0 = time.monotonic()
    print(f"{args.seeds} seeds × (Trainer + 7 Trainee runs): {args.n} training / "
          f"{args.n // 4} validation synthetic faces at {args.size} px, {args.epochs} epochs "
          f"({args.masked} masked), {args.arch}; augmentation: Trainer "
          f"{args.trainer_augment}, Trainee {args.trainee_augment}", flush=True)  # fmt: skip
    per_seed = [one_seed(args, s, out / f"seed-{s}") for s in range(args.seeds)]
    runs = [r["run"] for r in per_seed[0]]
    by = {name: [next(r for r in rows if r["run"] == name) for rows in per_seed] for name in runs}
    base = [r["final_macro_f1"] for r in by["no_mask"]]
    print(f"\nmean ± 95 % CI over {args.seeds} seeds (t, {args.seeds - 1} df); ratio = steps "
          "to the baseline's final macro-F1 / the baseline's own steps")  # fmt: skip
    print("| run | steps ratio | reached | final macro-F1 | Δ final vs baseline "
          "| Δ vs baseline at as many unmasked steps |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name in runs:
        ratios = [r["ratio_to_baseline_steps"] for r in by[name]]
        reached = [x for x in ratios if x is not None]
        finals = [r["final_macro_f1"] for r in by[name]]
        delta = [f - b for f, b in zip(finals, base, strict=True)]
        warm = [r["final_macro_f1"] - r["baseline_at_unmasked_steps"] for r in by[name]
                if r.get("baseline_at_unmasked_steps") is not None]  # fmt: skip
        print(f"| {name} | {_cell(reached, 2)} | {len(reached)}/{len(ratios)} | {_cell(finals)} "
              f"| {'-' if name == 'no_mask' else _cell(delta)} "
              f"| {_cell(warm) if warm else '-'} |")  # fmt: skip
    print(f"outputs: {out}  (total {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
