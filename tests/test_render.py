"""The viewer's picture without Qt (analysis/render.py): layers composed over the image,
enlarged, AOIs and the legend, as numbers."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np

from gazelab.analysis.aoi import AOI
from gazelab.analysis.render import Layers, annotator_colour, compose, legend_entries, render_view
from gazelab.analysis.scoring import AnnotatorGaze, ImageAnalysis


def _analysis() -> ImageAnalysis:
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    heat = np.zeros((20, 30))
    heat[5:10, 8:14] = 1.0
    heat[7, 10] = 4.0  # the peak
    gaze = AnnotatorGaze("A", 1, "happy", np.array([[10.0, 7.0]]), np.array([[10.0, 7.0]]), heat)
    return ImageAnalysis("img", "happy", image, None, {"A": gaze})


def test_render_imports_no_qt() -> None:
    probe = (
        "import gazelab.analysis.render, sys\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_compose_blends_the_heatmap_in_the_annotators_colour() -> None:
    im = _analysis()
    colour = annotator_colour(["A"], "A")
    only_heat = compose(im, ["A"], Layers(image=False, contours=False, human_opacity=0.5))
    # alpha = heat / peak * opacity: the peak pixel is half the colour, zero heat stays black
    assert only_heat[7, 10].tolist() == [round(c * 0.5 + 1e-9) for c in colour]
    assert only_heat[0, 0].tolist() == [0, 0, 0]
    hidden = compose(im, ["A"], Layers(humans={"A": False}))
    assert (hidden == im.image).all()


def test_render_view_enlarges_draws_aois_and_adds_the_legend() -> None:
    im = _analysis()
    view = SimpleNamespace(
        analysis=im, scanpaths={}, aois=[AOI.polygon("mouth", [(2, 2), (27, 2), (27, 17)])]
    )
    plain = render_view(view, ["A"], Layers(aois=False), scale=2)
    framed = render_view(view, ["A"], Layers(aois=True), scale=2)
    assert plain.shape[0] > 40 and plain.shape[1] >= 60  # 2 x the image, a legend below
    assert plain.shape == framed.shape
    assert (framed[:40] != plain[:40]).any() and (framed[40:] == plain[40:]).all()
    assert [name for name, _ in legend_entries(im, ["A"], Layers())] == ["annotator A (said happy)"]


def test_aoi_labels_have_a_dark_halo_on_a_light_face() -> None:
    from gazelab.analysis.overlays import halo_colour, polygon_overlay

    white = np.full((120, 160, 3), 255, dtype=np.uint8)
    square = np.array([[40.0, 60.0], [120.0, 60.0], [120.0, 110.0], [40.0, 110.0]])
    bare = polygon_overlay(white, square, (255, 255, 255))
    out = polygon_overlay(white, square, (255, 255, 255), label="mouth", font_px=11)
    assert (bare == 255).all()  # a white outline on white: nothing to see
    label = out[40:60, 38:100]  # above the outline's top-left corner
    dark = (label.max(axis=-1) < 64).sum()
    assert dark >= 20  # the halo: black pixels round the white letters
    assert (label.min(axis=-1) == 255).any()  # the letters themselves stay white
    assert (out[:38] == 255).all() and (out[61:] == 255).all()  # only there
    # an outline at the image's top edge: the label goes inside, still haloed
    top = polygon_overlay(white, square - [0.0, 60.0], (255, 255, 255), label="brows")
    assert (top[2:20, 40:100].max(axis=-1) < 64).sum() >= 20
    assert halo_colour((255, 255, 255)) == (0, 0, 0) and halo_colour((20, 20, 80)) == (255,) * 3


def test_render_view_aoi_label_reads_on_a_white_image() -> None:
    from dataclasses import replace

    white = replace(_analysis(), image=np.full((20, 30, 3), 255, dtype=np.uint8))
    view = SimpleNamespace(analysis=white, scanpaths={},
                           aois=[AOI.polygon("nose", [(3, 8), (27, 8), (15, 18)])])  # fmt: skip
    rgb = render_view(view, ["A"], Layers(aois=True, humans={"A": False}), scale=4)
    near = rgb[8:32, 10:100]  # round the label over the outline's top (y 32, x 12 at x4)
    assert (near.max(axis=-1) < 64).sum() >= 20
    assert (rgb[:8, :] == 255).all()  # nothing else dark above it
