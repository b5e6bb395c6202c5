"""Layer-wise relevance propagation in TensorFlow 2: deep Taylor (z+ / zβ) and LRP-ε.

docs/algorithms.md#saliency explains a classifier with deep Taylor decomposition. iNNvestigate builds
its analyzers by re-creating the Keras graph layer by layer in graph mode, which
takes minutes for MobileNetV2 and longer for InceptionV3, and it has no
rule for ReLU6. This module implements the same rules directly: one forward pass
that keeps every layer's input, then one reverse sweep over the layers in a
``tf.function``, traced once per model and reused for every batch.

The rules are iNNvestigate's (``innvestigate.analyzer.deeptaylor.DeepTaylor`` and
``relevance_based.relevance_analyzer.LRPEpsilon``), so the maps are the same within
float32 rounding (``tests/test_lrp.py`` checks 1e-5 relative):

=====================  ==========================================  =====================
layer                  deep Taylor (``z+``; ``zβ`` on the input)    LRP-ε
=====================  ==========================================  =====================
Dense / Conv2D /       α1β0 without bias: ``x⁺·W⁺`` and ``x⁻·W⁻``   ``x·W + b``, ε with
DepthwiseConv2D        (``zβ``: ``x·W − l·W⁺ − h·W⁻``)               the sign of z
BatchNormalization     folded into the kernel layer before it;      ε on the affine map
                       otherwise relevance passes unchanged
ReLU, ReLU6,           relevance where the input is > 0             ReLU: the same;
Activation("relu")                                                  Activation: passes
Max pooling            to the maximum (the gradient)                the same
Average pooling        spread evenly (the gradient)                 z-rule
Add                    z-rule (``add_rule="copy"``: iNNvestigate)   z-rule
Concatenate, Flatten,  routed (the gradient)                        the same
Reshape, ZeroPadding,
Dropout
=====================  ==========================================  =====================

Two deliberate differences from iNNvestigate's DeepTaylor, both for conservation
(the input relevance sums to the explained score): ``Add`` splits relevance in
proportion to its summands instead of copying the whole of it into every summand
(which doubles it at every residual block); ``ReLU6`` passes the relevance of
saturated units instead of dropping it. Folding batch normalisation into the
convolution before it gives iNNvestigate's result whenever the BN scale
``γ/√(σ²+ε)`` is positive, and the z+ rule of the true linear map otherwise (LRP-ε
does not fold: the stabiliser would then enter once instead of twice). Not copied:
iNNvestigate 2.1.2 fuses BN as ``γ/√(σ⁴+ε)`` with shift ``β − μ/√(σ⁴+ε)``, and its
deep Taylor multiplies relevance by that scale; here BN is the true ``γ(x−μ)/√(σ²+ε)+β``.

The explained score is the selected logit (the softmax is skipped); deep Taylor
explains ``max(0, logit)``. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.errors import GazelabError

RULES = ("deep_taylor", "deep_taylor_bounded", "lrp_epsilon")
"""``deep_taylor``: z+ everywhere (iNNvestigate's ``deep_taylor``); ``deep_taylor_bounded``:
zβ on the first layer with the input range ``[low, high]`` (``deep_taylor.bounded``);
``lrp_epsilon``: the ε rule (``lrp.epsilon``)."""

_SAFE = 1e-7  # iNNvestigate's safe_divide: added where a denominator is exactly 0


class LRPError(GazelabError, ValueError):
    """The model has a layer the rule cannot explain."""


@dataclass(frozen=True)
class LRPSettings:
    """Parameters of a rule (stored with every relevance map that used them)."""

    rule: str = "deep_taylor"
    epsilon: float = 1e-7  # LRP-ε's stabiliser (iNNvestigate's default)
    low: float = 0.0  # zβ: input range (models here take [0, 1] images)
    high: float = 1.0
    fold_batch_norm: bool = True  # deep Taylor only: ε keeps BN a layer of its own
    add_rule: str = "z"  # "z": proportional; "copy": iNNvestigate's DeepTaylor

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise LRPError(f"unknown rule {self.rule!r}; choose one of {', '.join(RULES)}")
        if self.add_rule not in ("z", "copy"):
            raise LRPError(f"add_rule must be 'z' or 'copy', got {self.add_rule!r}")
        if not self.epsilon > 0:
            raise LRPError(f"epsilon must be > 0, got {self.epsilon}")
        if not self.high > self.low:
            raise LRPError(f"zβ needs low < high, got [{self.low}, {self.high}]")


@dataclass
class _Node:
    layer: Any
    kind: str
    inputs: list[str]
    output: str
    folded: Any = None  # (kernel, bias) with a following BatchNormalization folded in
    first: bool = False  # takes the model input (zβ applies here)
    nonneg_input: bool = False  # its input is known >= 0: the x⁻ half of z+ is skipped
    bn: tuple[Any, Any] | None = None  # (scale, shift) of a BatchNormalization
    skip: bool = False  # a BatchNormalization folded into the layer before it


@dataclass
class _Graph:
    input_key: str
    nodes: list[_Node] = field(default_factory=list)
    logits_key: str = ""
    logits_node: _Node | None = None  # kernel layer whose softmax is skipped


_KERNEL = ("Dense", "Conv2D", "DepthwiseConv2D")
_ROUTE = (
    "Flatten", "Reshape", "ZeroPadding2D", "Cropping2D", "Dropout", "SpatialDropout2D",
    "Concatenate", "Permute", "GaussianNoise", "GaussianDropout", "UpSampling2D",
)  # fmt: skip
_MAXPOOL = ("MaxPooling2D", "GlobalMaxPooling2D")
_AVGPOOL = ("AveragePooling2D", "GlobalAveragePooling2D")


def _key(t: Any) -> str:
    layer, node_index, tensor_index = t._keras_history
    return f"{layer.name}:{node_index}:{tensor_index}"


def _activation_name(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", str(act)) if act is not None else "linear"


def _classify(layer: Any, rule: str) -> str:
    name = type(layer).__name__
    if name in _KERNEL:
        act = _activation_name(layer)
        if rule != "lrp_epsilon" and act not in ("linear", "relu", "softmax"):
            raise LRPError(
                f"layer {layer.name!r} ({name}) has activation {act!r}; deep Taylor explains"
                " ReLU networks only (use gradient or gradcam for this model)"
            )
        return "kernel"
    if name == "ReLU":
        cfg = layer.get_config()
        if cfg.get("negative_slope") or cfg.get("threshold"):
            raise LRPError(f"layer {layer.name!r}: leaky / thresholded ReLU is not supported")
        return "relu"
    if name == "Activation":
        act = _activation_name(layer)
        if act == "relu" and rule != "lrp_epsilon":
            return "relu"
        if act in ("linear", "softmax", "relu"):
            return "identity"
        if rule == "lrp_epsilon":
            return "identity"  # iNNvestigate's LRP passes Activation layers unchanged
        raise LRPError(
            f"layer {layer.name!r} has activation {act!r}; deep Taylor explains ReLU"
            " networks only (use gradient or gradcam for this model)"
        )
    if name == "BatchNormalization":
        return "batch_norm"
    if name == "Add":
        return "add"
    if name in _MAXPOOL:
        return "route"
    if name in _AVGPOOL:
        return "avgpool"
    if name in _ROUTE or name == "InputLayer":
        return "route"
    if name == "Softmax":
        return "identity"
    raise LRPError(
        f"layer {layer.name!r} of type {name} has no relevance rule here; supported: "
        f"{', '.join(sorted({*_KERNEL, *_ROUTE, *_MAXPOOL, *_AVGPOOL}))}, ReLU,"
        " Activation, BatchNormalization, Add"
    )


def _bn_affine(layer: Any) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``y = x * scale + shift`` of a BatchNormalization in inference mode."""
    w = {v.name.split("/")[-1].split(":")[0]: v.numpy() for v in layer.weights}
    var = w["moving_variance"].astype(np.float64)
    gamma = w.get("gamma", np.ones_like(var))
    beta = w.get("beta", np.zeros_like(var))
    scale = gamma / np.sqrt(var + layer.epsilon)
    shift = beta - w["moving_mean"] * scale
    return scale.astype(np.float32), shift.astype(np.float32)


def _parse(model: Any, settings: LRPSettings) -> _Graph:
    """The model as a list of nodes in forward order, with BN folded where it can be."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise LRPError(f"model {model.name!r}: one input and one output are supported")
    graph = _Graph(input_key=_key(model.inputs[0]))
    consumers: dict[str, int] = {}
    by_output: dict[str, _Node] = {}
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if hasattr(layer, "layers"):
            raise LRPError(
                f"model {model.name!r} nests the model {layer.name!r}; flatten it "
                "(build the layers into one functional model) to explain it"
            )
        if len(layer._inbound_nodes) != 1:
            raise LRPError(f"layer {layer.name!r} is used more than once; not supported")
        ins = [_key(t) for t in tf_flatten(layer.input)]
        node = _Node(layer, _classify(layer, settings.rule), ins, _key(layer.output))
        for k in ins:
            consumers[k] = consumers.get(k, 0) + 1
        graph.nodes.append(node)
        by_output[node.output] = node
    # forward order: Keras lists functional layers topologically; verify it
    seen = {graph.input_key}
    for node in graph.nodes:
        missing = [k for k in node.inputs if k not in seen]
        if missing:
            raise LRPError(f"layer {node.layer.name!r} comes before its input {missing[0]}")
        seen.add(node.output)
    out_key = _key(model.outputs[0])
    last = by_output[out_key]
    # the explained score: the logits before a softmax
    if last.kind == "identity" and type(last.layer).__name__ in ("Softmax", "Activation"):
        graph.logits_key = last.inputs[0]
    else:
        graph.logits_key = out_key
        if last.kind == "kernel" and _activation_name(last.layer) != "linear":
            graph.logits_node = last
    for node in graph.nodes:
        if node.kind == "batch_norm":
            node.bn = _bn_affine(node.layer)
            prev = by_output.get(node.inputs[0])
            if (
                settings.fold_batch_norm
                and settings.rule != "lrp_epsilon"
                and prev is not None
                and prev.kind == "kernel"
                and prev.folded is None
                and _activation_name(prev.layer) == "linear"
                and consumers.get(prev.output, 0) == 1
                and prev.output != graph.logits_key
            ):
                prev.folded = _fold(prev.layer, *node.bn)
                node.skip = True
    # which inputs are known to be >= 0 (the x⁻ half of the z+ rule is then zero)
    nonneg: set[str] = set()
    if settings.low >= 0 and settings.rule != "lrp_epsilon":
        nonneg.add(graph.input_key)  # models here take [0, 1] images
    for node in graph.nodes:
        node.first = node.inputs == [graph.input_key]
        node.nonneg_input = all(k in nonneg for k in node.inputs)
        produces_nonneg = (
            node.kind == "relu"
            or (node.kind == "kernel" and _activation_name(node.layer) == "relu")
            or (node.kind in ("route", "avgpool") and node.nonneg_input)
        )
        if produces_nonneg and not node.skip:
            nonneg.add(node.output)
    return graph


def tf_flatten(x: Any) -> list[Any]:
    import tensorflow as tf

    return list(tf.nest.flatten(x))


def _fold(layer: Any, scale: NDArray[np.float32], shift: NDArray[np.float32]) -> Any:
    """Kernel and bias of ``BN(layer(x))`` as one linear layer."""
    kernel = layer.weights[0].numpy()
    bias = layer.bias.numpy() if getattr(layer, "use_bias", False) else np.zeros_like(scale)
    if type(layer).__name__ == "DepthwiseConv2D":
        k = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        k = kernel * scale
    return k.astype(np.float32), (bias * scale + shift).astype(np.float32)


def _linear(layer: Any, x: Any, kernel: Any, bias: Any = None) -> Any:
    """The layer's linear map with another kernel (and optionally a bias)."""
    import tensorflow as tf

    name = type(layer).__name__
    if name == "Dense":
        z = tf.tensordot(x, kernel, axes=[[x.shape.rank - 1], [0]])
    elif name == "Conv2D":
        if layer.groups != 1 or layer.data_format != "channels_last":
            raise LRPError(f"layer {layer.name!r}: grouped or channels_first conv not supported")
        z = tf.nn.convolution(
            x, kernel, strides=layer.strides, padding=layer.padding.upper(),
            dilations=layer.dilation_rate,
        )  # fmt: skip
    else:  # DepthwiseConv2D
        z = tf.nn.depthwise_conv2d(
            x, kernel, strides=(1, *layer.strides, 1), padding=layer.padding.upper(),
            dilations=layer.dilation_rate,
        )  # fmt: skip
    return z if bias is None else z + bias


def _safe(z: Any) -> Any:
    import tensorflow as tf

    return z + _SAFE * tf.cast(tf.equal(z, 0.0), z.dtype)


class Explainer:
    """Relevance maps of one model under one rule; build once, call per batch.

    ``Explainer(model, LRPSettings("deep_taylor"))(x, neuron)`` returns ``(N, H, W, C)``
    relevance. The model is read when the explainer is built: rebuild it after the
    weights change.
    """

    def __init__(self, model: Any, settings: LRPSettings | None = None) -> None:
        import tensorflow as tf

        self.settings = settings or LRPSettings()
        self.model = model
        self.graph = _parse(model, self.settings)
        self.fingerprint = _fingerprint(model)
        self._consts: dict[str, Any] = {}
        for node in self.graph.nodes:
            if node.kind == "kernel":
                k = node.folded[0] if node.folded is not None else node.layer.weights[0].numpy()
                b = node.folded[1] if node.folded is not None else _bias(node.layer)
                self._consts[node.output] = (
                    tf.constant(k),
                    tf.constant(np.maximum(k, 0)),
                    tf.constant(np.minimum(k, 0)),
                    tf.constant(b),
                )
        shape = (None, *model.input_shape[1:])
        self._fn = tf.function(
            self._explain,
            autograph=False,  # plain Python over the layer list: traced once, no conversion
            input_signature=[
                tf.TensorSpec(shape, tf.float32),
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((), tf.bool),
            ],
        )

    def __call__(self, x: ArrayLike, neuron: int | ArrayLike | None = None) -> NDArray[np.float32]:
        """Relevance of every input value, ``(N, H, W, C)`` float32.

        ``neuron``: the output unit to explain (one for all, or one per image); ``None``
        explains each image's highest-scoring class."""
        import tensorflow as tf

        xb = tf.convert_to_tensor(np.asarray(x, dtype=np.float32))
        n = int(xb.shape[0])
        if neuron is None:
            idx = tf.zeros((n,), tf.int32)
            pick_max = tf.constant(True)
        else:
            idx = tf.constant(np.broadcast_to(np.asarray(neuron, dtype=np.int32), (n,)))
            pick_max = tf.constant(False)
        return np.asarray(self._fn(xb, idx, pick_max).numpy(), dtype=np.float32)

    def logits(self, x: ArrayLike) -> NDArray[np.float32]:
        """The scores the rule explains (pre-softmax), ``(N, K)``."""
        import tensorflow as tf

        acts = self._forward(tf.convert_to_tensor(np.asarray(x, dtype=np.float32)))
        return np.asarray(acts[self.graph.logits_key].numpy(), dtype=np.float32)

    # -- the computation -------------------------------------------------------------
    def _forward(self, x: Any) -> dict[str, Any]:
        acts = {self.graph.input_key: x}
        for node in self.graph.nodes:
            ins = [acts[k] for k in node.inputs]
            if node is self.graph.logits_node:
                k, _, _, b = self._consts[node.output]
                acts[node.output] = _linear(node.layer, ins[0], k, b)
            elif node.kind == "kernel" and node.folded is not None:
                k, _, _, b = self._consts[node.output]
                y = _linear(node.layer, ins[0], k, b)
                acts[node.output] = y  # BN(conv(x)); the BN node copies it below
            elif node.skip:
                acts[node.output] = ins[0]
            else:
                acts[node.output] = node.layer(ins if len(ins) > 1 else ins[0], training=False)
        return acts

    def _explain(self, x: Any, idx: Any, pick_max: Any) -> Any:
        import tensorflow as tf

        acts = self._forward(x)
        logits = acts[self.graph.logits_key]
        idx = tf.where(pick_max, tf.cast(tf.argmax(logits, axis=-1), tf.int32), idx)
        score = tf.gather(logits, idx, axis=1, batch_dims=1)
        if self.settings.rule != "lrp_epsilon":
            score = tf.nn.relu(score)  # deep Taylor explains a positive output
        rel: dict[str, Any] = {
            self.graph.logits_key: tf.one_hot(idx, tf.shape(logits)[-1]) * score[:, None]
        }
        for node in reversed(self.graph.nodes):
            r = rel.pop(node.output, None)
            if r is None:
                continue  # not on the path to the explained output
            for k, r_in in zip(node.inputs, self._reverse(node, acts, r), strict=True):
                rel[k] = rel[k] + r_in if k in rel else r_in
        return rel[self.graph.input_key]

    def _reverse(self, node: _Node, acts: dict[str, Any], r: Any) -> list[Any]:
        import tensorflow as tf

        xs = [acts[k] for k in node.inputs]
        rule = self.settings.rule
        if node.kind == "kernel":
            return [self._kernel_rule(node, xs[0], r)]
        if node.kind == "identity" or node.skip:
            return [r]
        if node.kind == "relu":
            return [r * tf.cast(xs[0] > 0, r.dtype)]
        if node.kind == "batch_norm":
            if rule == "lrp_epsilon":
                scale, shift = node.bn  # type: ignore[misc]
                z = xs[0] * scale + shift
                return [xs[0] * scale * r / self._eps_div(z)]
            return [r]
        if node.kind == "add" and (rule == "lrp_epsilon" or self.settings.add_rule == "z"):
            s = r / _safe(tf.add_n(xs))
            return [xi * s for xi in xs]
        if node.kind == "avgpool" and rule == "lrp_epsilon":
            with tf.GradientTape() as tape:
                tape.watch(xs[0])
                z = node.layer(xs[0])
            return [xs[0] * tape.gradient(z, xs[0], output_gradients=r / _safe(z))]
        # routing layers, max / average pooling (deep Taylor), Add with add_rule="copy"
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = node.layer(xs if len(xs) > 1 else xs[0], training=False)
        return list(tape.gradient(y, xs, output_gradients=r))

    def _eps_div(self, z: Any) -> Any:
        import tensorflow as tf

        return z + (tf.cast(z >= 0, z.dtype) * 2 - 1) * self.settings.epsilon

    def _kernel_rule(self, node: _Node, x: Any, r: Any) -> Any:
        import tensorflow as tf

        k, kp, kn, b = self._consts[node.output]
        layer, rule = node.layer, self.settings.rule
        if rule == "lrp_epsilon":
            with tf.GradientTape() as tape:
                tape.watch(x)
                z = _linear(layer, x, k, b)
            return x * tape.gradient(z, x, output_gradients=r / self._eps_div(z))
        if rule == "deep_taylor_bounded" and node.first:
            low = tf.ones_like(x) * self.settings.low
            high = tf.ones_like(x) * self.settings.high
            with tf.GradientTape(persistent=True) as tape:
                tape.watch([x, low, high])
                a = _linear(layer, x, k)
                bl = _linear(layer, low, kp)
                ch = _linear(layer, high, kn)
            s = r / _safe(a - bl - ch)
            out = (
                x * tape.gradient(a, x, output_gradients=s)
                - low * tape.gradient(bl, low, output_gradients=s)
                - high * tape.gradient(ch, high, output_gradients=s)
            )
            del tape
            return out
        # z+ (α1β0 without bias): positive inputs through positive weights, and negative
        # inputs through negative weights
        if node.nonneg_input:
            with tf.GradientTape() as tape:
                tape.watch(x)
                zp = _linear(layer, x, kp)
            return x * tape.gradient(zp, x, output_gradients=r / _safe(zp))
        xp, xn = tf.nn.relu(x), tf.minimum(x, 0.0)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([xp, xn])
            zp = _linear(layer, xp, kp)
            zn = _linear(layer, xn, kn)
        s = r / _safe(zp + zn)
        out = xp * tape.gradient(zp, xp, output_gradients=s) + xn * tape.gradient(
            zn, xn, output_gradients=s
        )
        del tape
        return out


def _bias(layer: Any) -> NDArray[np.float32]:
    if getattr(layer, "use_bias", False) and layer.bias is not None:
        return np.asarray(layer.bias.numpy(), dtype=np.float32)
    return np.zeros(int(layer.output_shape[-1]), dtype=np.float32)


_EXPLAINERS: weakref.WeakKeyDictionary[Any, dict[LRPSettings, Explainer]] = (
    weakref.WeakKeyDictionary()
)


def explainer(model: Any, settings: LRPSettings) -> Explainer:
    """The model's explainer for these settings, built on first use and kept while the
    model lives (built again when the weights have changed since)."""
    per_model = _EXPLAINERS.setdefault(model, {})
    found = per_model.get(settings)
    if found is not None and found.fingerprint == _fingerprint(model):
        return found
    ex = Explainer(model, settings)
    per_model[settings] = ex
    return ex


def _fingerprint(model: Any) -> tuple[float, ...]:
    """A cheap change detector for the weights (sum and first value of every array)."""
    return tuple(float(np.asarray(w).ravel()[:1].sum()) + float(np.asarray(w).sum())
                 for w in model.get_weights())  # fmt: skip


def lrp_relevance(
    model: Any,
    x: ArrayLike,
    settings: LRPSettings,
    neuron: int | None = None,
    *,
    batch_size: int = 32,
) -> NDArray[np.float32]:
    """``(N, H, W)`` relevance (channels summed) in batches, with the rule's explainer."""
    ex = explainer(model, settings)
    xa = np.asarray(x, dtype=np.float32)
    out = [ex(xa[i : i + batch_size], neuron).sum(axis=-1) for i in range(0, len(xa), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, *xa.shape[1:3]), np.float32)
