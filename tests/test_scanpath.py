"""Scanpaths and their replay (analysis/scanpath.py) and their drawing (overlays.py),
on hand-placed fixations with closed-form answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gazelab.analysis.overlays import scanpath_overlay, with_legend
from gazelab.analysis.scanpath import Scanpath, fixation_radii, saccades, scanpath_at

# three fixations: 0–200 ms at (10, 10), 300–700 ms at (50, 10), 800–900 ms at (50, 40);
# samples every 100 ms at the fixation each falls in
FIX = np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 40.0]])
ONSET = np.array([0.0, 300.0, 800.0])
DUR = np.array([200.0, 400.0, 100.0])
SAMPLES = np.array([[0, 10, 10], [100, 10, 10], [200, 10, 10], [300, 50, 10], [400, 50, 10],
                    [500, 50, 10], [600, 50, 10], [700, 50, 10], [800, 50, 40],
                    [900, 50, 40]], dtype=float)  # fmt: skip


@pytest.fixture
def path() -> Scanpath:
    # given out of order: from_arrays sorts by time
    return Scanpath.from_arrays(FIX[::-1], ONSET[::-1], DUR[::-1], SAMPLES[::-1])


def test_from_arrays_sorts_by_time_and_knows_its_end(path: Scanpath) -> None:
    assert path.onset_ms.tolist() == [0, 300, 800]
    assert path.points.tolist() == FIX.tolist()
    assert path.t_ms.tolist() == list(range(0, 1000, 100))
    assert path.end_ms == 900.0
    assert len(path) == 3


def test_replay_shows_fixations_begun_with_their_elapsed_time(path: Scanpath) -> None:
    f = scanpath_at(path, 450.0)
    assert f.index.tolist() == [0, 1]
    assert f.elapsed_ms.tolist() == [200.0, 150.0]  # the first is over, the second growing
    assert len(f.samples_xy) == 5  # samples at 0..400 ms
    assert f.gaze_xy is not None and f.gaze_xy.tolist() == [50.0, 10.0]


def test_replay_before_the_first_sample_and_after_the_end(path: Scanpath) -> None:
    before = scanpath_at(path, -1.0)
    assert before.index.size == 0 and before.gaze_xy is None and before.samples_xy.shape == (0, 2)
    after = scanpath_at(path, math.inf)
    assert after.index.tolist() == [0, 1, 2] and after.elapsed_ms.tolist() == DUR.tolist()
    assert after.gaze_xy is not None and after.gaze_xy.tolist() == [50.0, 40.0]
    at_onset = scanpath_at(path, 800.0)  # a fixation appears at its onset, with 0 ms elapsed
    assert at_onset.index.tolist() == [0, 1, 2] and at_onset.elapsed_ms[2] == 0.0


def test_radii_are_proportional_to_duration() -> None:
    assert fixation_radii(DUR, 20.0).tolist() == [10.0, 20.0, 5.0]
    assert fixation_radii(DUR, 20.0, longest_ms=800.0).tolist() == [5.0, 10.0, 2.5]
    assert fixation_radii([], 20.0).size == 0
    assert fixation_radii([0.0], 20.0).tolist() == [0.0]


def test_saccades_join_consecutive_fixations() -> None:
    s = saccades(FIX)
    assert s.shape == (2, 2, 2)
    assert s[0].tolist() == [[10, 10], [50, 10]] and s[1].tolist() == [[50, 10], [50, 40]]
    assert saccades(FIX[:1]).shape == (0, 2, 2)


def test_drawn_circles_have_the_given_radii_in_order() -> None:
    """On black, without saccade lines (one fixation per drawing): the outline's extent is
    2 r + 1 pixels, for r = 5 and 10 at scale 1 and r = 5 at scale 3."""
    black = np.zeros((100, 100, 3), np.uint8)
    for r, scale in ((5.0, 1), (10.0, 1), (5.0, 3)):
        big = np.zeros((100 * scale, 100 * scale, 3), np.uint8) if scale > 1 else black
        out = scanpath_overlay(big, np.array([[30.0, 30.0]]), np.array([r]), (255, 0, 0),
                               numbers=[7], scale=scale)  # fmt: skip
        red = np.all(out == (255, 0, 0), axis=-1)
        ys, xs = np.nonzero(red)
        assert xs.max() - xs.min() == pytest.approx(2 * r * scale, abs=1)
        assert ys.max() - ys.min() == pytest.approx(2 * r * scale, abs=1)
        assert 30 * scale in range(xs.min(), xs.max() + 1)
    # the number is drawn in the circle (white, anti-aliased: green > 200 where the red
    # circle has none) and nowhere else
    out = scanpath_overlay(black, np.array([[50.0, 50.0]]), np.array([12.0]), (255, 0, 0),
                           numbers=[3])  # fmt: skip
    ys, xs = np.nonzero(out[..., 1] > 200)
    assert len(ys) >= 3 and abs(ys.mean() - 50) < 3 and abs(xs.mean() - 50) < 3


def test_legend_keeps_the_image_and_adds_a_swatch_per_entry() -> None:
    img = np.full((40, 40, 3), 90, np.uint8)
    out = with_legend(img, [("A", (255, 40, 0)), ("model", (40, 220, 40))], swatch_px=12)
    assert np.array_equal(out[:40, :40], img)
    for colour in ((255, 40, 0), (40, 220, 40)):
        assert np.all(out[40:] == colour, axis=-1).sum() == 144
    assert np.array_equal(with_legend(img, []), img)


def test_relevance_overlay_colours_the_image_and_adds_a_colour_bar() -> None:
    """+1 relevance in the top-left model pixel block reads red, -1 bottom-right blue, 0
    leaves the image as it is; the bar runs from red (top, +max) to blue (bottom, -max)."""
    from gazelab.analysis.overlays import relevance_overlay

    img = np.full((32, 32), 100, np.uint8)
    rel = np.zeros((8, 8))
    rel[0, 0], rel[7, 7] = 1.0, -1.0
    out = relevance_overlay(img, rel).astype(int)
    k, top = 8, 8  # 32 px enlarged to 256; picture starts 8 px down
    r, g, b = out[top + 2 * k, 2 * k]  # image px (2, 2): in model pixel (0, 0)
    assert r > b + 40 and r > g + 40  # RdBu_r at +max is dark red (103, 0, 31)
    r, g, b = out[top + 30 * k, 30 * k]  # image px (30, 30): model pixel (7, 7)
    assert b > r + 60
    assert (out[top + 16 * k, 16 * k] == 100).all()  # zero relevance: the image untouched
    x_bar = 256 + 8 + 6
    assert out[top + 2, x_bar, 0] > out[top + 2, x_bar, 2] + 60  # top of the bar: red
    assert out[top + 253, x_bar, 2] > out[top + 253, x_bar, 0] + 60  # bottom: blue
