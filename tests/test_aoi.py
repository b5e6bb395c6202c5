"""Areas of interest (analysis/aoi.py): shapes, statistics on hand-placed fixations,
relevance shares, AOIs from region maps, files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gazelab.analysis.aoi import (
    AOI,
    AOIError,
    aoi_statistics,
    aois_from_regions,
    image_aoi_rows,
    parse_aois,
    read_aoi_file,
    relevance_on_image,
    relevance_share,
    write_aoi_file,
)
from gazelab.errors import GazelabError

SQUARE = AOI.polygon("square", [(10, 10), (30, 10), (30, 30), (10, 30)])


def test_polygon_and_ellipse_contain_points() -> None:
    pts = [(20, 20), (9, 20), (31, 20), (10.5, 29.5)]
    assert SQUARE.contains(pts).tolist() == [True, False, False, True]
    e = AOI.ellipse("e", (50, 50), (20, 5))
    assert e.contains([(69, 50), (71, 50), (50, 54), (50, 56)]).tolist() == [True, False, True,
                                                                           False]  # fmt: skip
    # turned 90 degrees: the long axis is vertical
    v = AOI.ellipse("v", (50, 50), (20, 5), angle_deg=90)
    assert v.contains([(50, 69), (69, 50)]).tolist() == [True, False]
    # a concave polygon (an L): its notch is outside
    ell = AOI.polygon("L", [(0, 0), (20, 0), (20, 10), (10, 10), (10, 20), (0, 20)])
    assert ell.contains([(5, 15), (15, 15), (15, 5)]).tolist() == [True, False, True]


def test_masks_have_the_areas_of_their_shapes() -> None:
    assert SQUARE.mask((40, 40)).sum() == 400
    e = AOI.ellipse("e", (50, 50), (30, 10), angle_deg=30)
    assert e.mask((100, 100)).sum() == pytest.approx(math.pi * 30 * 10, rel=0.01)
    assert np.allclose(e.outline()[0], [50 + 30 * math.cos(math.radians(30)),
                                        50 - 30 * math.sin(math.radians(30))])  # fmt: skip


def test_statistics_of_hand_placed_fixations() -> None:
    """Fixations in time order: in (100 ms), out (200), in (300), in (50), out (400).
    Dwell 450 ms, 3 fixations, first at 0 ms, 2 visits (1 revisit), share 450 / 1050."""
    xy = [(20, 20), (50, 50), (15, 25), (25, 12), (60, 60)]
    onset = [0, 150, 400, 750, 850]
    dur = [100, 200, 300, 50, 400]
    st = aoi_statistics(SQUARE, xy, onset, dur)
    assert st["dwell_ms"] == 450 and st["fixations"] == 3 and st["ttff_ms"] == 0
    assert st["visits"] == 2 and st["revisits"] == 1
    assert st["dwell_share"] == pytest.approx(450 / 1050)
    assert math.isnan(st["relevance_share"])
    # given out of order, the same answers (time order decides visits)
    perm = [4, 2, 0, 3, 1]
    st2 = aoi_statistics(SQUARE, np.array(xy)[perm], np.array(onset)[perm], np.array(dur)[perm])
    assert st2 == st
    # first fixation inside later: time to first fixation is its onset
    st3 = aoi_statistics(SQUARE, xy[1:], onset[1:], dur[1:])
    assert st3["ttff_ms"] == 400 and st3["visits"] == 1 and st3["revisits"] == 0
    none = aoi_statistics(SQUARE, [(50, 50)], [0], [100])
    assert none["fixations"] == 0 and math.isnan(none["ttff_ms"]) and none["revisits"] == 0
    empty = aoi_statistics(SQUARE, np.zeros((0, 2)), [], [])
    assert empty["dwell_ms"] == 0 and math.isnan(empty["dwell_share"])


def test_relevance_share_counts_positive_relevance_inside() -> None:
    r = np.zeros((40, 40))
    r[15, 15] = 3.0  # inside the square
    r[35, 35] = 1.0  # outside
    r[20, 20] = -5.0  # negative relevance is not counted
    assert relevance_share(SQUARE, r) == pytest.approx(0.75)
    assert math.isnan(relevance_share(SQUARE, np.zeros((40, 40))))
    st = aoi_statistics(SQUARE, [(20, 20)], [0], [100], relevance=r)
    assert st["relevance_share"] == pytest.approx(0.75)


def test_relevance_on_image_takes_the_model_pixel_under_each_image_pixel() -> None:
    rel = np.arange(4.0).reshape(2, 2)  # model input 2x2
    img = relevance_on_image(rel, (4, 6))  # image 4 rows, 6 columns
    assert img.shape == (4, 6)
    assert img[:2, :3].tolist() == [[0.0] * 3] * 2 and img[2:, 3:].tolist() == [[3.0] * 3] * 2


def test_rows_per_aoi_and_annotator() -> None:
    r = np.zeros((40, 40))
    r[12, 12] = 1.0
    rows = image_aoi_rows("img", "happy", [SQUARE],
                          {"A": ([(20, 20)], [0], [250]), "B": ([(35, 35)], [0], [100])}, r)  # fmt: skip
    assert [(x["annotator"], x["dwell_ms"], x["relevance_share"]) for x in rows] == [
        ("A", 250.0, 1.0),
        ("B", 0.0, 1.0),
    ]
    assert rows[0]["image_id"] == "img" and rows[0]["class"] == "happy"


def test_regions_become_ellipses_with_their_moments() -> None:
    """Two drawn ellipses (left: radii 12 x 6; right: radii 5 x 9) come back as ellipses
    with the same centres and radii (within a pixel), named left to right."""
    shape = (80, 120)
    left = AOI.ellipse("", (30.0, 40.0), (12.0, 6.0)).mask(shape)
    right = AOI.ellipse("", (90.0, 42.0), (5.0, 9.0)).mask(shape)
    found = aois_from_regions((left | right).astype(np.float32))
    assert [a.name for a in found] == ["region 1", "region 2"]
    (c1, r1, _), (c2, r2, _) = found[0].coords, found[1].coords
    assert np.allclose(c1, (30, 40), atol=0.5) and np.allclose(c2, (90, 42), atol=0.5)
    assert np.allclose(sorted(r1), (6, 12), atol=0.7) and np.allclose(sorted(r2), (5, 9), atol=0.7)
    assert abs(found[0].mask(shape).sum() - left.sum()) / left.sum() < 0.08
    assert aois_from_regions(np.zeros(shape, np.float32)) == []


def test_regions_of_the_synthetic_faces_are_aois() -> None:
    from gazelab.models.datasets.registry import open_image_set

    src = open_image_set("synthetic:2:3:96")
    for iid in src.ids:
        regions = src.regions[iid]
        aois = aois_from_regions(regions)
        assert aois
        # most of each region's area lies in its AOI
        covered = np.zeros(regions.shape, bool)
        for a in aois:
            covered |= a.mask(regions.shape)
        inside = regions > 0.5
        assert (covered & inside).sum() / inside.sum() > 0.85


def test_files_round_trip_and_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    aois = {"img-1": [SQUARE, AOI.ellipse("mouth", (48, 70), (20, 8), 15)]}
    back = read_aoi_file(write_aoi_file(tmp_path / "a.json", aois))
    assert back == aois
    csv_text = (
        "image_id,name,shape,coords\n"
        'img-1,eyes,polygon,"10 10 40 10 40 20"\n'
        'img-1,mouth,ellipse,"48 70 20 8"\n'
    )
    (tmp_path / "a.csv").write_text(csv_text)
    got = read_aoi_file(tmp_path / "a.csv")["img-1"]
    assert got[0] == AOI.polygon("eyes", [(10, 10), (40, 10), (40, 20)])
    assert got[1] == AOI.ellipse("mouth", (48, 70), (20, 8), 0.0)


@pytest.mark.parametrize(
    ("text", "fmt", "words"),
    [
        ("{not json", "json", "not valid JSON"),
        ('{"x": [{"name": "a"}]}', "json", "neither"),
        ('{"x": [{"name": "a", "polygon": [[0, 0], [1, 1]]}]}', "json", "3 or more"),
        ('{"x": [{"name": "a", "ellipse": [0, 0, -1, 2]}]}', "json", "radii > 0"),
        ("image_id,name\nx,a\n", "csv", "columns"),
        ('image_id,name,shape,coords\nx,a,circle,"1 2 3"\n', "csv", "line 2"),
        ('image_id,name,shape,coords\nx,a,polygon,"1 2 3"\n', "csv", "x y pairs"),
        ("", "txt", ".json or .csv"),
    ],
)
def test_malformed_aoi_files_are_one_line_errors(text: str, fmt: str, words: str) -> None:
    with pytest.raises(AOIError, match=words) as info:
        parse_aois(text, fmt=fmt, source="f")
    assert isinstance(info.value, GazelabError)
