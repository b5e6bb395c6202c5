"""The seven-run Trainee experiment on synthetic faces (issue 7 acceptance).

A Trainer (small CNN) is trained on N synthetic faces; its deep Taylor
relevance of every training image gives negative / mean / perceptive masks
(exported and read back through the mask export); then the Trainee is trained
seven times from the same seed: no mask (the baseline); each mask for all
epochs; each mask for the first K epochs, then unmasked. Validation is always
on unmasked images.

Printed per run: the steps to reach the baseline's final validation macro-F1,
as a ratio to the baseline's own steps (the paper's claim: mask -> no mask
accelerates early training, ratio < 1), and the final macro-F1.

    python benchmarks/bench_trainee.py [--n 4000] [--size 48] [--epochs 8] [--masked 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=4000, help="training images")
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--masked", type=int, default=3)
    ap.add_argument("--trainer-epochs", type=int, default=5)
    ap.add_argument("--points", type=int, default=7, help="n for perceptive masks")
    ap.add_argument("--arch", default="small_cnn")
    ap.add_argument("--out", default="")
    ap.add_argument(
        "--trainee-augment",
        action="store_true",
        help="SPEC augmentation for the Trainee too (at this scale on CPU the "
        "augmented small CNN sat on the ln 8 plateau for 8+ epochs)",
    )
    args = ap.parse_args()

    import numpy as np

    from gazelab.analysis.cache import cached_relevance
    from gazelab.models.architectures import load_classifier, to_model_input
    from gazelab.models.export import export_masks, jobs_from_relevance, load_masks, masked_images
    from gazelab.models.synthetic import synthetic_faces
    from gazelab.models.training import TrainData, run_experiment, train_run
    from gazelab.settings import Settings, TrainingSettings

    out = Path(args.out or tempfile.mkdtemp(prefix="gazelab-bench-trainee-"))
    t0 = time.monotonic()
    shape = (args.size, args.size, 1)
    tr = synthetic_faces(args.n, size=args.size, seed=100)
    va = synthetic_faces(args.n // 4, size=args.size, seed=200)
    data = TrainData(to_model_input(tr.images, shape), tr.labels.astype(np.int64), list(tr.ids),
                     to_model_input(va.images, shape), va.labels.astype(np.int64), list(va.ids))  # fmt: skip
    print(f"{args.n} training / {args.n // 4} validation synthetic faces at {args.size} px "
          f"({time.monotonic() - t0:.0f} s)", flush=True)  # fmt: skip

    trainer = TrainingSettings(architecture=args.arch, input_size=args.size, epochs=args.trainer_epochs,
                               seed=1, augment=True)  # fmt: skip
    t1 = time.monotonic()
    tr_res = train_run(trainer, data, name="trainer", out=out / "trainer", progress=print)
    print(
        f"Trainer: best val macro-F1 {tr_res.best_f1:.3f} ({time.monotonic() - t1:.0f} s)",
        flush=True,
    )

    model = load_classifier(out / "trainer" / "best.keras")
    t2 = time.monotonic()
    rel, _ = cached_relevance(model, data.x_train, "deep_taylor", None, batch_size=64,
                              chunk=len(data.x_train))  # fmt: skip
    print(f"deep Taylor relevance of {len(rel)} training images: {time.monotonic() - t2:.0f} s",
          flush=True)  # fmt: skip
    settings = Settings()
    masked = {}
    for alg in ("negative", "mean", "perceptive"):
        jobs = jobs_from_relevance(data.ids_train, rel, alg, settings=settings, n=args.points,
                                   dataset="synthetic")  # fmt: skip
        export_masks(jobs, out / "masks" / alg, request={"algorithm": alg, "n": args.points})
        ms = load_masks(out / "masks" / alg)
        masked[alg] = masked_images(data.x_train, data.ids_train, ms)
        print(f"{alg} masks: {ms.masks.mean():.1%} of pixels kept", flush=True)

    trainee = TrainingSettings(architecture=args.arch, input_size=args.size, epochs=args.epochs,
                               masked_epochs=args.masked, seed=7, augment=args.trainee_augment,
                               eval_every_steps=max(1, (args.n // 32) // 5))  # fmt: skip
    t3 = time.monotonic()
    rows = run_experiment(trainee, data, masked, out / "trainee",
                          progress=lambda m: print("  " + m, flush=True))  # fmt: skip
    print(f"seven runs: {time.monotonic() - t3:.0f} s; evaluation every "
          f"{trainee.eval_every_steps} steps; augmentation {trainee.augment}; "
          f"baseline = no mask")  # fmt: skip
    print(f"{'run':<26} {'final F1':>9} {'steps to baseline final':>24} {'ratio':>7}")
    for r in rows:
        st = r["steps_to_baseline_final"]
        ratio = r["ratio_to_baseline_steps"]
        print(f"{r['run']:<26} {r['final_macro_f1']:>9.4f} {('never' if st is None else st):>24} "
              f"{('-' if ratio is None else f'{ratio:.2f}x'):>7}")  # fmt: skip
    print(f"outputs: {out}  (total {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
