"""Distinctiveness pruning (Narayan & Ge) on synthetic faces.

Trains Narayan & Ge's six-module CNN (48×48 grey, 16 → 256 maps, global average pooling)
on synthetic faces, then prunes the last conv layer's 256 maps at the paper's two
threshold pairs (8° / 172° and 10° / 170°) and wider ones, up to where accuracy drops,
planning on the validation images and measuring on held-out test images. Prints accuracy and model
size (parameters) before and after, and the number of maps merged / removed.

    python benchmarks/bench_pruning.py [--n 3000] [--epochs 12]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

THRESHOLDS = ((8.0, 172.0), (10.0, 170.0), (20.0, 160.0), (30.0, 150.0), (45.0, 135.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=3000, help="synthetic faces (60/20/20 split)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="also save the trained model here")
    args = ap.parse_args()
    from gazelab.models.architectures import to_model_input
    from gazelab.models.pruning import prune
    from gazelab.models.synthetic import synthetic_faces
    from gazelab.models.training import TrainData, train_run
    from gazelab.settings import TrainingSettings

    faces = synthetic_faces(args.n, size=96, seed=args.seed)
    x = to_model_input(faces.images, (48, 48, 1))
    y = np.asarray(faces.labels, dtype=np.int64)
    a, b = int(0.6 * len(x)), int(0.8 * len(x))
    ids = list(faces.ids)
    data = TrainData(x[:a], y[:a], ids[:a], x[a:b], y[a:b], ids[a:b])
    t = TrainingSettings(architecture="six_module_cnn", input_size=48, epochs=args.epochs,
                         batch_size=32, learning_rate=1e-3, augment=False, seed=args.seed)  # fmt: skip
    t0 = time.perf_counter()
    run = train_run(t, data, name="six_module_cnn", restore_best=True, n_classes=8)
    model = run.model
    if args.out:
        from pathlib import Path

        Path(args.out).mkdir(parents=True, exist_ok=True)
        model.save(Path(args.out) / "six_module_cnn.keras")
    print(f"six-module CNN, {a} training faces, {args.epochs} epochs (gazelab train loop, best "
          f"validation epoch kept: macro-F1 {run.best_f1:.3f}) in {time.perf_counter() - t0:.0f} s; "
          f"{model.count_params()} parameters")  # fmt: skip
    print("| similar | complementary | maps merged | removed as complementary | maps left "
          "| test accuracy before | after | parameters before | after |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for sim, comp in THRESHOLDS:
        _pruned, r = prune(model, x[a:b], y[a:b], similar_deg=sim, complementary_deg=comp,
                           x_test=x[b:], y_test=y[b:])  # fmt: skip
        print(f"| {sim:.0f}° | {comp:.0f}° | {len(r.plan.merged)} | {len(r.plan.complementary)} "
              f"| {len(r.plan.kept)} / {r.plan.n_maps} | {r.accuracy_before:.4f} "
              f"| {r.accuracy_after:.4f} | {r.parameters_before} | {r.parameters_after} |")  # fmt: skip
    print("(paper, SFEW / Kaggle: 8–10° removed maps with little or no loss of accuracy)")


if __name__ == "__main__":
    main()
