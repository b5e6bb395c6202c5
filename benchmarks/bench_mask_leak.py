"""Do masks alone give the class away?

A mask should say *where* to look, not *what* the expression is: on real faces every
expression uses the same features (brows, eyes, nose, mouth). Here a nearest-centroid
classifier sees only binary masks of synthetic faces (fit on half the faces, scored on
the other half) and its accuracy is compared with chance (1/8):

- ``regions``: the faces' diagnostic regions (``regions > 0``);
- ``observer``: a simulated observer's contour mask (fixations drawn from the regions as
  the tracker simulator draws them, the heatmap kernel (docs/algorithms.md#heatmaps) of the reference set-up);
- ``negative`` / ``mean`` / ``perceptive``: model masks from a small Trainer's deep Taylor
  relevance (skipped with ``--no-model``);
- ``<alg> (edges)``: the same three algorithms on the image's own gradient magnitude
  instead of a model's relevance — no model and no label involved. Any mask that
  follows the image's features inherits the features' shapes, which is where the class
  lives; these lines show how much of the model masks' leak that alone explains.

Goal: the region and observer masks at most 1.5× chance (the faces' design). The images
themselves must stay learnable: the Trainer's validation macro-F1 is printed beside chance.

    python benchmarks/bench_mask_leak.py [--n 1600] [--size 32] [--trainer-epochs 4] [--no-model]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from numpy.typing import NDArray

CHANCE = 1 / 8
GOAL = 1.5


def nearest_centroid_accuracy(masks: NDArray[np.bool_], labels: NDArray[np.int64]) -> float:
    """Fit class centroids of the flattened masks on the even-indexed faces, classify the
    odd-indexed ones by the nearest centroid (Euclidean); returns the accuracy."""
    x = masks.reshape(len(masks), -1).astype(np.float64)
    fit, test = np.arange(0, len(x), 2), np.arange(1, len(x), 2)
    classes = np.unique(labels[fit])
    centroids = np.stack([x[fit][labels[fit] == c].mean(axis=0) for c in classes])
    d = ((x[test][:, None, :] - centroids[None]) ** 2).sum(axis=2)
    return float(np.mean(classes[d.argmin(axis=1)] == labels[test]))


def observer_masks(
    regions: NDArray[np.float32], fixations: int, c: float, radius: float, seed: int
) -> NDArray[np.bool_]:
    """Contour masks of ``fixations`` points per face drawn with probability ∝ regions (as
    the tracker simulator's observer draws its targets), kernel ``c`` / ``radius`` in map
    pixels."""
    from gazelab.gaze.heatmaps import fixation_heatmap

    rng = np.random.default_rng(seed)
    n, h, w = regions.shape
    out = np.empty((n, h, w), dtype=bool)
    for i in range(n):
        p = regions[i].ravel().astype(np.float64)
        p = p / p.sum() if p.sum() > 0 else np.full(p.size, 1 / p.size)
        k = rng.choice(p.size, size=fixations, p=p)
        xy = np.stack([k % w, k // w], axis=1) + rng.random((fixations, 2))
        out[i] = fixation_heatmap(xy, (h, w), c, radius) > 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1600, help="faces (half fit, half scored)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--fixations", type=int, default=6, help="simulated fixations per face")
    ap.add_argument("--trainer-epochs", type=int, default=4)
    ap.add_argument("--points", type=int, default=7, help="n for perceptive masks")
    ap.add_argument("--no-model", action="store_true", help="skip the model masks (no TF)")
    args = ap.parse_args()

    from gazelab.models.export import relevance_kernel
    from gazelab.models.synthetic import synthetic_faces
    from gazelab.settings import Settings

    t0 = time.monotonic()
    settings = Settings()
    c, radius = relevance_kernel(settings, args.size)  # the heatmap kernel at this size
    faces = synthetic_faces(args.n, size=args.size, seed=300)
    masks: dict[str, NDArray[np.bool_]] = {
        "regions": faces.regions > 0,
        "observer": observer_masks(faces.regions, args.fixations, c, radius, seed=1),
    }
    from scipy import ndimage

    from gazelab.models.masks import MaskParameters, model_mask

    mp = MaskParameters(settings.masks.negative_fraction, args.points, c, radius)
    gray = faces.images.astype(np.float64)
    edges = np.hypot(ndimage.sobel(gray, axis=1), ndimage.sobel(gray, axis=2))
    for alg in ("negative", "mean", "perceptive"):
        masks[f"{alg} (edges)"] = np.stack([model_mask(e, alg, mp) for e in edges])
    trainer_f1 = None
    if not args.no_model:
        from gazelab.analysis.cache import cached_relevance
        from gazelab.models.architectures import to_model_input
        from gazelab.models.training import TrainData, train_run
        from gazelab.settings import TrainingSettings

        shape = (args.size, args.size, 1)
        tr = synthetic_faces(args.n, size=args.size, seed=100)
        va = synthetic_faces(args.n // 4, size=args.size, seed=200)
        data = TrainData(to_model_input(tr.images, shape), tr.labels, list(tr.ids),
                         to_model_input(va.images, shape), va.labels, list(va.ids))  # fmt: skip
        t = TrainingSettings(architecture="small_cnn", input_size=args.size,
                             epochs=args.trainer_epochs, seed=1, augment=False)  # fmt: skip
        res = train_run(t, data, name="trainer")
        trainer_f1 = res.best_f1
        rel, _ = cached_relevance(res.model, to_model_input(faces.images, shape), "deep_taylor",
                                  None, batch_size=64, chunk=len(faces.images))  # fmt: skip
        for alg in ("negative", "mean", "perceptive"):
            masks[alg] = np.stack([model_mask(r, alg, mp) for r in rel])

    print(f"{args.n} synthetic faces at {args.size} px; nearest-centroid accuracy of the class "
          f"from the binary mask alone (chance {CHANCE:.3f}, goal <= {GOAL}x chance)")  # fmt: skip
    print(f"{'mask':<20} {'kept':>6} {'accuracy':>9} {'x chance':>9}")
    worst = 0.0
    for name, m in masks.items():
        acc = nearest_centroid_accuracy(m, faces.labels)
        if name in ("regions", "observer"):
            worst = max(worst, acc / CHANCE)
        print(f"{name:<20} {m.mean():>6.1%} {acc:>9.3f} {acc / CHANCE:>8.2f}x")
    print(f"faces' own masks (regions, observer): worst {worst:.2f}x chance "
          f"({'meets' if worst <= GOAL else 'misses'} the goal <= {GOAL}x)")  # fmt: skip
    if trainer_f1 is not None:
        print(f"images learnable: Trainer (small CNN, {args.trainer_epochs} epochs) validation "
              f"macro-F1 {trainer_f1:.3f} = {trainer_f1 / CHANCE:.1f}x chance")  # fmt: skip
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
