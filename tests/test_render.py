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
