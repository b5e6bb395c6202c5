"""``random``: the control for ``negative`` — zero the same fraction of pixels, chosen at
random instead of by relevance. A Trainee run on these masks tells whether hiding the
*most relevant* pixels matters, or hiding any pixels. The choice is seeded by the map's
own bytes, so an export is reproducible."""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from gazelab.models.masks import MaskParameters, register_model_mask


@register_model_mask(
    "random",
    "control: zero a random fraction of pixels (as many as negative)",
    lambda p: {"negative_fraction": p.negative_fraction, "seed": "sha256 of the map"},
)
def random_mask(relevance: NDArray[np.float32], p: MaskParameters) -> NDArray[np.bool_]:
    r = np.ascontiguousarray(relevance)
    seed = int.from_bytes(hashlib.sha256(r.tobytes()).digest()[:8], "little")
    n = r.size
    k = int(round(p.negative_fraction * n))
    keep = np.ones(n, dtype=bool)
    keep[np.random.default_rng(seed).choice(n, size=k, replace=False)] = False
    return keep.reshape(r.shape)
