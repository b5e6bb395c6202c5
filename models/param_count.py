"""How many weights a ``.keras`` config.json makes Keras allocate, counted without Keras.

Keras builds every layer of a model file from its config before it reads a single weight:
a config of 2 KB that declares a Dense layer of 30 million units makes it allocate
gigabytes. :func:`count_parameters` walks the config the way Keras 2.14 builds it (each
layer at its ``build_config`` input shape, or at the shape its inbound layers give it) and
returns the number of weights (trainable and not), so the loader can refuse a file before
anything is built.

Shapes are tuples with the batch axis first (``None``); an unknown size is ``None`` and
counts as 0 weights, which is what Keras does with it (it refuses to build such a layer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Shape = tuple[int | None, ...]

_MODELS = frozenset({"Sequential", "Functional", "Model"})
_MERGE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})


class ConfigShapeError(ValueError):
    """A config whose shapes or sizes are not numbers Keras could build."""


def _int(value: Any, what: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigShapeError(f"{what} = {str(value)[:40]!r} is not an integer >= {lo}")
    return value


def _shape(value: Any, what: str) -> Shape | None:
    """A declared shape (``[null, 48, 48, 1]``), or ``None`` when absent or not a list."""
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or len(value) > 16:
        return None
    return tuple(None if v is None else _int(v, what) for v in value)


def _tuple(value: Any, n: int, what: str, default: int) -> tuple[int, ...]:
    if value is None:
        return (default,) * n
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigShapeError(f"{what} = {value!r} should have {n} values")
        return tuple(_int(v, what, 1) for v in value)
    return (_int(value, what, 1),) * n


def _prod(values: Sequence[int | None]) -> int | None:
    out = 1
    for v in values:
        if v is None:
            return None
        out *= v
    return out


def _known(v: int | None) -> int:
    return 0 if v is None else v


def _window(n: int | None, k: int, s: int, padding: str, dilation: int = 1) -> int | None:
    """Output length of a convolution or pooling window along one axis."""
    if n is None:
        return None
    if padding in ("same", "causal"):
        return -(-n // s)
    return max(0, (n - (k - 1) * dilation - 1) // s + 1)


def _spatial_rank(cls: str) -> int:
    return 3 if cls.endswith("3D") else 1 if cls.endswith("1D") else 2


def layer_parameters(cls: str, cfg: dict[str, Any], shapes: list[Shape]) -> tuple[int, Shape]:
    """Weights of one layer built at input shape(s) ``shapes``, and its output shape."""
    x: Shape = shapes[0] if shapes else (None,)
    cin = x[-1] if len(x) > 1 else None
    bias = bool(cfg.get("use_bias", True))
    rank = _spatial_rank(cls)
    if cls == "Dense":
        units = _int(cfg.get("units"), "units", 1)
        return _known(cin) * units + (units if bias else 0), (*x[:-1], units)
    if cls in ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "DepthwiseConv1D",
               "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"):  # fmt: skip
        k = _tuple(cfg.get("kernel_size"), rank, "kernel_size", 1)
        s = _tuple(cfg.get("strides"), rank, "strides", 1)
        d = _tuple(cfg.get("dilation_rate"), rank, "dilation_rate", 1)
        padding = str(cfg.get("padding", "valid")).lower()
        spatial = list(x[1:-1]) if len(x) == rank + 2 else [None] * rank
        c = _known(cin)
        kk = math.prod(k)
        if cls.startswith("Depthwise"):
            dm = _int(cfg.get("depth_multiplier", 1), "depth_multiplier", 1)
            out_c, params = c * dm, kk * c * dm + (c * dm if bias else 0)
        elif cls.startswith("Separable"):
            dm = _int(cfg.get("depth_multiplier", 1), "depth_multiplier", 1)
            out_c = _int(cfg.get("filters"), "filters", 1)
            params = kk * c * dm + c * dm * out_c + (out_c if bias else 0)
        else:
            out_c = _int(cfg.get("filters"), "filters", 1)
            groups = _int(cfg.get("groups", 1), "groups", 1)
            params = kk * (c // groups) * out_c + (out_c if bias else 0)
        if cls == "Conv2DTranspose":
            out_sp = [None if n is None else n * st + (max(kw - st, 0) if padding == "valid" else 0)
                      for n, kw, st in zip(spatial, k, s, strict=True)]  # fmt: skip
        else:
            out_sp = [_window(n, kw, st, padding, dl)
                      for n, kw, st, dl in zip(spatial, k, s, d, strict=True)]  # fmt: skip
        return params, (x[0], *out_sp, out_c)
    if cls in ("BatchNormalization", "LayerNormalization", "GroupNormalization"):
        axis = cfg.get("axis", -1)
        axes = axis if isinstance(axis, list) else [axis]
        sizes = []
        for a in axes:
            a = _int(a + len(x) if isinstance(a, int) and a < 0 else a, "axis")
            sizes.append(x[a] if a < len(x) else None)
        c = _known(_prod(sizes))
        per = int(bool(cfg.get("scale", True))) + int(bool(cfg.get("center", True)))
        return c * (per + (2 if cls == "BatchNormalization" else 0)), x
    if cls == "PReLU":
        shared = cfg.get("shared_axes") or []
        shared = shared if isinstance(shared, list) else [shared]
        dims = [1 if i in shared else v for i, v in enumerate(x[1:], start=1)]
        return _known(_prod(dims)), x
    if cls.startswith(("MaxPooling", "AveragePooling")):
        pool = _tuple(cfg.get("pool_size"), rank, "pool_size", 2)
        strides = cfg.get("strides")
        s = pool if strides is None else _tuple(strides, rank, "strides", 1)
        padding = str(cfg.get("padding", "valid")).lower()
        spatial = list(x[1:-1]) if len(x) == rank + 2 else [None] * rank
        out = [_window(n, p, st, padding) for n, p, st in zip(spatial, pool, s, strict=True)]
        return 0, (x[0], *out, cin)
    if cls.startswith(("GlobalAveragePooling", "GlobalMaxPooling")):
        if cfg.get("keepdims"):
            return 0, (x[0], *([1] * (len(x) - 2)), cin)
        return 0, (x[0], cin)
    if cls == "Flatten":
        return 0, (x[0], _prod(x[1:]))
    if cls == "Reshape":
        target = _shape(cfg.get("target_shape"), "target_shape") or ()
        return 0, (x[0], *target)
    if cls == "Permute":
        raw = cfg.get("dims")
        order: list[Any] = list(raw) if isinstance(raw, (list, tuple)) else []
        try:
            return 0, (x[0], *(x[int(i)] for i in order))
        except (IndexError, TypeError, ValueError):
            return 0, x
    if cls == "RepeatVector":
        return 0, (x[0], _int(cfg.get("n"), "n", 1), cin)
    if cls == "Resizing":
        h, w = _int(cfg.get("height"), "height", 1), _int(cfg.get("width"), "width", 1)
        return 0, (x[0], h, w, cin)
    if cls.startswith(("ZeroPadding", "Cropping", "UpSampling")):
        return 0, (x[0], *([None] * (len(x) - 2)), cin)  # sizes change; channels stay
    if cls == "Concatenate":
        axis = cfg.get("axis", -1)
        if axis in (-1, len(x) - 1) and all(len(s) == len(x) for s in shapes):
            total = _prod([s[-1] for s in shapes]) and sum(_known(s[-1]) for s in shapes)
            return 0, (*x[:-1], total or None)
        return 0, x
    return 0, x  # activations, dropout, merges (Add, ...): no weights, same shape


def _node_inputs(layer: dict[str, Any]) -> list[str]:
    """Names of the layers feeding a functional layer's first call (Keras 2 and 3 forms)."""
    nodes = layer.get("inbound_nodes")
    if not isinstance(nodes, list) or not nodes:
        return []
    first = nodes[0]
    names: list[str] = []
    stack: list[Any] = [first]
    while stack and len(names) < 4096:
        item = stack.pop()
        if isinstance(item, dict):
            hist = item.get("keras_history") or (item.get("config") or {}).get("keras_history")
            if isinstance(hist, list) and hist and isinstance(hist[0], str):
                names.append(hist[0])
                continue
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            if item and isinstance(item[0], str) and len(item) >= 3:
                names.append(item[0])  # ["input_1", 0, 0, {}]
            else:
                stack.extend(reversed(item))
    return names


def _build_shapes(layer: dict[str, Any]) -> list[Shape] | None:
    """The input shape(s) a layer's ``build_config`` makes Keras build it at, if any."""
    build = layer.get("build_config")
    if not isinstance(build, dict):
        return None
    declared = build.get("input_shape")
    if (
        isinstance(declared, (list, tuple))
        and declared
        and all(isinstance(v, (list, tuple)) for v in declared)
    ):
        found = [_shape(v, "build_config.input_shape") for v in declared[:4096]]
        return [s for s in found if s is not None] or None
    one = _shape(declared, "build_config.input_shape")
    return [one] if one is not None else None


def count_parameters(
    node: Any, input_shape: Shape | None = None, depth: int = 0
) -> tuple[int, Shape]:
    """Weights a model config makes Keras allocate, and the model's output shape.

    ``node`` is the config.json object (``{"class_name": "Functional", "config": ...}``) or
    a nested model layer of it; ``input_shape`` feeds a Sequential without an input layer.

    Raises
    ------
    ConfigShapeError
        A size that is not a non-negative integer, or models nested over 32 deep.
    """
    if depth > 32:
        raise ConfigShapeError("models nested over 32 deep")
    cls = node.get("class_name") if isinstance(node, dict) else None
    cfg = node.get("config") if isinstance(node, dict) else None
    if not isinstance(cfg, dict):
        return 0, input_shape or (None,)
    if cls not in _MODELS:
        shapes = _build_shapes(node) or [input_shape or (None,)]
        return layer_parameters(str(cls), cfg, shapes)
    layers = cfg.get("layers")
    layers = layers if isinstance(layers, list) else []
    total = 0
    if cls == "Sequential" or not any(isinstance(la, dict) and "inbound_nodes" in la
                                      for la in layers):  # fmt: skip
        shape = _shape(cfg.get("build_input_shape"), "build_input_shape") or input_shape
        for layer in layers:
            if not isinstance(layer, dict):
                continue
            lcfg = _config(layer)
            if layer.get("class_name") == "InputLayer":
                shape = _shape(lcfg.get("batch_input_shape") or lcfg.get("batch_shape"),
                               "batch_input_shape")  # fmt: skip
                continue
            declared = _build_shapes(layer)
            n, shape = _count_layer(layer, lcfg, declared or [shape or (None,)], depth)
            total += n
        return total, shape or (None,)
    outputs: dict[str, Shape] = {}
    last: Shape = (None,)
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        lcfg = _config(layer)
        name = str(layer.get("name") or lcfg.get("name") or "")
        if layer.get("class_name") == "InputLayer":
            last = _shape(lcfg.get("batch_input_shape") or lcfg.get("batch_shape"),
                          "batch_input_shape") or (None,)  # fmt: skip
            outputs[name] = last
            continue
        ins = [outputs.get(n, (None,)) for n in _node_inputs(layer)] or [(None,)]
        n, last = _count_layer(layer, lcfg, _build_shapes(layer) or ins, depth)
        total += n
        outputs[name] = last
    return total, last


def _config(layer: dict[str, Any]) -> dict[str, Any]:
    cfg = layer.get("config")
    return cfg if isinstance(cfg, dict) else {}


def _count_layer(
    layer: dict[str, Any], cfg: dict[str, Any], shapes: list[Shape], depth: int
) -> tuple[int, Shape]:
    cls = str(layer.get("class_name"))
    if cls in _MODELS:
        return count_parameters(layer, shapes[0], depth + 1)
    return layer_parameters(cls, cfg, shapes)
