"""Fixation heatmaps against the closed form of docs/algorithms.md#heatmaps."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.gaze.geometry import FWHM_PER_SIGMA
from gazelab.gaze.heatmaps import (
    HeatmapKernel,
    contour_mask,
    fixation_heatmap,
    fixation_heatmap_naive,
    resample_heatmap,
)

C, R = 44.5, 131.0


def test_single_fixation_peak_half_maximum_and_cut_off():
    h = fixation_heatmap([(300, 200)], (400, 600), C, R)
    assert h[200, 300] == pytest.approx(1.0)
    half = FWHM_PER_SIGMA * C / 2
    # value at distance FWHM/2 is exactly one half (evaluate the closed form there)
    x = 300 + half
    x0 = int(np.floor(x))
    f = x - x0
    interp_target = (1 - f) * h[200, x0] + f * h[200, x0 + 1]
    assert interp_target == pytest.approx(0.5, abs=2e-3)
    assert h[200, 300 + 131] == pytest.approx(np.exp(-(131**2) / (2 * C**2)))
    assert h[200, 300 + 132] == 0.0 and h[200 - 132, 300] == 0.0
    assert contour_mask(h).sum() == sum(
        1 for yy in range(400) for xx in range(600) if (xx - 300) ** 2 + (yy - 200) ** 2 <= R**2
    )


def test_value_at_half_width_is_one_half_exactly():
    c = 10.0
    half = FWHM_PER_SIGMA * c / 2
    h = fixation_heatmap([(50 - half, 50)], (100, 100), c, 40)
    assert h[50, 50] == pytest.approx(0.5, rel=1e-12)


def test_two_fixations_add():
    a = fixation_heatmap([(100, 100)], (300, 300), C, R)
    b = fixation_heatmap([(160, 130)], (300, 300), C, R)
    both = fixation_heatmap([(100, 100), (160, 130)], (300, 300), C, R)
    assert np.allclose(both, a + b, atol=1e-15)
    assert both[100, 100] == pytest.approx(1 + np.exp(-(60**2 + 30**2) / (2 * C**2)))


def test_weights_scale_terms():
    h = fixation_heatmap([(50, 50), (50, 50)], (100, 100), 10, 30, weights=[2.0, 0.5])
    assert h[50, 50] == pytest.approx(2.5)


@pytest.mark.parametrize("point", [(0, 0), (599, 399), (-50, 200), (650, 420), (300.3, -20.7)])
def test_on_and_off_edge_fixations_match_the_full_frame_sum(point):
    fast = fixation_heatmap([point], (400, 600), C, R)
    ref = fixation_heatmap_naive([point], (400, 600), C, R)
    assert np.max(np.abs(fast - ref)) <= 1e-12


def test_far_away_fixation_leaves_the_map_empty():
    assert fixation_heatmap([(-500, -500)], (50, 50), C, R).sum() == 0.0


def test_fractional_points_match_the_naive_sum():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-100, 700, size=(40, 2))
    w = rng.uniform(0.1, 3.0, size=40)
    assert (
        np.max(
            np.abs(
                fixation_heatmap(pts, (500, 600), C, R, w)
                - fixation_heatmap_naive(pts, (500, 600), C, R, w)
            )
        )
        <= 1e-9
    )


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        fixation_heatmap([(np.nan, 1)], (10, 10), 1, 2)
    with pytest.raises(ValueError, match="c ="):
        fixation_heatmap([(1, 1)], (10, 10), 0, 2)


def test_kernel_from_reference_geometry(reference_geometry):
    k = HeatmapKernel.from_geometry(reference_geometry)
    assert k.c == pytest.approx(44.5, abs=0.2) and k.radius == pytest.approx(131, abs=0.5)
    assert k.scaled(0.5).c == pytest.approx(k.c / 2)


def test_resampling_keeps_the_shape_of_the_map():
    from scipy import ndimage

    k = 96 / 1200
    h = fixation_heatmap([(600, 600)], (1200, 1200), C, R)
    small = resample_heatmap(h, (96, 96))
    centre = (600 + 0.5) * k - 0.5  # pixel centres aligned
    direct = fixation_heatmap([(centre, centre)], (96, 96), C * k, R * k)
    assert small.shape == (96, 96)
    assert np.abs(small - direct).max() < 0.06
    # the contour moves by at most one target pixel
    d = contour_mask(direct)
    s = contour_mask(small)
    assert np.all(s <= ndimage.binary_dilation(d))
    assert np.all(ndimage.binary_erosion(d) <= s)
    assert np.array_equal(resample_heatmap(h, (1200, 1200)), h)
    up = resample_heatmap(small, (192, 192))
    assert up.max() == pytest.approx(small.max(), rel=0.05)
