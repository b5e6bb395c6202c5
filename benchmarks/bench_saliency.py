"""Saliency and comparison speed, on synthetic faces.

Prints deep-Taylor throughput (images/s, once traced; the first call's tracing
time apart) as a ratio to a plain gradient pass of the same model in the same
run, and the time per image of the model heatmap (top-n points → heatmap
Gaussians on the 1200×1200 stimulus frame) plus all map metrics against a
human heatmap.

    python benchmarks/bench_saliency.py [--n 256] [--size 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def eager_gradient(model, x):  # type: ignore[no-untyped-def]
    """The gradient analyzer before it was compiled: model.predict for the targets, then an
    eager tape over the logits model, rebuilt on every call."""
    import tensorflow as tf

    from gazelab.analysis.saliency import _pre_softmax

    logits_model = _pre_softmax(model)
    idx = np.argmax(model.predict(x, verbose=0), axis=-1)
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = logits_model(xt, training=False)
        sel = tf.gather(out, idx, axis=1, batch_dims=1)
    return np.abs(tape.gradient(sel, xt).numpy()).sum(axis=-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    import tensorflow as tf

    from gazelab.analysis.metrics import compare_maps
    from gazelab.analysis.saliency import model_heatmap, relevance
    from gazelab.gaze.geometry import DisplayGeometry
    from gazelab.gaze.heatmaps import HeatmapKernel, fixation_heatmap
    from gazelab.models.synthetic import synthetic_faces

    faces = synthetic_faces(args.n, size=args.size, seed=0)
    x = faces.images[..., None].astype("float32") / 255.0
    tf.keras.utils.set_random_seed(0)
    s = args.size
    model = tf.keras.Sequential([
        tf.keras.layers.Input((s, s, 1)),
        tf.keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(8, activation="softmax"),
    ])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, faces.labels, epochs=1, batch_size=32, verbose=0)

    relevance(model, x[:32], "gradient")  # warm up (traces the compiled gradient once)
    t = time.perf_counter()
    relevance(model, x, "gradient")
    grad_s = time.perf_counter() - t
    t = time.perf_counter()
    eager_gradient(model, x)  # the previous code: an eager tape over the whole set
    eager_s = time.perf_counter() - t
    t = time.perf_counter()
    relevance(model, x[:1], "deep_taylor")
    startup_s = time.perf_counter() - t
    t = time.perf_counter()
    rel = relevance(model, x, "deep_taylor")
    dt_s = time.perf_counter() - t
    n = args.n
    print(f"{n} images {s}×{s}, small CNN:")
    print(f"  gradient    {n / grad_s:8.1f} images/s, compiled once per model ({eager_s / grad_s:.2f}x"
          f" an eager GradientTape per call, {n / eager_s:.1f} images/s)")  # fmt: skip
    print(f"  deep Taylor {n / dt_s:8.1f} images/s once traced (the first call, tracing the"
          f" explainer for this model, took {startup_s:.2f} s)")  # fmt: skip
    print(f"  ratio deep Taylor / gradient throughput: {grad_s / dt_s:.3f}")

    k = HeatmapKernel.from_geometry(DisplayGeometry.from_diagonal())
    rng = np.random.default_rng(0)
    shape = (1200, 1200)
    m = 20
    t = time.perf_counter()
    for i in range(m):
        human = fixation_heatmap(rng.uniform(300, 900, (7, 2)), shape, k.c, k.radius)
        fix = np.zeros(shape)
        model_h = model_heatmap(rel[i], 7, shape, k.c, k.radius)
        fix[600, 600] = 1
        compare_maps(human, model_h, fixation_map=fix)
    per = (time.perf_counter() - t) / m
    print(f"  model heatmap + human heatmap + 8 metrics per image (1200×1200): {per * 1000:.0f} ms")


if __name__ == "__main__":
    main()
