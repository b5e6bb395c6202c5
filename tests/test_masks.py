"""Masks (docs/algorithms.md#masks) on small hand-made relevance maps: exact expected masks."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.gaze.heatmaps import contour_mask, fixation_heatmap
from gazelab.models.masks import (
    MaskError,
    apply_mask,
    human_mask,
    human_mask_from_fixations,
    mean_mask,
    negative_mask,
    perceptive_mask,
)

R = np.array(
    [
        [0.0, 1.0, 2.0, 3.0, 4.0],
        [5.0, 6.0, 7.0, 8.0, 9.0],
        [10.0, 11.0, 12.0, 13.0, 14.0],
        [15.0, 16.0, 17.0, 18.0, 19.0],
    ]
)  # 20 distinct values


def test_negative_zeroes_exactly_the_top_fraction() -> None:
    m = negative_mask(R, 0.1)  # k = 2 -> 19 and 18 zeroed
    want = np.ones_like(R, dtype=bool)
    want[3, 3] = want[3, 4] = False
    assert np.array_equal(m, want)
    m = negative_mask(R, 0.25)  # k = 5 -> 15..19
    assert np.array_equal(m, R < 15)
    assert negative_mask(R, 0.0).all()
    assert np.array_equal(negative_mask(R, 1.0), R == 0)  # the minimum is never zeroed


def test_negative_ties_and_constant_maps() -> None:
    t = np.array([[1.0, 5.0, 5.0, 5.0], [2.0, 3.0, 0.0, 0.0]])
    # k = round(0.25 * 8) = 2; 2nd largest is 5 -> all three 5s zeroed together
    assert np.array_equal(negative_mask(t, 0.25), t < 5)
    assert negative_mask(np.full((3, 3), 7.0), 0.1).all()
    assert mean_mask(np.full((3, 3), 7.0)).all()


def test_mean_mask() -> None:
    assert np.array_equal(mean_mask(R), R >= 9.5)
    t = np.array([[0.0, 0.0, 3.0], [3.0, 0.0, 0.0]])  # mean 1
    assert np.array_equal(mean_mask(t), t == 3.0)


def test_perceptive_mask_is_the_support_of_the_top_n_heatmap() -> None:
    r = np.zeros((20, 30))
    r[5, 7] = 3.0
    r[14, 22] = 2.0
    r[0, 0] = 1.0
    m = perceptive_mask(r, 2, c=1.0, radius=2.0)
    yy, xx = np.mgrid[0:20, 0:30]
    d1 = (xx - 7) ** 2 + (yy - 5) ** 2
    d2 = (xx - 22) ** 2 + (yy - 14) ** 2
    assert np.array_equal(m, (d1 <= 4) | (d2 <= 4))
    assert m.sum() == 2 * 13  # a radius-2 disk has 13 pixels


def test_nan_and_bad_input_are_clear_errors() -> None:
    bad = R.copy()
    bad[1, 1] = np.nan
    for fn in (lambda: negative_mask(bad), lambda: mean_mask(bad),
               lambda: perceptive_mask(bad, 3, 1.0, 2.0)):  # fmt: skip
        with pytest.raises(MaskError, match="1 NaN"):
            fn()
    with pytest.raises(MaskError, match="fraction"):
        negative_mask(R, 1.5)
    with pytest.raises(MaskError, match=r"\(H, W\)"):
        mean_mask(np.zeros(5))
    with pytest.raises(MaskError, match="n >= 1"):
        perceptive_mask(R, 0, 1.0, 2.0)


def test_human_mask_equals_the_heatmap_support() -> None:
    pts = np.array([[40.0, 30.0], [90.0, 75.0]])
    heat = fixation_heatmap(pts, (120, 160), 6.0, 14.0)
    assert np.array_equal(human_mask(heat), contour_mask(heat))
    yy, xx = np.mgrid[0:120, 0:160]
    disks = ((xx - 40) ** 2 + (yy - 30) ** 2 <= 14**2) | ((xx - 90) ** 2 + (yy - 75) ** 2 <= 14**2)
    assert np.array_equal(human_mask(heat), disks)
    # at training resolution (half size): fixations and kernel scaled exactly
    small = human_mask_from_fixations(pts, (120, 160), (60, 80), 6.0, 14.0)
    yy, xx = np.mgrid[0:60, 0:80]
    want = ((xx - 20) ** 2 + (yy - 15) ** 2 <= 49) | ((xx - 45) ** 2 + (yy - 37.5) ** 2 <= 49)
    assert np.array_equal(small, want)


def test_apply_mask() -> None:
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    m = img > 5
    assert np.array_equal(apply_mask(img, m), np.where(m, img, 0))
    rgb = np.stack([img] * 3, axis=-1)
    assert np.array_equal(apply_mask(rgb, m)[..., 2], np.where(m, img, 0))
    with pytest.raises(MaskError):
        apply_mask(img, m[:2])


def test_every_mask_algorithm_is_registered_and_a_cli_choice():
    from gazelab.app.cli import build_parser
    from gazelab.models.masks import ALGORITHMS, HUMAN, MODEL_MASKS

    assert {"negative", "mean", "perceptive", "random"} <= set(MODEL_MASKS)  # random: a module
    assert ALGORITHMS == (*MODEL_MASKS, HUMAN)
    masks = build_parser()._subparsers._group_actions[0].choices["masks"]  # type: ignore[union-attr]
    algorithm = next(a for a in masks._actions if a.dest == "algorithm")
    assert tuple(algorithm.choices) == ALGORITHMS
