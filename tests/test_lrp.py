"""The TensorFlow 2 LRP rules (analysis/lrp.py): equal to iNNvestigate, conservative, reused."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.analysis.saliency import SaliencyError, relevance

pytestmark = pytest.mark.tf
REL_TOL = 1e-5


def _unit_batch_norm(model, seed: int = 0) -> None:  # type: ignore[no-untyped-def]
    """BN with scale exactly 1 and a random shift. iNNvestigate fuses BN as
    γ/√(σ⁴+ε) and −μ/√(σ⁴+ε)+β (σ² squared, γ missing from the shift), so only a unit
    scale and μ = 0 give the true BN in both implementations."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            g, b, mu, var = layer.get_weights()
            eps = layer.epsilon
            layer.set_weights([
                np.full_like(g, np.sqrt(1 + eps)), rng.normal(0, 0.2, b.shape).astype("f4"),
                np.zeros_like(mu), np.ones_like(var),
            ])  # fmt: skip


def plain_model():  # type: ignore[no-untyped-def]
    """Conv (ReLU inside), max pooling, conv → BN → ReLU layer, average pooling, a
    1×1 branch concatenated, flatten, dense: everything but Add."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    L = tf.keras.layers
    i = L.Input((16, 16, 3))
    t = L.Conv2D(6, 3, padding="same", activation="relu")(i)
    t = L.MaxPooling2D()(t)
    t = L.Conv2D(8, 3, padding="same")(t)
    t = L.BatchNormalization()(t)
    t = L.ReLU(name="relu_layer")(t)  # a name iNNvestigate's own ReLU cannot clash with
    t = L.AveragePooling2D()(t)
    t = L.Concatenate()([t, L.Conv2D(4, 1, activation="relu")(t)])
    t = L.Flatten()(t)
    t = L.Dense(10, activation="relu")(t)
    m = tf.keras.Model(i, L.Dense(4, activation="softmax")(t), name="plain")
    _unit_batch_norm(m)
    return m


def residual_model(  # type: ignore[no-untyped-def]
    activation_layers: bool = False, zero_bias: bool = False, global_pool: bool = True
):
    """Two residual Adds, BN, global average pooling. ``activation_layers``: ReLU as
    ``Activation("relu")`` layers (iNNvestigate's LRP rejects ``ReLU`` layers)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(2)
    L = tf.keras.layers
    seeds = iter(range(100))

    def init():  # type: ignore[no-untyped-def]
        return "zeros" if zero_bias else tf.keras.initializers.RandomNormal(0, 0.1, next(seeds))

    def act(t, name):  # type: ignore[no-untyped-def]
        return L.Activation("relu", name=name)(t) if activation_layers else L.ReLU(name=name)(t)

    i = L.Input((12, 12, 3))
    a = L.Conv2D(6, 3, padding="same", activation="relu", bias_initializer=init())(i)
    b = act(
        L.BatchNormalization()(L.Conv2D(6, 3, padding="same", bias_initializer=init())(a)), "r1"
    )
    t = L.Add(name="add_a")([a, b])
    c = L.Conv2D(6, 3, padding="same", activation="relu", bias_initializer=init())(t)
    t = L.Add(name="add_b")([t, c])
    t = L.MaxPooling2D()(t)
    t = L.GlobalAveragePooling2D()(t) if global_pool else L.Flatten()(t)
    t = L.Dense(8, activation="relu", bias_initializer=init())(t)
    m = tf.keras.Model(i, L.Dense(3, activation="softmax", bias_initializer=init())(t), name="res")
    _unit_batch_norm(m)
    if zero_bias:
        for layer in m.layers:
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                g, _, mu, var = layer.get_weights()
                layer.set_weights([g, np.zeros_like(g), mu, var])
    return m


def images(n: int, size: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype("float32")


def close(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest difference relative to the largest relevance of the same image."""
    scale = np.abs(theirs).reshape(len(theirs), -1).max(axis=1)
    return float((np.abs(ours - theirs).reshape(len(ours), -1).max(axis=1) / scale).max())


def test_deep_taylor_equals_innvestigate() -> None:
    m = plain_model()
    x = images(6, 16)
    ours = relevance(m, x, "deep_taylor")
    theirs = relevance(m, x, "deep_taylor_innvestigate")
    assert np.abs(theirs).max() > 0
    assert close(ours, theirs) < REL_TOL
    # an explicitly chosen class as well as the predicted one
    assert close(relevance(m, x, "deep_taylor", neuron=2),
                 relevance(m, x, "deep_taylor_innvestigate", neuron=2)) < REL_TOL  # fmt: skip


def test_bounded_deep_taylor_equals_innvestigate() -> None:
    m = plain_model()
    x = images(4, 16, seed=4)
    ours = relevance(m, x, "deep_taylor_bounded")
    assert close(ours, relevance(m, x, "deep_taylor_bounded_innvestigate")) < REL_TOL
    assert close(ours, relevance(m, x, "deep_taylor")) > 1e-3  # zβ really differs from z+


def test_deep_taylor_with_add_copy_rule_equals_innvestigate() -> None:
    from gazelab.analysis.lrp import LRPSettings, lrp_relevance

    m = residual_model()
    x = images(4, 12)
    ours = lrp_relevance(m, x, LRPSettings("deep_taylor", add_rule="copy"))
    assert close(ours, relevance(m, x, "deep_taylor_innvestigate")) < REL_TOL


def test_lrp_epsilon_equals_innvestigate() -> None:
    m = residual_model(activation_layers=True)
    x = images(4, 12)
    ours = relevance(m, x, "lrp_epsilon")
    theirs = relevance(m, x, "lrp_epsilon_innvestigate")
    assert close(ours, theirs) < REL_TOL
    assert ours.min() < 0 < ours.max()  # ε keeps negative evidence; z+ does not


def test_deep_taylor_conserves_the_explained_score() -> None:
    """z+ hands every unit's relevance to its inputs in proportion to their positive
    contributions, Add splits in proportion: the input relevance sums to max(0, logit).
    (Average pooling is left out: its rule, iNNvestigate's, is the gradient, which also
    hands relevance to zero activations that the ReLU before them then drops.)"""
    from gazelab.analysis.lrp import Explainer, LRPSettings

    m = residual_model(zero_bias=True, global_pool=False)
    x = images(8, 12)
    ex = Explainer(m, LRPSettings("deep_taylor"))
    total = ex(x).sum(axis=(1, 2, 3))
    score = np.maximum(ex.logits(x).max(axis=1), 0)
    assert (score > 0).sum() >= 4
    assert np.allclose(total, score, rtol=REL_TOL, atol=0)  # 0 where the best logit is < 0
    assert ex(x).min() >= 0  # z+ on [0, 1] images: no negative relevance


def test_lrp_epsilon_conserves_on_mobilenet_v2() -> None:
    """MobileNetV2 (ReLU6, DepthwiseConv2D, BN folded, residual Adds): with zero biases and
    BN shifts, LRP-ε's input relevance sums to the logit (ε = 1e-7 absorbs nothing)."""
    import tensorflow as tf

    from gazelab.analysis.lrp import Explainer, LRPSettings

    tf.keras.utils.set_random_seed(0)
    m = tf.keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), weights=None, classes=5, alpha=0.35
    )
    x = images(8, 32)
    for layer in m.layers:  # realistic activation scales: BN statistics of a batch
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = 0.0
    m(x, training=True)
    for layer in m.layers:
        w = layer.get_weights()
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.set_weights([w[0], np.zeros_like(w[1]), np.zeros_like(w[2]), w[3]])
        elif getattr(layer, "use_bias", False):
            layer.set_weights([*w[:-1], np.zeros_like(w[-1])])
    ex = Explainer(m, LRPSettings("lrp_epsilon"))
    total = ex(x).sum(axis=(1, 2, 3))
    score = ex.logits(x).max(axis=1)
    assert np.allclose(total, score, rtol=1e-4, atol=0)
    # deep Taylor on the same net: z+ leaks a little where linear bottlenecks go negative
    dt = Explainer(m, LRPSettings("deep_taylor"))
    assert sum(n.folded is not None for n in dt.graph.nodes) == 52  # every conv's BN folded
    ratio = dt(x).sum(axis=(1, 2, 3)) / np.maximum(score, 1e-12)
    assert ((ratio > 0.9) & (ratio <= 1 + 1e-4)).all()
    # the scores explained are the model's own logits
    probs = m.predict(x, verbose=0)
    assert np.allclose(tf.nn.softmax(ex.logits(x)).numpy(), probs, atol=1e-5)


def test_explainer_is_built_once_and_rebuilt_after_training() -> None:
    from gazelab.analysis.lrp import LRPSettings, explainer

    m = plain_model()
    first = explainer(m, LRPSettings("deep_taylor"))
    assert explainer(m, LRPSettings("deep_taylor")) is first
    assert explainer(m, LRPSettings("lrp_epsilon")) is not first
    m.set_weights([w * 1.5 for w in m.get_weights()])
    assert explainer(m, LRPSettings("deep_taylor")) is not first


def test_unsupported_layers_are_named() -> None:
    import tensorflow as tf

    L = tf.keras.layers
    m = tf.keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(2, 3, activation="tanh"),
                             L.Flatten(), L.Dense(2, activation="softmax")], name="tanh_net")  # fmt: skip
    with pytest.raises(SaliencyError, match="deep_taylor.*tanh_net.*tanh"):
        relevance(m, np.zeros((1, 8, 8, 1)), "deep_taylor")
    m2 = tf.keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(2, 3), L.LayerNormalization(),
                              L.Flatten(), L.Dense(2)], name="ln_net")  # fmt: skip
    with pytest.raises(SaliencyError, match="LayerNormalization has no relevance rule"):
        relevance(m2, np.zeros((1, 8, 8, 1)), "lrp_epsilon")


def test_settings_offer_exactly_the_registered_analyzers() -> None:
    import dataclasses

    from gazelab.analysis.saliency import ANALYZERS
    from gazelab.settings import AnalysisSettings

    field = {f.name: f for f in dataclasses.fields(AnalysisSettings)}["analyzer"]
    assert tuple(field.metadata["choices"]) == ANALYZERS.names()
