"""Saliency on a tiny Keras CNN with a planted discriminative patch."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.analysis.saliency import (
    SaliencyError,
    model_heatmap,
    relevance,
    top_n_points,
)

pytestmark = pytest.mark.tf
PATCH = (slice(4, 10), slice(20, 26))  # rows, cols of the planted patch


def planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.5, size=(n, 32, 32, 1)).astype("float32")
    y = np.arange(n) % 2
    x[y == 1, PATCH[0], PATCH[1], 0] += 0.5
    return x, y


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()  # the same trained model on every run
    m = tf.keras.Sequential([
        tf.keras.layers.Input((32, 32, 1)),
        tf.keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(2, activation="softmax"),
    ])  # fmt: skip
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = planted(256, 0)
    m.fit(x, y, epochs=4, batch_size=32, verbose=0)
    xt, yt = planted(64, 1)
    assert m.evaluate(xt, yt, verbose=0)[1] > 0.95
    return m


def pointing_rate(rel: np.ndarray, margin: int = 2) -> float:
    hits = 0
    for r in rel:
        y, x = np.unravel_index(np.argmax(r), r.shape)
        hits += (PATCH[0].start - margin <= y < PATCH[0].stop + margin) and (
            PATCH[1].start - margin <= x < PATCH[1].stop + margin
        )
    return hits / len(rel)


def test_deep_taylor_is_non_negative_and_points_at_the_patch(model) -> None:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    x, _ = planted(32, 2)
    pos = x[1::2]
    rel = relevance(model, pos, "deep_taylor")
    assert rel.shape == (16, 32, 32) and rel.dtype == np.float32
    assert np.isfinite(rel).all() and rel.min() >= -1e-6 and rel.max() > 0
    chance = (10 * 10) / (32 * 32)  # the patch plus margin
    assert pointing_rate(rel) >= max(0.5, 3 * chance)
    inside = rel[:, PATCH[0], PATCH[1]].sum() / rel.sum()
    assert inside > 1.5 * (6 * 6) / (32 * 32)  # more relevance mass on the patch than its area
    again = relevance(model, pos[:4], "deep_taylor")
    assert np.allclose(again, rel[:4], rtol=1e-5, atol=1e-7)  # the same model every call
    assert tf.executing_eagerly()  # the caller's process stays eager
    assert model.predict(x[:2], verbose=0).shape == (2, 2)  # and its model usable


def test_gradient_and_gradcam_in_process(model) -> None:  # type: ignore[no-untyped-def]
    x, _ = planted(8, 3)
    for name in ("gradient", "gradcam"):
        rel = relevance(model, x[1::2, ..., 0], name)  # (N, H, W) input accepted
        assert rel.shape == (4, 32, 32) and np.isfinite(rel).all()
    assert pointing_rate(relevance(model, x[1::2], "gradient")) >= 0.5


def test_gradient_is_traced_once_per_model_and_equals_the_eager_tape(model) -> None:  # type: ignore[no-untyped-def]
    """The gradient analyzer is one compiled function per model, reused by
    every batch, with the same numbers as an eager GradientTape over the logits."""
    import tensorflow as tf

    from gazelab.analysis.saliency import _COMPILED, _pre_softmax

    x, _ = planted(10, 4)
    got = relevance(model, x, "gradient", batch_size=4)  # three batches
    relevance(model, x[:3], "gradient", neuron=1)
    fn = _COMPILED[model]["gradient"]
    assert fn.experimental_get_tracing_count() == 1
    logits = _pre_softmax(model)
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = logits(xt, training=False)
        sel = tf.gather(out, tf.argmax(out, axis=-1), axis=1, batch_dims=1)
    want = np.abs(tape.gradient(sel, xt).numpy()).sum(axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    one = relevance(model, x[:3], "gradient", neuron=1)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        sel = logits(xt, training=False)[:, 1]
    np.testing.assert_allclose(
        one, np.abs(tape.gradient(sel, xt).numpy()[:3]).sum(-1), rtol=1e-4, atol=1e-7
    )


def test_unsupported_layer_is_a_clear_error() -> None:
    import tensorflow as tf

    m = tf.keras.Sequential([
        tf.keras.layers.Input((8, 8, 1)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(4, activation="tanh"),  # deep Taylor needs ReLU-like units
        tf.keras.layers.Dense(2, activation="softmax"),
    ])  # fmt: skip
    with pytest.raises(SaliencyError, match="deep_taylor cannot explain"):
        relevance(m, np.zeros((1, 8, 8, 1)), "deep_taylor")
    with pytest.raises(SaliencyError, match="unknown analyzer"):
        relevance(m, np.zeros((1, 8, 8, 1)), "magic")
    with pytest.raises(SaliencyError, match="do not fit"):
        relevance(m, np.zeros((1, 9, 9, 1)), "gradient")


def test_top_n_points_and_model_heatmap() -> None:
    r = np.zeros((4, 6))
    r[1, 2], r[3, 5], r[0, 0] = 5.0, 4.0, 4.0
    pts = top_n_points(r, 3)
    assert pts.tolist() == [[2, 1], [0, 0], [5, 3]]  # ties in raster order
    assert top_n_points(r, 0).shape == (0, 2)
    with pytest.raises(SaliencyError, match="NaN"):
        top_n_points(np.full((2, 2), np.nan), 1)
    # the k largest by partition, then sorted: the first k of a full stable sort, with ties
    # across the k-th value (integers, signed zeros) in raster order, for every k
    rng = np.random.default_rng(0)
    for trial in range(400):
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        m = rng.integers(-2, 3, (h, w)).astype(float) if trial % 2 else rng.normal(size=(h, w))
        m[rng.random((h, w)) < 0.2] = -0.0
        for k in (1, int(rng.integers(1, h * w + 1)), h * w, h * w + 2):
            order = np.argsort(-m.ravel(), kind="stable")[:k]
            ys, xs = np.unravel_index(order, m.shape)
            assert top_n_points(m, k).tolist() == np.stack([xs, ys], axis=1).tolist()
    # one relevant pixel in a 10×10 map → one Gaussian at its centre in a 100×100 frame
    r2 = np.zeros((10, 10))
    r2[2, 7] = 1.0
    heat = model_heatmap(r2, 1, (100, 100), c=5.0, radius=15.0)
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert (x, y) in {(75, 25), (74, 24), (75, 24), (74, 25)} and heat.max() == pytest.approx(
        1, abs=0.02
    )
