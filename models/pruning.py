"""Distinctiveness pruning of a convolution layer's feature maps (Narayan & Ge; Gedeon's
"distinctiveness" applied per feature map).

Each feature map of the pruned layer is described by its activation vector over the
validation samples (the map's value after global average pooling, one coordinate per
sample), min–max normalised to ``[-0.5, 0.5]``. The angle between two such vectors says
how alike the maps behave: near 0° they do the same work, near 180° they cancel out.

- pairs under the *similarity* threshold: one map is removed and its outgoing weights
  are added to the other's (so an exact duplicate leaves the outputs unchanged);
- pairs over the *complementarity* threshold: both maps are removed;
- never both maps of a similar pair: pairs are taken most alike first, and a pair with
  a map already removed is skipped.

:func:`distinctiveness_plan` is the pure part (activations → plan);
:func:`prune_model` rebuilds the Keras model with fewer channels; :func:`prune`
does both and measures accuracy before and after. TensorFlow is imported inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.errors import GazelabError
from gazelab.models.training import accuracy


class PruningError(GazelabError, ValueError):
    """The layer cannot be pruned (not a conv followed by the supported layers)."""


@dataclass(frozen=True)
class PruningPlan:
    """Which feature maps go. ``merged``: removed map → the map that took its weights."""

    n_maps: int
    similar_deg: float
    complementary_deg: float
    merged: dict[int, int] = field(default_factory=dict)
    complementary: tuple[int, ...] = ()

    @property
    def removed(self) -> list[int]:
        return sorted({*self.merged, *self.complementary})

    @property
    def kept(self) -> list[int]:
        gone = set(self.removed)
        return [i for i in range(self.n_maps) if i not in gone]


def normalised_activations(acts: ArrayLike) -> NDArray[np.float64]:
    """``(n_samples, n_maps)`` activations → each map min–max scaled to ``[-0.5, 0.5]``
    (a constant map becomes all zeros: it has no direction)."""
    a = np.asarray(acts, dtype=np.float64)
    if a.ndim != 2:
        raise PruningError(f"activations must be (samples, maps), got shape {a.shape}")
    lo, hi = a.min(axis=0), a.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (a - lo) / span - 0.5, 0.0)


def pairwise_angles(acts: ArrayLike) -> NDArray[np.float64]:
    """Angles in degrees between the normalised activation vectors, ``(n_maps, n_maps)``;
    NaN for a map without direction (constant over the samples)."""
    v = normalised_activations(acts)
    norm = np.linalg.norm(v, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (v.T @ v) / np.outer(norm, norm)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def distinctiveness_plan(
    acts: ArrayLike, similar_deg: float = 10.0, complementary_deg: float = 170.0
) -> PruningPlan:
    """The maps to merge and to remove, from activations ``(n_samples, n_maps)``."""
    if not 0 <= similar_deg < complementary_deg <= 180:
        raise PruningError(
            f"thresholds must satisfy 0 <= similar < complementary <= 180, got "
            f"{similar_deg} and {complementary_deg}"
        )
    ang = pairwise_angles(acts)
    n = ang.shape[0]
    iu = np.triu_indices(n, k=1)
    pairs = [(float(ang[i, j]), int(i), int(j)) for i, j in zip(*iu, strict=True)
             if np.isfinite(ang[i, j])]  # fmt: skip
    removed: set[int] = set()
    merged: dict[int, int] = {}
    for _a, i, j in sorted(p for p in pairs if p[0] < similar_deg):
        if i in removed or j in removed:
            continue  # never both maps of a similar pair
        merged[j] = i
        removed.add(j)
    complementary: list[int] = []
    for _a, i, j in sorted((p for p in pairs if p[0] > complementary_deg), reverse=True):
        if i in removed or j in removed:
            continue
        complementary += [i, j]
        removed.update((i, j))
    return PruningPlan(n, similar_deg, complementary_deg, merged, tuple(sorted(complementary)))


# -- the model surgery -------------------------------------------------------------------
_PASS = ("BatchNormalization", "ReLU", "Activation", "Dropout")


def _chain_after(model: Any, conv: Any) -> tuple[list[Any], Any, Any]:
    """The per-channel layers after ``conv``, the global average pooling, and the dense
    layer it feeds; anything else is refused."""
    by_input: dict[int, list[Any]] = {}
    for layer in model.layers:
        for t in _flat(layer.input) if type(layer).__name__ != "InputLayer" else []:
            by_input.setdefault(id(t), []).append(layer)
    chain: list[Any] = []
    cur = conv
    while True:
        nxt = by_input.get(id(cur.output), [])
        if len(nxt) != 1:
            raise PruningError(f"{conv.name!r}: its output must feed exactly one layer")
        layer = nxt[0]
        name = type(layer).__name__
        if name in _PASS:
            chain.append(layer)
            cur = layer
            continue
        if name != "GlobalAveragePooling2D":
            raise PruningError(
                f"{conv.name!r} is followed by {layer.name!r} ({name}); pruning needs "
                "conv → [batch norm / ReLU / dropout] → global average pooling → dense"
            )
        after = by_input.get(id(layer.output), [])
        while len(after) == 1 and type(after[0]).__name__ == "Dropout":
            after = by_input.get(id(after[0].output), [])
        if len(after) != 1 or type(after[0]).__name__ != "Dense":
            raise PruningError(f"{layer.name!r} must feed one Dense layer")
        return chain, layer, after[0]


def _flat(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def pooled_activations(model: Any, layer_name: str, x: ArrayLike, batch_size: int = 64) -> Any:
    """``(n_samples, n_maps)``: the maps of ``layer_name`` as the dense layer sees them
    (after its batch norm / ReLU, globally averaged)."""
    import tensorflow as tf

    conv = model.get_layer(layer_name)
    _chain, gap, _dense = _chain_after(model, conv)
    probe = tf.keras.Model(model.inputs, gap.output)
    return np.asarray(probe.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0))


def prune_model(model: Any, layer_name: str, plan: PruningPlan) -> Any:
    """A new model with the plan's maps removed from ``layer_name``: the conv's kernel and
    bias, the batch norm's four vectors and the dense layer's input rows sliced; a merged
    map's dense rows added to the map that stays."""
    import tensorflow as tf

    conv = model.get_layer(layer_name)
    if type(conv).__name__ != "Conv2D":
        raise PruningError(f"{layer_name!r} is a {type(conv).__name__}, not a Conv2D")
    chain, _gap, dense = _chain_after(model, conv)
    if conv.filters != plan.n_maps:
        raise PruningError(f"the plan is for {plan.n_maps} maps; {layer_name!r} has {conv.filters}")
    keep = plan.kept
    if not keep:
        raise PruningError("the plan removes every feature map; raise the thresholds")
    config = model.get_config()
    for layer_cfg in config["layers"]:
        if layer_cfg["config"]["name"] == layer_name:
            layer_cfg["config"]["filters"] = len(keep)
    new = tf.keras.Model.from_config(config) if not isinstance(model, tf.keras.Sequential) else (
        tf.keras.Sequential.from_config(config)
    )  # fmt: skip
    changed = {conv.name, dense.name, *(la.name for la in chain)}
    for layer in model.layers:
        if layer.name not in changed and layer.weights:
            new.get_layer(layer.name).set_weights(layer.get_weights())
    w = conv.get_weights()
    new.get_layer(conv.name).set_weights([w[0][..., keep], *([w[1][keep]] if len(w) > 1 else [])])
    for layer in chain:
        if layer.weights:  # batch norm: gamma, beta, mean, variance per channel
            new.get_layer(layer.name).set_weights([v[keep] for v in layer.get_weights()])
    kernel, *bias = dense.get_weights()
    kernel = kernel.copy()
    for gone, into in plan.merged.items():
        kernel[into] += kernel[gone]
    new.get_layer(dense.name).set_weights([kernel[keep], *bias])
    return new


@dataclass(frozen=True)
class PruningResult:
    plan: PruningPlan
    accuracy_before: float
    accuracy_after: float
    parameters_before: int
    parameters_after: int

    def summary(self) -> dict[str, Any]:
        return {
            "similar_deg": self.plan.similar_deg,
            "complementary_deg": self.plan.complementary_deg,
            "maps": self.plan.n_maps,
            "merged": len(self.plan.merged),
            "complementary_removed": len(self.plan.complementary),
            "maps_pruned": len(self.plan.removed),
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "parameters_before": self.parameters_before,
            "parameters_after": self.parameters_after,
        }


def last_conv_name(model: Any) -> str:
    convs = [la.name for la in model.layers if type(la).__name__ == "Conv2D"]
    if not convs:
        raise PruningError(f"model {model.name!r} has no Conv2D layer")
    return convs[-1]


def prune(
    model: Any,
    x_val: ArrayLike,
    y_val: ArrayLike,
    *,
    similar_deg: float = 10.0,
    complementary_deg: float = 170.0,
    layer_name: str | None = None,
    x_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
) -> tuple[Any, PruningResult]:
    """Plan on the validation samples, rebuild, and measure accuracy before and after (on
    the test set when given, else on the validation set)."""
    name = layer_name or last_conv_name(model)
    convs = [la.name for la in model.layers if type(la).__name__ == "Conv2D"]
    if name not in convs:
        raise PruningError(f"model {model.name!r} has no Conv2D layer {name!r}; "
                           f"its Conv2D layers are {', '.join(convs) or 'none'}")  # fmt: skip
    xv = np.asarray(x_val, np.float32)
    plan = distinctiveness_plan(pooled_activations(model, name, xv), similar_deg, complementary_deg)
    pruned = prune_model(model, name, plan)
    xe = np.asarray(x_test if x_test is not None else xv, np.float32)
    ye = np.asarray(y_test if y_test is not None else y_val)
    return pruned, PruningResult(
        plan, accuracy(model, xe, ye), accuracy(pruned, xe, ye),
        int(model.count_params()), int(pruned.count_params()),
    )  # fmt: skip
