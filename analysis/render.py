"""The overlay viewer's picture as RGB arrays: which layers are shown, composed over the
image, enlarged, with areas of interest, scanpaths at a replay time and a colour legend.

Pure numpy (no Qt): the window (:mod:`gazelab.app.viewer`) only shows what
:func:`render_view` returns, and the PNG export writes the same array.

The scanpath's fixation circles have a radius proportional to the fixation's duration,
:data:`SCANPATH_MAX_RADIUS` of the image's longer side for the longest fixation shown
(:func:`gazelab.analysis.scanpath.fixation_radii`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gazelab.analysis.aoi import AOI
from gazelab.analysis.overlays import (
    heat_overlay,
    outline,
    points_overlay,
    polygon_overlay,
    scanpath_overlay,
    upscale,
    with_legend,
)
from gazelab.analysis.report import HUMAN_COLOURS, MODEL_COLOUR
from gazelab.analysis.scanpath import Scanpath, fixation_radii, scanpath_at
from gazelab.analysis.scoring import ImageAnalysis

AOI_COLOUR = (255, 255, 255)
SCANPATH_MAX_RADIUS = 0.06  # of the image's longer side, for the longest fixation
DISPLAY_PX = 768  # small images are enlarged to about this for the window


class RenderedView(Protocol):
    """What :func:`render_view` draws: one image's analysis, each annotator's scanpath
    and the image's areas of interest (the viewer's ``ImageView``)."""

    @property
    def analysis(self) -> ImageAnalysis: ...

    @property
    def scanpaths(self) -> Mapping[str, Scanpath]: ...

    @property
    def aois(self) -> Sequence[AOI]: ...


@dataclass
class Layers:
    """What the view shows."""

    image: bool = True
    humans: dict[str, bool] = field(default_factory=dict)  # annotator -> shown
    model: bool = True
    contours: bool = True
    fixations: bool = False
    human_opacity: float = 0.6
    model_opacity: float = 0.6
    scanpath: bool = False
    aois: bool = False
    replay_ms: float = math.inf  # scanpath replay time (inf: the whole trial)


def annotator_colour(annotators: list[str], who: str) -> tuple[int, int, int]:
    return HUMAN_COLOURS[annotators.index(who) % len(HUMAN_COLOURS)]


def _shown(im: ImageAnalysis, annotators: list[str], layers: Layers) -> list[tuple[str, Any]]:
    return [
        (a, annotator_colour(annotators, a))
        for a in annotators
        if a in im.humans and layers.humans.get(a, True)
    ]


def compose(im: ImageAnalysis, annotators: list[str], layers: Layers) -> NDArray[np.uint8]:
    """The heat layers of one image as RGB at image resolution (pure)."""
    base = im.image if im.image.ndim == 3 else np.repeat(im.image[..., None], 3, axis=2)
    out = base.copy() if layers.image else np.zeros_like(base)
    shown = _shown(im, annotators, layers)
    for a, colour in shown:
        out = heat_overlay(
            out, im.humans[a].heatmap_or_build(), colour, layers.human_opacity, contour=False
        )
    if layers.model and im.model_heatmap is not None:
        out = heat_overlay(out, im.model_heatmap, MODEL_COLOUR, layers.model_opacity, contour=False)
    if layers.contours:
        for a, colour in shown:
            out = outline(out, im.humans[a].heatmap_or_build(), colour)
        if layers.model and im.model_heatmap is not None:
            out = outline(out, im.model_heatmap, MODEL_COLOUR)
    if layers.fixations:
        for a, colour in shown:
            out = points_overlay(out, im.humans[a].fixations, colour, radius=3)
        if layers.model and im.model_points is not None:
            out = points_overlay(out, im.model_points, MODEL_COLOUR, radius=2)
    return out


def legend_entries(
    im: ImageAnalysis, annotators: list[str], layers: Layers
) -> list[tuple[str, tuple[int, int, int]]]:
    """(name, colour) of every coloured layer shown: annotators, then the model."""
    any_layer = layers.contours or layers.fixations or layers.scanpath
    out = []
    for a, colour in _shown(im, annotators, layers):
        if layers.human_opacity > 0 or any_layer:
            label = im.humans[a].label
            out.append((f"annotator {a}" + (f" (said {label})" if label else ""), colour))
    if layers.model and im.model_heatmap is not None:
        pred = f" (predicts {im.predicted})" if im.predicted else ""
        out.append((f"model{pred}", MODEL_COLOUR))
    return out


def display_scale(image_hw: tuple[int, ...]) -> int:
    """Integer enlargement that brings a small image to about :data:`DISPLAY_PX`."""
    return int(min(8, max(1, DISPLAY_PX // max(1, max(image_hw[:2])))))


def replay_end_ms(view: RenderedView) -> float:
    """The longest trial's gaze record on this image, ms."""
    return max((sp.end_ms for sp in view.scanpaths.values()), default=0.0)


def render_view(
    view: RenderedView, annotators: list[str], layers: Layers, scale: int = 1
) -> NDArray[np.uint8]:
    """The whole view as RGB: heat layers (:func:`compose`), enlarged ``scale`` times, AOI
    outlines, scanpaths at ``layers.replay_ms`` and the colour legend below (pure)."""
    im = view.analysis
    rgb = upscale(compose(im, annotators, layers), scale)
    if layers.aois:
        for aoi in view.aois:
            rgb = polygon_overlay(rgb, aoi.outline(), AOI_COLOUR, label=aoi.name, scale=scale,
                                  font_px=max(11, 4 * scale))  # fmt: skip
    if layers.scanpath:
        shown = [(a, c) for a, c in _shown(im, annotators, layers) if a in view.scanpaths]
        longest = max((float(view.scanpaths[a].duration_ms.max(initial=0)) for a, _ in shown),
                      default=0.0)  # fmt: skip
        max_r = SCANPATH_MAX_RADIUS * max(im.image.shape[:2])
        for a, colour in shown:
            sp = view.scanpaths[a]
            frame = scanpath_at(sp, layers.replay_ms)
            radii = fixation_radii(frame.elapsed_ms, max_r, longest)
            live = math.isfinite(layers.replay_ms)
            rgb = scanpath_overlay(
                rgb, sp.points[frame.index], radii, colour, numbers=list(frame.index + 1),
                scale=scale, gaze_xy=frame.gaze_xy if live else None,
                samples_xy=frame.samples_xy if live else None,
            )  # fmt: skip
    swatch = max(12, round(rgb.shape[1] / 32))  # legible when the view is shrunk to fit
    return with_legend(rgb, legend_entries(im, annotators, layers), swatch_px=swatch)


__all__ = [
    "AOI_COLOUR",
    "DISPLAY_PX",
    "SCANPATH_MAX_RADIUS",
    "Layers",
    "RenderedView",
    "annotator_colour",
    "compose",
    "display_scale",
    "legend_entries",
    "render_view",
    "replay_end_ms",
]
