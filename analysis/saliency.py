"""Model relevance maps (docs/algorithms.md#saliency): deep Taylor, LRP, gradients and Grad-CAM, by name.

``deep_taylor`` (the paper's analyzer), ``deep_taylor_bounded`` and ``lrp_epsilon``
run in-process on TensorFlow 2 (:mod:`gazelab.analysis.lrp`): iNNvestigate's rules,
built in seconds for InceptionV3 / MobileNetV2 where iNNvestigate takes many minutes.
iNNvestigate itself stays available under ``*_innvestigate`` names and for
``lrp_alpha1beta0``, ``integrated_gradients`` and ``gradient_innvestigate``.

iNNvestigate 2.x runs on TensorFlow's graph mode: eager execution has to be
disabled before its analyzers are built, and Keras models built in graph mode
invalidate the eager ones of the same process (Keras swaps layer base classes
globally). So every iNNvestigate call runs in a short-lived *spawned* worker
process: the architecture (softmax stripped) goes as JSON and the weights as
arrays, the worker disables eager execution for itself only, rebuilds the
model, and analyzes the images in batches; its outputs are checked against the
caller's model, so a relevance map is never of a different model. The caller's
process stays eager and untouched. Like any spawn-based multiprocessing, a
script calling :func:`relevance` needs an ``if __name__ == "__main__":`` guard.

``gradient`` and ``gradcam`` are computed in-process with ``tf.GradientTape``.
TensorFlow is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.errors import GazelabError
from gazelab.plugins import Registry

LRP_ANALYZERS = ("deep_taylor", "deep_taylor_bounded", "lrp_epsilon")
"""Computed in-process by :mod:`gazelab.analysis.lrp` (the same rules as iNNvestigate)."""
INNVESTIGATE_ANALYZERS = {
    "deep_taylor_innvestigate": "deep_taylor",
    "lrp_epsilon_innvestigate": "lrp.epsilon",
    "deep_taylor_bounded_innvestigate": "deep_taylor.bounded",
    "lrp_alpha1beta0": "lrp.alpha_1_beta_0",
    "integrated_gradients": "integrated_gradients",
    "gradient_innvestigate": "gradient",
}
"""Run by iNNvestigate itself, in a spawned process (eager execution off there only)."""
INNVESTIGATE_KWARGS: dict[str, dict[str, float]] = {
    "deep_taylor_bounded_innvestigate": {"low": 0.0, "high": 1.0},  # models take [0, 1]
}

Explain = Callable[[Any, "NDArray[np.float32]", "int | None", int], "NDArray[np.float32]"]


@dataclass(frozen=True)
class Analyzer:
    """A registered relevance method: ``explain(model, batch, neuron, batch_size)``."""

    name: str
    explain: Explain
    help: str


class SaliencyError(GazelabError, RuntimeError):
    """The analyzer cannot explain this model (unsupported layer, bad input)."""


ANALYZER_REGISTRY: Registry[Analyzer] = Registry(
    "analyzer", "gazelab.analysis.analyzers", group="gazelab.analyzers", error=SaliencyError
)
"""Relevance methods by name: those defined here, the modules of
:mod:`gazelab.analysis.analyzers` and installed packages' ``gazelab.analyzers`` entry
points (imported on first use); :func:`relevance`, settings and CLI choices read it."""

ANALYZERS = ANALYZER_REGISTRY
"""The same registry: ``name in ANALYZERS``, ``list(ANALYZERS)`` (settings and CLI choices)."""


def register_analyzer(name: str, help: str) -> Callable[[Explain], Explain]:
    """Register ``explain(model, x, neuron, batch_size) -> (N, H, W)`` under ``name``."""

    def add(fn: Explain) -> Explain:
        ANALYZER_REGISTRY.add(name, Analyzer(name, fn, help))
        return fn

    return add


def _as_batch(images: ArrayLike, model: Any) -> NDArray[np.float32]:
    x = np.asarray(images, dtype=np.float32)
    want = tuple(model.input_shape[1:])
    if x.ndim == len(want):
        if want[-1] == 1 and tuple(x.shape) != want:
            x = x[..., None]  # (N, H, W) for a one-channel model
        else:
            x = x[None]  # a single image
    if tuple(x.shape[1:]) != want:
        raise SaliencyError(
            f"images of shape {x.shape[1:]} do not fit the model input {want};"
            " resize them (and scale like the training data) first"
        )
    return x


def relevance(
    model: Any,
    images: ArrayLike,
    analyzer: str = "deep_taylor",
    neuron: int | None = None,
    *,
    batch_size: int = 32,
) -> NDArray[np.float32]:
    """Relevance of every input pixel, ``(N, H, W)`` (channels summed).

    ``neuron``: the output unit to explain; ``None`` = the predicted class of each
    image. ``analyzer``: one of :data:`ANALYZERS`.
    """
    explain = ANALYZER_REGISTRY.get(analyzer).explain  # a SaliencyError listing the choices
    return explain(model, _as_batch(images, model), neuron, batch_size)


def _lrp(analyzer: str) -> Explain:
    def explain(model: Any, x: NDArray[np.float32], neuron: int | None, batch_size: int) -> Any:
        from gazelab.analysis.lrp import LRPError, LRPSettings, lrp_relevance

        try:
            return lrp_relevance(model, x, LRPSettings(analyzer), neuron, batch_size=batch_size)
        except LRPError as exc:
            raise SaliencyError(f"{analyzer} cannot explain model {model.name!r}: {exc}") from exc

    return explain


def _innvestigate(analyzer: str) -> Explain:
    def explain(model: Any, x: NDArray[np.float32], neuron: int | None, batch_size: int) -> Any:
        return _innvestigate_relevance(model, x, analyzer, neuron, batch_size)

    return explain


for _name in LRP_ANALYZERS:
    register_analyzer(_name, f"{_name} rules on TensorFlow 2 (gazelab.analysis.lrp)")(_lrp(_name))
for _name, _method in INNVESTIGATE_ANALYZERS.items():
    register_analyzer(_name, f"iNNvestigate's {_method!r}")(_innvestigate(_name))


def _innvestigate_relevance(
    model: Any, x: NDArray[np.float32], analyzer: str, neuron: int | None, batch_size: int
) -> NDArray[np.float32]:
    with tempfile.TemporaryDirectory(prefix="gazelab-saliency-") as tmp:
        # The architecture (softmax stripped) as JSON and the weights as arrays: a model
        # reloaded from a .keras file in graph mode comes back with fresh random weights.
        spec = Path(tmp) / "model.json"
        spec.write_text(_json_without_softmax(model.to_json()))
        np.savez(Path(tmp) / "weights.npz", *model.get_weights())
        np.save(Path(tmp) / "x.npy", x)
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            ok, out = pool.submit(
                _innvestigate_worker, tmp, INNVESTIGATE_ANALYZERS[analyzer], neuron, batch_size,
                INNVESTIGATE_KWARGS.get(analyzer, {}),
            ).result()  # fmt: skip
    if not ok:
        raise SaliencyError(f"{analyzer} cannot explain model {model.name!r}: {out}")
    rel, outputs = out
    mine = np.asarray(_pre_softmax(model)(x, training=False))
    if not np.allclose(outputs, mine, rtol=1e-4, atol=1e-5):
        worst = float(np.max(np.abs(outputs - mine)))
        raise SaliencyError(
            f"{analyzer}: the analyzed copy of model {model.name!r} does not reproduce its"
            f" outputs (largest difference {worst:.3g}); the relevance would be of another model"
        )
    return np.asarray(rel, dtype=np.float32)


def _innvestigate_worker(
    folder: str, analyzer: str, neuron: int | None, batch_size: int, options: dict[str, Any]
) -> tuple[bool, Any]:
    """Runs in a spawned process: eager execution is disabled here only.

    Returns ``(True, (relevance, model outputs))`` or ``(False, message)``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore")
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    import innvestigate

    try:
        model = tf.keras.models.model_from_json((Path(folder) / "model.json").read_text())
        with np.load(Path(folder) / "weights.npz") as w:
            model.set_weights([w[f"arr_{i}"] for i in range(len(w.files))])
        mode = "max_activation" if neuron is None else "index"
        kwargs: dict[str, Any] = {"neuron_selection_mode": mode, **options}
        an = innvestigate.create_analyzer(analyzer, model, **kwargs)
        x = np.load(Path(folder) / "x.npy")
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            r = an.analyze(xb) if neuron is None else an.analyze(xb, neuron_selection=neuron)
            out.append(np.asarray(r, dtype=np.float32).sum(axis=-1))
        outputs = np.asarray(model.predict(x, batch_size=batch_size), dtype=np.float32)
        return True, (np.concatenate(out), outputs)
    except Exception as exc:  # reported in the caller's process with the model's name
        return False, f"{type(exc).__name__}: {exc}"


def _json_without_softmax(model_json: str) -> str:
    """The model's JSON config with a linear output layer (done on the config, not with
    iNNvestigate's ``model_wo_softmax``, whose new layer clashes with existing names)."""
    import json

    spec = json.loads(model_json)
    layers = spec["config"]["layers"]
    outputs = spec["config"].get("output_layers")
    out_name = outputs[0][0] if outputs else layers[-1]["config"]["name"]
    for layer in layers:
        if (
            layer["config"].get("name") == out_name
            and layer["config"].get("activation") == "softmax"
        ):
            layer["config"]["activation"] = "linear"
    return json.dumps(spec)


def _targets(model: Any, x: NDArray[np.float32], neuron: int | None) -> NDArray[np.int64]:
    if neuron is not None:
        return np.full(len(x), int(neuron), dtype=np.int64)
    return np.asarray(np.argmax(model.predict(x, verbose=0), axis=-1), dtype=np.int64)


def _pre_softmax(model: Any) -> Any:
    import tensorflow as tf

    last = model.layers[-1]
    act = getattr(last, "activation", None)
    if act is not None and getattr(act, "__name__", "") == "softmax":
        cfg = last.get_config()
        cfg["activation"] = "linear"
        clone = type(last).from_config(cfg)
        out = clone(model.layers[-1].input)
        clone.set_weights(last.get_weights())
        return tf.keras.Model(model.inputs, out)
    return model


_COMPILED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
"""Per model: its traced gradient / Grad-CAM functions, built on first use."""


def _compiled(model: Any, kind: str) -> Any:
    """``kind`` ("gradient", "signed_gradient" or "gradcam") of ``model`` as one ``tf.function``, traced once
    per model and reused for every batch (like the LRP explainer), taking images and
    target units (``-1``: the predicted class, chosen inside the graph)."""
    import tensorflow as tf

    fns = _COMPILED.setdefault(model, {})
    if kind in fns:
        return fns[kind]
    logits_model = _pre_softmax(model)
    if kind == "gradcam":
        conv = [la for la in model.layers if len(getattr(la, "output_shape", ())) == 4]
        if not conv:
            raise SaliencyError(
                f"Grad-CAM needs a convolutional layer; model {model.name!r} has none"
            )
        net = tf.keras.Model(logits_model.inputs, [conv[-1].output, logits_model.output])
    else:
        net = logits_model

    def targets(out: Any, idx: Any) -> Any:
        return tf.where(idx < 0, tf.argmax(out, axis=-1, output_type=tf.int32), idx)

    def signed_gradient(x: Any, idx: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = net(x, training=False)
            sel = tf.gather(out, targets(out, idx), axis=1, batch_dims=1)
        return tape.gradient(sel, x)

    def gradient(x: Any, idx: Any) -> Any:
        return tf.reduce_sum(tf.abs(signed_gradient(x, idx)), axis=-1)

    def gradcam(x: Any, idx: Any) -> Any:
        with tf.GradientTape() as tape:
            feats, out = net(x, training=False)
            sel = tf.gather(out, targets(out, idx), axis=1, batch_dims=1)
        grads = tape.gradient(sel, feats)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * feats, axis=-1))[..., None]
        return tf.image.resize(cam, tf.shape(x)[1:3], method="bilinear")[..., 0]

    fn = tf.function(
        {"gradcam": gradcam, "signed_gradient": signed_gradient}.get(kind, gradient),
        input_signature=[
            tf.TensorSpec((None, *model.input_shape[1:]), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        ],
    )
    fns[kind] = fn
    return fn


def _run_compiled(
    model: Any, kind: str, x: NDArray[np.float32], neuron: int | None, batch_size: int
) -> NDArray[np.float32]:
    fn = _compiled(model, kind)
    out = []
    for k in range(0, len(x), max(1, batch_size)):
        xb = x[k : k + batch_size]
        idx = np.full(len(xb), -1 if neuron is None else int(neuron), dtype=np.int32)
        out.append(np.asarray(fn(xb, idx).numpy(), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, *x.shape[1:3]), np.float32)


def _gradient(model: Any, x: NDArray[np.float32], neuron: int | None) -> NDArray[np.float32]:
    """|∂ logit / ∂ input|, channels summed (compiled once per model)."""
    return _run_compiled(model, "gradient", x, neuron, 32)


def _gradcam(model: Any, x: NDArray[np.float32], neuron: int | None) -> NDArray[np.float32]:
    """Grad-CAM on the last convolutional layer, upsampled to the input size."""
    return _run_compiled(model, "gradcam", x, neuron, 32)


register_analyzer("gradient", "|∂ logit / ∂ input|, channels summed")(
    lambda model, x, neuron, batch_size: _run_compiled(model, "gradient", x, neuron, batch_size)
)
register_analyzer("gradcam", "Grad-CAM on the last convolutional layer, upsampled")(
    lambda model, x, neuron, batch_size: _run_compiled(model, "gradcam", x, neuron, batch_size)
)


def top_n_points(relevance_map: ArrayLike, n: int) -> NDArray[np.float64]:
    """The ``n`` most relevant pixels as ``(n, 2)`` (x, y), most relevant first.

    Ties are broken by raster order (row, then column), so the result is deterministic.
    """
    r = np.asarray(relevance_map, dtype=np.float64)
    if r.ndim != 2:
        raise SaliencyError(f"relevance map must be (H, W), got shape {r.shape}")
    if not np.isfinite(r).all():
        raise SaliencyError("relevance map contains NaN or infinite values")
    n = int(n)
    if n <= 0:
        return np.zeros((0, 2))
    flat = r.ravel()
    k = min(n, flat.size)
    if k < flat.size:  # the values down to the k-th largest (ties included, in raster order)
        kth = np.partition(flat, flat.size - k)[flat.size - k]
        cand = np.flatnonzero(flat >= kth)
        order = cand[np.argsort(-flat[cand], kind="stable")[:k]]
    else:
        order = np.argsort(-flat, kind="stable")
    ys, xs = np.unravel_index(order, r.shape)
    return np.stack([xs, ys], axis=1).astype(np.float64)


def model_points(
    relevance_map: ArrayLike, n: int, image_hw: tuple[int, int]
) -> NDArray[np.float64]:
    """docs/algorithms.md#model-heatmaps: the ``n`` most relevant pixels of a model-input relevance
    map, as image
    px ``(n, 2)`` of ``(x, y)`` (pixel centres; :func:`gaze.geometry.model_input_to_image`)."""
    from gazelab.gaze.geometry import model_input_to_image

    r = np.asarray(relevance_map, dtype=np.float64)
    return model_input_to_image(top_n_points(r, n), (r.shape[0], r.shape[1]), image_hw)


def model_heatmap(
    relevance_map: ArrayLike,
    n: int,
    image_hw: tuple[int, int],
    c: float,
    radius: float,
) -> NDArray[np.float64]:
    """docs/algorithms.md#model-heatmaps: the model heatmap in image px — the heatmap of
    docs/algorithms.md#heatmaps (``c``, ``radius`` in image
    px) of the :func:`model_points`."""
    from gazelab.gaze.heatmaps import fixation_heatmap

    return fixation_heatmap(model_points(relevance_map, n, image_hw), image_hw, c, radius)
