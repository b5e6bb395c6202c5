"""Readers of real recordings, and the detectors against each tracker's own events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gazelab.gaze.fixations import DEFAULT_METHOD, detect_fixations
from gazelab.gaze.recordings import (
    RecordingFormatError,
    geometry_for,
    in_intervals,
    parse_eyelink_asc,
    parse_gazepoint_csv,
    parse_tobii_tsv,
    parse_tx300_tsv,
)

DATA = Path(__file__).parent / "data" / "recordings"
BINO = DATA / "pymovements_eyelink_binocular_example.asc"


def test_eyelink_binocular_file_one_eye_at_a_time():
    left, right = parse_eyelink_asc(BINO), parse_eyelink_asc(BINO, "R")
    assert (left.eye, right.eye, left.rate_hz) == ("L", "R", 1000.0)
    assert len(left.t_ms) == len(right.t_ms) == 368
    assert left.fixations.tolist() == [[1408667, 1408773], [1408897, 1409025]]
    assert right.fixations.tolist() == [[1408667, 1408777], [1408899, 1409027]]
    assert left.screen_px == (1920.0, 1080.0)
    assert left.px_per_deg == pytest.approx((47.75 + 45.92) / 2)
    assert 0.7 < left.valid.mean() < 0.8  # a blink: samples with "." positions
    assert np.isnan(left.x_px[~left.valid]).all()


def test_eyelink_reader_errors_and_whole_ms_at_2000_hz():
    with pytest.raises(RecordingFormatError, match="eye 'R' was not recorded"):
        parse_eyelink_asc(DATA / "pymovements_raccoons.asc", "R")
    with pytest.raises(RecordingFormatError, match="no SAMPLES line"):
        parse_eyelink_asc("MSG\t1 hello\n2\t1.0\t2.0\t3.0\n")
    text = "SAMPLES\tGAZE\tRIGHT\tRATE\t2000.00\n" + "".join(
        f"{100 + k // 2}\t{k}.0\t1.0\t900.0\t...\n" for k in range(6)
    )
    r = parse_eyelink_asc(text)  # old edf2asc writes 100, 100, 101, 101, ...
    assert r.t_ms.tolist() == [100.0, 100.5, 101.0, 101.5, 102.0, 102.5]


def test_tobii_export_reader_takes_fixations_from_the_filter_columns():
    rows = [
        ("0", "Eye Tracker", "100", "200", "Fixation", "1"),
        ("3", "Eye Tracker", "101", "201", "Fixation", "1"),
        ("5", "Gyroscope", "", "", "Fixation", "1"),
        ("7", "Eye Tracker", "300", "210", "Saccade", "1"),
        ("10", "Eye Tracker", "", "", "Unclassified", ""),
        ("13", "Eye Tracker", "400", "220", "Fixation", "2"),
        ("17", "Eye Tracker", "401", "221", "Fixation", "2"),
    ]
    head = "Recording timestamp\tSensor\tGaze point X\tGaze point Y\tEye movement type\t" \
        "Eye movement type index"  # fmt: skip
    r = parse_tobii_tsv(head + "\n" + "\n".join("\t".join(row) for row in rows) + "\n")
    assert r.t_ms.tolist() == [0, 3, 7, 10, 13, 17]  # the gyroscope row is dropped
    assert r.valid.tolist() == [True, True, True, False, True, True]
    assert r.fixations.tolist() == [[0, 3], [13, 17]]
    with pytest.raises(RecordingFormatError, match="no column GazeEventType"):
        parse_tobii_tsv("Recording timestamp\tGaze point X\tGaze point Y\n1\t2\t3\n")


def test_gazepoint_reader_takes_the_exported_fixations_or_the_valid_flag():
    # the filter flags a fixation valid (FPOGV) a few samples after its start FPOGS
    head = "CNT,TIME(2024),FPOGX,FPOGY,FPOGS,FPOGD,FPOGID,FPOGV,BPOGX,BPOGY,BPOGV"
    rows = [
        "0,0.000,0.5,0.5,0.000,0.000,7,0,0.50,0.50,1",
        "1,0.016,0.5,0.5,0.000,0.016,7,1,0.51,0.50,1",
        "2,0.033,0.5,0.5,0.000,0.033,7,1,0.70,0.50,1",
        "3,0.050,0.7,0.5,0.033,0.033,7,0,0.70,0.51,1",
        "4,0.066,0.7,0.5,0.050,0.016,8,1,0.70,0.51,1",
        "5,0.083,0.7,0.5,0.050,0.033,8,1,0.00,0.00,0",
        "6,0.100,0.7,0.5,0.100,0.000,9,0,0.90,0.90,1",
    ]
    text = head + "\n" + "\n".join(rows)
    r = parse_gazepoint_csv(text, (1920, 1080))
    np.testing.assert_allclose(r.t_ms, [0, 16, 33, 50, 66, 83, 100])
    assert r.x_px[0] == 960 and r.valid.tolist() == [True] * 5 + [False, True]
    # FPOGS + FPOGD of each fixation's last valid row (9 was never valid); bounds on samples
    assert r.fixations.tolist() == [[0, 33], [50, 83]]
    assert r.rate_hz == pytest.approx(1000 / 17)
    v = parse_gazepoint_csv(text, (1920, 1080), reference="valid")
    assert v.fixations.tolist() == [[16, 33], [66, 83]]
    old = "\n".join(",".join(c for i, c in enumerate(ln.split(",")) if i not in (4, 5))
                    for ln in text.splitlines())  # fmt: skip
    with pytest.raises(RecordingFormatError, match="reference='valid'"):
        parse_gazepoint_csv(old, (1920, 1080))
    assert parse_gazepoint_csv(old, (1920, 1080), reference="valid").fixations.tolist() == [
        [16, 33], [66, 83]]  # fmt: skip


def test_tx300_reader():
    r = parse_tx300_tsv(DATA / "i2mc_tx300_participant2_1.tsv")
    assert len(r.t_ms) == 1210 and 295 < r.rate_hz < 302
    assert 0.85 < r.valid.mean() < 0.95 and r.fixations.shape == (0, 2)
    assert np.nanmax(r.x_px) < 1920 and np.nanmin(r.y_px) > 0


def test_in_intervals_is_inclusive_and_takes_overlaps():
    t = np.arange(10.0)
    iv = np.array([[2, 4], [3, 5], [8, 8]])
    assert np.flatnonzero(in_intervals(t, iv)).tolist() == [2, 3, 4, 5, 8]
    assert not in_intervals(t, np.zeros((0, 2))).any()


@pytest.mark.parametrize(
    ("name", "eye"),
    [("pymovements_eyelink_binocular_example.asc", "L"),
     ("pymovements_eyelink_binocular_example.asc", "R"),
     ("pymovements_eyelink_monocular_no_dummy_example.asc", "L"),
     ("pymovements_raccoons.asc", "L")],
)  # fmt: skip
def test_default_detector_agrees_with_eyelinks_parser(name, eye):
    """Sample-level Cohen's κ of "in a fixation" against EyeLink's EFIX events (expert
    coders agree at about 0.9; Andersson et al. 2017), and the same fixation count."""
    from sklearn.metrics import cohen_kappa_score

    r = parse_eyelink_asc(DATA / name, eye)
    g = geometry_for(r.px_per_deg or 40.0, r.screen_px or (1920, 1080))
    fx = detect_fixations(r.samples(), DEFAULT_METHOD, g)
    pred = in_intervals(r.t_ms, np.stack([fx["onset_ms"], fx["offset_ms"]], axis=1))
    assert cohen_kappa_score(r.in_fixation(), pred) >= 0.85
    assert len(fx["onset_ms"]) == len(r.fixations)
