"""Input × gradient (Shrikumar et al. 2016; Ancona et al. 2018): the gradient of the
explained logit times the input, channels summed — signed, unlike ``gradient``'s
magnitude. Uses the gradient compiled once per model."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.analysis.saliency import _compiled, register_analyzer


@register_analyzer("input_x_gradient", "input × ∂ logit / ∂ input, channels summed (signed)")
def input_x_gradient(
    model: Any, x: NDArray[np.float32], neuron: int | None, batch_size: int
) -> NDArray[np.float32]:
    import tensorflow as tf

    fn = _compiled(model, "signed_gradient")
    out = []
    for k in range(0, len(x), max(1, batch_size)):
        xb = x[k : k + batch_size]
        idx = np.full(len(xb), -1 if neuron is None else int(neuron), dtype=np.int32)
        g = np.asarray(fn(tf.constant(xb), tf.constant(idx)).numpy(), dtype=np.float32)
        out.append((g * xb).sum(axis=-1))
    return np.concatenate(out) if out else np.zeros((0, *x.shape[1:3]), np.float32)
