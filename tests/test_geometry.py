"""Geometry of the reference set-up (docs/running-a-session.md#the-protocol,
docs/algorithms.md#heatmaps) and the frame mappings."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.gaze.geometry import DisplayGeometry, StimulusLayout, gaussian_c, visual_span_px


def test_reference_set_up_numbers(reference_geometry):
    g = reference_geometry
    assert g.pixel_pitch_mm == pytest.approx(0.2335, abs=5e-4)
    span = visual_span_px(g, 5.0)
    assert span == pytest.approx(262, abs=1)
    c = gaussian_c(span, 0.4)
    assert c == pytest.approx(44.5, abs=0.2)
    assert 2 * np.sqrt(2 * np.log(2)) * c == pytest.approx(105, abs=1)  # FWHM


def test_degrees_pixels_round_trip(reference_geometry):
    for deg in (0.5, 1.0, 5.0, 20.0):
        assert reference_geometry.px_to_deg(reference_geometry.deg_to_px(deg)) == pytest.approx(deg)
    assert reference_geometry.deg_to_px(1.0) == pytest.approx(52.35, abs=0.05)


def test_invalid_geometry_is_refused():
    with pytest.raises(ValueError, match="distance_mm"):
        DisplayGeometry(distance_mm=0)
    with pytest.raises(ValueError, match="diagonal_in"):
        DisplayGeometry.from_diagonal(-1)


def test_stimulus_square_is_centred_and_images_keep_their_aspect():
    lay = StimulusLayout(screen_px=(2560, 1440), square_px=1200, image_shape=(490, 640))  # CK+ size
    assert lay.square_origin == (680.0, 120.0)
    assert lay.scale == pytest.approx(1200 / 640)
    x, y, w, h = lay.image_rect_on_screen
    assert (x, w) == (680.0, 1200.0)
    assert h == pytest.approx(490 * 1200 / 640) and y == pytest.approx(120 + (1200 - h) / 2)
    # the image centre is the screen centre; corners map to corners
    assert lay.image_to_screen([[320, 245]]).tolist() == [[1280.0, 720.0]]
    assert lay.screen_to_image([[x, y]]) == pytest.approx(np.array([[0.0, 0.0]]))
    pts = np.array([[0.0, 0.0], [639.5, 489.5], [100.25, 3.0]])
    assert lay.screen_to_image(lay.image_to_screen(pts)) == pytest.approx(pts)
    assert lay.inside_image([[1280, 720], [1280, 130]]).tolist() == [True, False]


def test_the_stimulus_square_fits_common_lab_screens():
    from gazelab.gaze.geometry import fit_stimulus_square

    assert fit_stimulus_square((2560, 1440), 1200, 30) == 1200  # the reference: unchanged
    assert fit_stimulus_square((1920, 1080), 1200, 30) == 1080 - 60
    assert fit_stimulus_square((1366, 768), 1200, 30) == 768 - 60
    assert fit_stimulus_square((1080, 1920), 1200, 30) == 1080  # portrait: the width limits
    lay = StimulusLayout((1920, 1080), 1020, (490, 640))  # CK+ on the fitted square
    x, y, w, h = lay.image_rect_on_screen
    assert (x, w) == (450.0, 1020.0) and y + h <= 1080 - 30
