"""Ensembles with shared representations, ESR (Siqueira et al. 2020; docs/seed-systems.md).

A shared convolutional base (the first ``level`` conv blocks) feeds ``k`` branches;
each branch holds the remaining conv blocks, global average pooling and its own
classifier. The loss is the sum of the branch losses. Branches are added one at a
time: while branch ``i`` trains, the shared layers and the branches trained before it
learn with their own (smaller, or zero) learning rates. The ensemble predicts by
majority vote (ties: the class with the larger mean probability among the tied ones)
or by averaged probabilities.

Pure parts (the vote) are numpy; TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.errors import GazelabError

BLOCK_FILTERS = (32, 64, 64, 64, 64)
"""Filters of the five conv blocks of the paper's base network (scaled by ``width``)."""
BLOCK_KERNELS = (5, 3, 3, 3, 3)
"""Kernel sizes of the paper's five conv blocks: 5×5, then 3×3."""

ESR_NETWORKS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "paper": (BLOCK_FILTERS, BLOCK_KERNELS),
    "wide": ((64, 128, 128, 256, 512), (3, 3, 3, 3, 3)),
}
"""Base networks by name: (filters, kernel sizes) of the five conv blocks. ``paper`` is
Siqueira et al.'s (Table 1: 131,208 parameters for one network with 8 classes; ESR-4 at
level 3 / 4: 355,104 / 243,936, 32.3 % / 53.5 % fewer than four networks); ``wide`` is
the 64-128-128-256-512 network of gazelab's first ESR (3×3 kernels)."""


class ESRError(GazelabError, ValueError):
    """Bad branch count, branching level or learning rates."""


def majority_vote(probs: ArrayLike) -> NDArray[np.int64]:
    """``(k, N, C)`` branch probabilities → ``(N,)`` classes by majority vote; a tie goes
    to the tied class with the larger mean probability."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 3:
        raise ESRError(f"expected (branches, samples, classes), got shape {p.shape}")
    k, n, c = p.shape
    votes = np.zeros((n, c))
    np.add.at(votes, (np.repeat(np.arange(n)[None], k, 0), p.argmax(axis=2)), 1)
    top = votes == votes.max(axis=1, keepdims=True)
    mean = p.mean(axis=0)
    return np.asarray(np.where(top, mean, -np.inf).argmax(axis=1), dtype=np.int64)


def average_vote(probs: ArrayLike) -> NDArray[np.int64]:
    """``(k, N, C)`` → classes of the averaged probabilities."""
    return np.asarray(np.asarray(probs).mean(axis=0).argmax(axis=1), dtype=np.int64)


POOLED_BLOCKS = (2, 3, 4)
"""Blocks followed by max pooling (the paper's base network: after the 2nd–4th BN)."""


def _block(layers: Any, x: Any, filters: int, kernel: int, name: str, pool: bool) -> Any:
    """conv → batch norm → ReLU (→ max pooling), as in the paper's base network."""
    x = layers.Conv2D(filters, kernel, padding="same", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    return layers.MaxPooling2D(padding="same", name=f"{name}_pool")(x) if pool else x


def _network(network: str, width: float) -> tuple[list[int], tuple[int, ...]]:
    """Filters (scaled by ``width``, at least 4) and kernel sizes of a named base network."""
    if network not in ESR_NETWORKS:
        raise ESRError(f"unknown ESR network {network!r}; choose one of {sorted(ESR_NETWORKS)}")
    if not width > 0:
        raise ESRError(f"width must be > 0 (a filter scale), got {width}")
    filters, kernels = ESR_NETWORKS[network]
    return [max(4, int(round(f * width))) for f in filters], kernels


def esr_parameters(
    n_classes: int,
    n_branches: int = 4,
    level: int = 3,
    width: float = 1.0,
    network: str = "paper",
    in_channels: int = 1,
) -> int:
    """Trainable parameters of :func:`build_esr`'s network, counted without building it:
    each conv block has k²·c_in·c_out weights, c_out biases and batch-norm γ and β (2·c_out);
    each branch ends in a dense c_last → ``n_classes`` with bias. The shared blocks are
    counted once, the branch blocks ``n_branches`` times."""
    if not 1 <= level <= 5:
        raise ESRError(f"branching level must be 1-5 (blocks in the shared base), got {level}")
    filters, kernels = _network(network, width)
    sizes = [in_channels, *filters]
    block = [k * k * sizes[b] * sizes[b + 1] + 3 * sizes[b + 1] for b, k in enumerate(kernels)]
    branch = sum(block[level:]) + filters[-1] * n_classes + n_classes
    return sum(block[:level]) + n_branches * branch


def build_esr(
    input_shape: tuple[int, int, int],
    n_classes: int,
    n_branches: int = 4,
    level: int = 3,
    width: float = 1.0,
    network: str = "paper",
) -> Any:
    """ESR-``n_branches`` branching after conv block ``level`` (1–5): five blocks of conv →
    batch norm → ReLU, max pooling after blocks 2–4, global average pooling and a dense
    softmax per branch. ``network`` names the base (:data:`ESR_NETWORKS`; the paper's
    32-64-64-64-64 filters, 5×5 then 3×3, by default), ``width`` scales its filters.
    Outputs: a list of ``n_branches`` softmax tensors (a plain tensor for one branch, the
    single network). Layer names: ``shared*`` and ``branch{i}_*``."""
    import tensorflow as tf

    if not 1 <= level <= 5:
        raise ESRError(f"branching level must be 1-5 (blocks in the shared base), got {level}")
    if n_branches < 1:
        raise ESRError(f"an ensemble needs at least one branch, got {n_branches}")
    filters, kernels = _network(network, width)
    layers = tf.keras.layers
    inp = layers.Input(input_shape)
    x = inp
    for b in range(level):
        x = _block(layers, x, filters[b], kernels[b], f"shared{b + 1}", b + 1 in POOLED_BLOCKS)
    outs = []
    for i in range(n_branches):
        y = x
        for b in range(level, len(filters)):
            y = _block(layers, y, filters[b], kernels[b], f"branch{i + 1}_{b + 1}",
                       b + 1 in POOLED_BLOCKS)  # fmt: skip
        y = layers.GlobalAveragePooling2D(name=f"branch{i + 1}_gap")(y)
        outs.append(layers.Dense(n_classes, activation="softmax", name=f"branch{i + 1}_out")(y))
    return tf.keras.Model(inp, outs if n_branches > 1 else outs[0],
                          name=f"esr{n_branches}_level{level}")  # fmt: skip


def branch_variables(model: Any, branch: int) -> list[Any]:
    """Trainable variables of branch ``branch`` (1-based)."""
    return [v for v in model.trainable_variables if v.name.startswith(f"branch{branch}_")]


def shared_variables(model: Any) -> list[Any]:
    return [v for v in model.trainable_variables if v.name.startswith("shared")]


@dataclass(frozen=True)
class BranchRates:
    """Learning rates while one branch trains: the new branch, the shared base, and the
    branches trained before it (0 freezes them exactly: no update is applied)."""

    new: float = 1e-3
    shared: float = 1e-4
    previous: float = 0.0

    def __post_init__(self) -> None:
        if min(self.new, self.shared, self.previous) < 0 or self.new == 0:
            raise ESRError(f"learning rates must be >= 0 and the new branch's > 0: {self}")


def branch_plan(model: Any, branch: int, rates: BranchRates) -> Any:
    """The :class:`~gazelab.models.training.TrainPlan` that trains branch ``branch``
    (1-based) of an ESR: a view of the model with outputs 1..``branch`` (later branches are
    not computed), the summed loss of those outputs, one learning rate per group, and the
    batch-norm statistics of groups at rate 0 put back after every step."""
    import tensorflow as tf

    from gazelab.models.training import TrainPlan

    n = len(model.outputs)
    if not 1 <= branch <= n:
        raise ESRError(f"branch {branch} is outside 1..{n}")
    view = tf.keras.Model(model.inputs, model.outputs[:branch], name=f"{model.name}_b{branch}")
    previous = [v for b in range(1, branch) for v in branch_variables(model, b)]
    frozen: list[str] = []
    if rates.shared == 0:
        frozen.append("shared")
    if rates.previous == 0:
        frozen += [f"branch{b}_" for b in range(1, branch)]
    restore = [v for v in model.non_trainable_variables
               if any(v.name.startswith(p) for p in frozen)]  # fmt: skip
    groups = [
        (branch_variables(model, branch), rates.new),
        (shared_variables(model), rates.shared),
        (previous, rates.previous),
    ]
    return TrainPlan(view, groups, outputs=branch, restore=restore)


def train_branch(
    model: Any,
    branch: int,
    training: Any,
    data: Any,
    rates: BranchRates,
    *,
    max_steps: int | None = None,
    out: Any = None,
    progress: Any = None,
) -> Any:
    """Train branch ``branch`` with :func:`~gazelab.models.training.train_run` (same loop,
    augmentation, class weights and records as every other run); returns its ``RunResult``
    with the best validation epoch's weights restored (the caller saves the ensemble)."""
    from gazelab.models.training import train_run

    if training.strategy != "default":
        raise ESRError("ESR branches are trained with strategy = 'default'")
    n_classes = int(model.outputs[0].shape[-1])
    return train_run(training, data, name=f"branch{branch}", out=out, max_steps=max_steps,
                     progress=progress, n_classes=n_classes, restore_best=True, save_best=False,
                     plan=lambda: branch_plan(model, branch, rates))  # fmt: skip


def predict_branches(model: Any, x: ArrayLike, batch_size: int = 64) -> NDArray[np.float32]:
    """``(k, N, C)`` probabilities of every branch."""
    outs = model.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0)
    outs = outs if isinstance(outs, list) else [outs]
    return np.stack([np.asarray(o, np.float32) for o in outs])


def trainable_parameters(model: Any, branches: Sequence[int] | None = None) -> int:
    """Trainable parameters of the shared base plus the given branches (default: all)."""
    names = None if branches is None else tuple(f"branch{b}_" for b in branches)
    return int(
        sum(
            np.prod(v.shape)
            for v in model.trainable_variables
            if names is None or v.name.startswith("shared") or v.name.startswith(names)
        )
    )
