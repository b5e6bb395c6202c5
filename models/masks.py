"""Binary training masks from relevance maps and from human gaze (docs/algorithms.md#masks).

Every function is pure: arrays in, a boolean mask out, ``True`` = keep the
pixel, ``False`` = zeroed (the training image is ``I ⊙ M``).

Tie and edge rules (so that the masks are exact and order-free):

- **negative**: ``k = round(fraction · N)`` pixels are "top"; the threshold is
  the k-th largest value and *every* pixel at or above it is zeroed (ties at
  the threshold are zeroed together). Pixels at the map's minimum are never
  zeroed, so a constant map (no information) keeps the whole image.
- **mean**: zeroed where ``R < mean(R)``; a constant map keeps everything.
- **perceptive (model)**: the model heatmap (docs/algorithms.md#model-heatmaps) from the n most
  relevant pixels
  (ties broken in raster order, :func:`~gazelab.analysis.saliency.top_n_points`)
  with the heatmap kernel (docs/algorithms.md#heatmaps) in relevance-map pixels; zeroed where it is 0.
- **human**: the heatmap of docs/algorithms.md#heatmaps of an annotator's fixations; zeroed where it is 0.

NaN or infinite relevance is an error (:class:`MaskError`), never a silent mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.errors import GazelabError
from gazelab.plugins import Choices, Registry


class MaskError(GazelabError, ValueError):
    """The input cannot be turned into a mask (NaN, wrong shape, bad parameter)."""


def _relevance(relevance: ArrayLike) -> NDArray[np.float64]:
    r = np.asarray(relevance, dtype=np.float64)
    if r.ndim != 2:
        raise MaskError(f"relevance map must be (H, W), got shape {r.shape}")
    if r.size == 0:
        raise MaskError("relevance map is empty")
    if not np.isfinite(r).all():
        bad = int(np.count_nonzero(~np.isfinite(r)))
        raise MaskError(
            f"relevance map has {bad} NaN/infinite value(s); recompute it (a model with "
            "exploding activations?) rather than masking with it"
        )
    return r


def negative_mask(relevance: ArrayLike, fraction: float = 0.1) -> NDArray[np.bool_]:
    """Zero the most relevant ``fraction`` of pixels (see the module doc for ties)."""
    r = _relevance(relevance)
    if not 0.0 <= fraction <= 1.0:
        raise MaskError(f"negative fraction must be in [0, 1], got {fraction}")
    k = int(round(fraction * r.size))
    if k == 0:
        return np.ones(r.shape, dtype=bool)
    threshold = np.partition(r.ravel(), r.size - k)[r.size - k]  # k-th largest
    zero = (r >= threshold) & (r > r.min())
    return np.asarray(~zero)


def mean_mask(relevance: ArrayLike) -> NDArray[np.bool_]:
    """Zero the pixels whose relevance is below the map's mean."""
    r = _relevance(relevance)
    return np.asarray(~(r < r.mean()))


def perceptive_mask(relevance: ArrayLike, n: int, c: float, radius: float) -> NDArray[np.bool_]:
    """Keep the support of the heatmap of the ``n`` most relevant pixels (kernel ``c``,
    ``radius`` in relevance-map pixels)."""
    from gazelab.analysis.saliency import top_n_points
    from gazelab.gaze.heatmaps import fixation_heatmap  # here: Numba costs 0.4 s to import

    r = _relevance(relevance)
    if n < 1:
        raise MaskError(f"perceptive masks need n >= 1 points, got {n}")
    if not (c > 0 and radius > 0 and math.isfinite(c) and math.isfinite(radius)):
        raise MaskError(f"kernel c and radius must be positive, got c={c}, radius={radius}")
    heat = fixation_heatmap(top_n_points(r, n), r.shape, c, radius)  # type: ignore[arg-type]
    return np.asarray(heat > 0)


def human_mask(heatmap: ArrayLike) -> NDArray[np.bool_]:
    """Keep the support of a human fixation heatmap (``heatmap > 0``)."""
    h = np.asarray(heatmap, dtype=np.float64)
    if h.ndim != 2:
        raise MaskError(f"heatmap must be (H, W), got shape {h.shape}")
    if not np.isfinite(h).all():
        raise MaskError("heatmap has NaN/infinite values")
    return np.asarray(h > 0)


def human_mask_from_fixations(
    points_img: ArrayLike,
    image_shape: tuple[int, int],
    out_shape: tuple[int, int],
    c_img: float,
    radius_img: float,
    *,
    c_y_img: float | None = None,
    radius_y_img: float | None = None,
) -> NDArray[np.bool_]:
    """The human mask at training resolution: fixations in image pixels (``(N, 2)`` x, y)
    and the kernel in image pixels, both scaled to ``out_shape`` and the heatmap built
    there (exact, no resampling of a finer heatmap).

    ``c_y_img``, ``radius_y_img``: the kernel's y width and cut-off when it is an ellipse
    in image pixels (``c_img``, ``radius_img`` are then x's; an image shown on non-square
    screen pixels or stretched). An ellipse is scaled to the output along each axis on its
    own, ``c_x·s_x, c_y·s_y, r_x·s_x, r_y·s_y``, exact for any output aspect; the mask is
    the ellipses' contour. A circle keeps its own path, bit for bit as before (a
    non-square output: built in image pixels and resampled)."""
    from gazelab.gaze.heatmaps import fixation_heatmap

    pts = np.asarray(points_img, dtype=np.float64).reshape(-1, 2)
    ih, iw = image_shape
    oh, ow = out_shape
    sx, sy = ow / iw, oh / ih
    cy = c_img if c_y_img is None else c_y_img
    ry = radius_img if radius_y_img is None else radius_y_img
    if cy != c_img or ry != radius_img:
        scaled = pts * np.array([sx, sy])
        heat = fixation_heatmap(
            scaled, out_shape, c_img * sx, radius_img * sx, c_y=cy * sy, radius_y=ry * sy
        )
        return human_mask(heat)
    if not math.isclose(sx, sy, rel_tol=1e-6):
        # anisotropic resize: an ellipse in the output; build at image resolution instead
        from gazelab.gaze.heatmaps import resample_heatmap

        heat = fixation_heatmap(pts, image_shape, c_img, radius_img)
        return human_mask(resample_heatmap(heat, out_shape))
    scaled = pts * np.array([sx, sy])
    return human_mask(fixation_heatmap(scaled, out_shape, c_img * sx, radius_img * sx))


def apply_mask(image: ArrayLike, mask: ArrayLike) -> NDArray[np.float32]:
    """``I ⊙ M`` for an ``(H, W)`` or ``(H, W, C)`` image and an ``(H, W)`` mask."""
    x = np.asarray(image, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    if m.shape != x.shape[:2]:
        raise MaskError(f"mask {m.shape} does not fit image {x.shape[:2]}")
    return np.asarray(x * (m[..., None] if x.ndim == 3 else m), dtype=np.float32)


# -- the registry ----------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskParameters:
    """What a model mask may use: the negative fraction, and the perceptive points
    (docs/algorithms.md#model-heatmaps) and
    kernel (``c``, ``radius`` in relevance-map pixels)."""

    negative_fraction: float = 0.1
    n: int = 7
    c: float = 1.0
    radius: float = 1.0


@dataclass(frozen=True)
class ModelMaskAlgorithm:
    """A registered model-derived mask: ``make(relevance, parameters)`` and the parameters
    it records in the export manifest."""

    name: str
    make: Callable[[NDArray[np.float32], MaskParameters], NDArray[np.bool_]]
    recorded: Callable[[MaskParameters], dict[str, Any]]
    help: str


MODEL_MASKS: Registry[ModelMaskAlgorithm] = Registry(
    "model mask", "gazelab.models.mask_algorithms", group="gazelab.masks", error=MaskError
)
"""Model-derived mask algorithms by name: those defined here, the modules of
:mod:`gazelab.models.mask_algorithms` and installed packages' ``gazelab.masks`` entry
points (imported on first use); the export and the CLI dispatch on it."""


def register_model_mask(
    name: str, help: str, recorded: Callable[[MaskParameters], dict[str, Any]]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``make(relevance, parameters) -> mask`` as the model mask ``name``."""

    def add(make: Callable[..., Any]) -> Callable[..., Any]:
        if name == HUMAN:
            raise ValueError(f"mask algorithm {name!r} is the human mask's name")
        MODEL_MASKS.add(name, ModelMaskAlgorithm(name, make, recorded, help))
        return make

    return add


HUMAN = "human"
"""The one mask from gaze, not from a model: the support of an annotator's heatmap
(docs/algorithms.md#masks)."""


@register_model_mask("negative", "zero the most relevant fraction of pixels",
                     lambda p: {"negative_fraction": p.negative_fraction})  # fmt: skip
def _negative(r: NDArray[np.float32], p: MaskParameters) -> NDArray[np.bool_]:
    return negative_mask(r, p.negative_fraction)


@register_model_mask("mean", "zero the pixels below the map's mean relevance", lambda p: {})
def _mean(r: NDArray[np.float32], p: MaskParameters) -> NDArray[np.bool_]:
    return mean_mask(r)


@register_model_mask("perceptive", "keep the heatmap support of the n most relevant pixels",
                     lambda p: {"n": p.n, "c": round(p.c, 4), "radius": round(p.radius, 4)})  # fmt: skip
def _perceptive(r: NDArray[np.float32], p: MaskParameters) -> NDArray[np.bool_]:
    return perceptive_mask(r, p.n, p.c, p.radius)


def model_mask(
    relevance: ArrayLike, algorithm: str, parameters: MaskParameters
) -> NDArray[np.bool_]:
    """The registered model mask ``algorithm`` of one relevance map."""
    make = MODEL_MASKS.get(algorithm).make  # a MaskError listing the choices
    return make(np.asarray(relevance), parameters)


ALGORITHMS = Choices(lambda: (*MODEL_MASKS, HUMAN))
"""Every mask algorithm, read when asked: the registered model masks, then ``human``."""
