"""Distinctiveness pruning (issue 9, seed 003) on synthetic faces.

Trains seed 003's six-module CNN (48×48 grey, 16 → 256 maps, global average pooling)
on synthetic faces, then prunes the last conv layer's 256 maps at the paper's two
threshold pairs (8° / 172° and 10° / 170°) and a wider one, planning on the
validation images and measuring on held-out test images. Prints accuracy and model
size (parameters) before and after, and the number of maps merged / removed.

    python benchmarks/bench_pruning.py [--n 3000] [--epochs 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

THRESHOLDS = ((8.0, 172.0), (10.0, 170.0), (20.0, 160.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=3000, help="synthetic faces (60/20/20 split)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import tensorflow as tf

    from gazelab.models.architectures import build_model, to_model_input
    from gazelab.models.pruning import prune
    from gazelab.models.synthetic import synthetic_faces

    faces = synthetic_faces(args.n, size=96, seed=args.seed)
    x = to_model_input(faces.images, (48, 48, 1))
    y = np.asarray(faces.labels)
    a, b = int(0.6 * len(x)), int(0.8 * len(x))
    tf.keras.utils.set_random_seed(args.seed)
    model = build_model("six_module_cnn", (48, 48, 1), 8)
    model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    t = time.perf_counter()
    model.fit(x[:a], y[:a], validation_data=(x[a:b], y[a:b]), epochs=args.epochs,
              batch_size=64, verbose=0)  # fmt: skip
    print(f"six-module CNN, {a} training faces, {args.epochs} epochs in "
          f"{time.perf_counter() - t:.0f} s; {model.count_params()} parameters")  # fmt: skip
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
