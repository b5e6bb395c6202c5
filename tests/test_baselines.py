"""Shuffled-image and centre-bias baselines on hand-made maps with known answers, and in a
comparison report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from gazelab.analysis.baselines import (
    baseline_rows,
    baseline_summary,
    centre_gaussian,
    keep_top_fraction,
    layout_sentence,
    leave_one_out_means,
    mean_ci,
    ratio_ci,
)
from gazelab.analysis.compare import METRICS, AnnotatorGaze, Comparison, ImageAnalysis, summaries
from gazelab.gaze.heatmaps import fixation_heatmap
from gazelab.settings import AnalysisSettings

SHAPE = (24, 24)
C, RADIUS = 1.5, 3.0


def spot(x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    pts = np.array([[x, y]], dtype=np.float64)
    return pts, fixation_heatmap(pts, SHAPE, C, RADIUS)


def hand_made(positions: list[tuple[float, float]], model: bool = True) -> Comparison:
    """Annotators A and B (and the model) look at ``positions[i]`` on image ``i``."""
    images = []
    for i, (x, y) in enumerate(positions):
        pts, heat = spot(x, y)
        humans = {a: AnnotatorGaze(a, k, "happy", pts, pts, heat) for k, a in enumerate("AB")}
        im = ImageAnalysis(f"im{i}", "happy", np.zeros(SHAPE, np.uint8), None, humans,
                           kernel_px=(C, RADIUS))  # fmt: skip
        if model:
            im.model_points, im.model_heatmap = pts, heat
        for a in "AB":
            from gazelab.analysis.compare import score_maps

            base = {"image_id": im.image_id, "class": "happy", "annotator": a, "label": "happy"}
            im.rows.append({**base, "reference": "model", "kind": "model",
                            **score_maps(heat, heat, pts)})  # fmt: skip
            im.rows.append({**base, "reference": "BA"[a == "B"], "kind": "human",
                            **score_maps(heat, heat, pts)})  # fmt: skip
        images.append(im)
    return Comparison(images, ["A", "B"], [1, 2], AnalysisSettings(), 1, 1.0,
                      {"c": C, "radius": RADIUS}, "m", "h", "")  # fmt: skip


FAR_APART = [(4.0, 4.0), (19.0, 4.0), (4.0, 19.0), (19.0, 19.0)]  # 15 px apart, radius 3
SAME_SPOT = [(11.5, 11.5)] * 4  # the layout: every image looked at in the same place (centre)


def _row(summary, kind, base, metric):  # type: ignore[no-untyped-def]
    return next(r for r in summary if r["versus"] == kind and r["baseline"] == base
                and r["metric"] == metric)  # fmt: skip


def test_pure_layout_is_all_baseline() -> None:
    comp = hand_made(SAME_SPOT)
    rows = baseline_rows(comp, draws=2, seed=1)
    shuffled = [r for r in rows if r["baseline"] == "shuffled"]
    assert len(shuffled) == 4 * 2 * 2  # (image, annotator) x (the other annotator, the model)
    assert all(r["draws"] == 2 for r in shuffled)
    assert all(r["iou"] == pytest.approx(1.0) for r in rows)  # centre rows too
    summ = baseline_summary(comp.rows, rows)
    for kind in ("human", "model"):
        for base in ("shuffled", "centre"):
            iou = _row(summ, kind, base, "iou")
            assert iou["observed"] == pytest.approx(1.0) and iou["images"] == 4
            assert iou["difference"] == pytest.approx(0.0, abs=1e-12)
            assert iou["ratio"] == pytest.approx(1.0) and iou["layout_share"] == pytest.approx(1.0)
            nss = _row(summ, kind, base, "nss")
            assert nss["ratio"] == pytest.approx(1.0)
    sentence = layout_sentence(summ)
    assert (
        sentence.startswith("Maps made on other images")
        and "100% of the human-vs-human IOU" in sentence
    )
    assert "100% of the model-vs-human IOU" in sentence


def test_image_specific_looks_are_none_baseline() -> None:
    comp = hand_made(FAR_APART)
    rows = baseline_rows(comp, draws=3, seed=0)
    for r in rows:
        assert r["iou"] == 0.0  # another image's spot and the centre never overlap this one
        assert r["cosine_distance"] == pytest.approx(1.0)
    summ = baseline_summary(comp.rows, rows)
    iou = _row(summ, "human", "shuffled", "iou")
    assert iou["observed"] == 1.0 and iou["baseline_mean"] == 0.0
    assert iou["difference"] == pytest.approx(1.0) and iou["difference_ci"] == pytest.approx(0.0)
    assert math.isnan(iou["ratio"]) and iou["layout_share"] == 0.0
    # NSS of a map elsewhere at this image's fixation: its value there is 0, below the mean
    nss = _row(summ, "model", "shuffled", "nss")
    assert nss["baseline_mean"] < 0 < nss["observed"]
    assert "0% of the human-vs-human IOU (0.000 of 1.000" in layout_sentence(summ)


def test_shuffled_draws_only_other_images_of_the_same_size() -> None:
    comp = hand_made(FAR_APART[:2])
    big = hand_made([(30.0, 30.0)]).images[0]
    big.image, big.image_id = np.zeros((40, 40), np.uint8), "big"
    comp.images.append(big)
    rows = baseline_rows(comp, draws=5)
    by = {(r["image_id"], r["annotator"], r["reference"]): r for r in rows}
    assert by["im0", "A", "B"]["draws"] == 1  # im1 only: im0 is itself, the big one differs
    assert by["im0", "A", "model"]["draws"] == 1
    alone = by[big.image_id, "A", "B"]
    assert alone["draws"] == 0 and math.isnan(alone["iou"])  # no other 40x40 image
    assert by[big.image_id, "A", "centre"]["draws"] == 0


def test_a_large_study_scores_a_seeded_sample_of_its_images() -> None:
    comp = hand_made([(4.0 + 3 * k, 4.0) for k in range(6)])
    rows = baseline_rows(comp, draws=2, max_images=3, seed=5)
    scored = sorted({r["image_id"] for r in rows})
    assert len(scored) == 3 and len(rows) == 3 * 2 * 3  # centre, model, other annotator
    assert scored == sorted({r["image_id"] for r in baseline_rows(comp, max_images=3, seed=5)})
    summ = baseline_summary(comp.rows, rows)
    assert {r["images"] for r in summ} == {3}  # observed scores on the same 3 images
    assert len({r["image_id"] for r in baseline_rows(comp, max_images=None)}) == 6


def test_centre_maps() -> None:
    g = centre_gaussian((5, 5), 0.2)
    assert g[2, 2] == 1.0 and g[0, 0] == pytest.approx(math.exp(-(2**2 + 2**2) / (2 * 1.0**2)))
    assert np.array_equal(keep_top_fraction(g, 1 / 25) > 0, np.eye(5, dtype=bool) & (g == 1))
    assert np.count_nonzero(keep_top_fraction(g, 5 / 25)) == 5  # centre and its 4 neighbours
    a, b, c = np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))
    a[0, 0], b[0, 1], c[1, 1] = 2.0, 1.0, 4.0
    m = leave_one_out_means([[a], [b, c], []])
    assert np.allclose(m[0], [[0, 0.5], [0, 0.5]])  # b and c at unit mass, a left out
    assert np.allclose(m[1], [[1, 0], [0, 0]]) and m[2] is None
    # the Gaussian centre on the layout set: a centred spot is hit, corners are not
    rows = baseline_rows(hand_made(SAME_SPOT), centre="gaussian")
    assert all(r["iou"] == pytest.approx(1.0) for r in rows if r["baseline"] == "centre")
    rows = baseline_rows(hand_made(FAR_APART), centre="gaussian")
    assert all(r["iou"] == 0.0 for r in rows if r["baseline"] == "centre")
    with pytest.raises(ValueError, match="centre 'corner'"):
        baseline_rows(hand_made(SAME_SPOT), centre="corner")


def test_confidence_intervals_over_images() -> None:
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    assert ratio_ci([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]) == (2.0, 2.0, 2.0)
    r, lo, hi = ratio_ci([0.5, 0.6, 0.7, 0.8], [0.4, 0.4, 0.5, 0.5])
    assert r == pytest.approx(2.6 / 1.8) and lo < r < hi
    # per-image means first, then the CI over the 3 images (not over the 6 rows)
    obs = [{"image_id": f"i{k}", "annotator": a, "kind": "human", "iou": v}
           for k, v in enumerate([0.5, 0.6, 0.7]) for a in "AB"]  # fmt: skip
    base = [{"image_id": f"i{k}", "annotator": a, "versus": "human", "baseline": "shuffled",
             "iou": 0.4} for k in range(3) for a in "AB"]  # fmt: skip
    row = baseline_summary(obs, base, metrics=["iou"])[0]
    assert row["images"] == 3 and row["difference"] == pytest.approx(0.2)
    assert row["difference_ci"] == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3))
    assert row["ratio"] == pytest.approx(1.5) and row["layout_share"] == pytest.approx(0.4 / 0.6)


def test_summaries_and_report_carry_the_baselines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.analysis.report import write_report

    comp = hand_made(SAME_SPOT)
    comp.baselines = baseline_rows(comp, draws=2)
    comp.baseline_settings = {"draws": 2, "seed": 0, "centre": "mean"}
    summ = summaries(comp)
    assert summ["layout_note"].startswith("Maps made on other images")
    assert {r["metric"] for r in summ["baselines"]} == set(METRICS)
    md = write_report(comp, tmp_path / "r").read_text()
    assert "## Baselines: how much of the agreement is face layout" in md
    assert (
        "| human | shuffled | iou | 4 | 1.000 | 1.000 | +0.000 ± 0.000 | 1.00 [1.00, 1.00] |" in md
    )
    assert "100% of the human-vs-human IOU" in md
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["baselines"] and doc["layout_note"] == summ["layout_note"]
    assert (tmp_path / "r" / "baselines.csv").read_text().count("\n") == len(comp.baselines) + 1
    assert (tmp_path / "r" / "baselines_summary.csv").stat().st_size > 0


# slow tier: quick: test_summaries_and_report_carry_the_baselines and test_scoring's analyse_project rows
@pytest.mark.slow
@pytest.mark.tf
def test_analyse_project_scores_recorded_sessions_against_the_baselines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two recorded annotators who fixate the same three points on every image agree
    perfectly, and all of it is layout: the shuffled-image baseline reaches it (ratio 1)."""
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.analysis.compare import analyse_project
    from gazelab.annotation.store import SessionStore
    from gazelab.models.architectures import build_model
    from gazelab.models.datasets.registry import open_image_set
    from gazelab.tests.gaze_project import write_gaze_session

    source = "synthetic:4:7:64"
    src = open_image_set(source)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    same = {iid: [(10.0, 12.0), (40.0, 20.0), (30.0, 50.0)] for iid in src.ids}
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        ids = [write_gaze_session(store, name, source, same, truth) for name in ("A", "A2")]
        tf.keras.utils.set_random_seed(0)
        model = build_model("small_cnn", (32, 32, 1), len(CLASSES))
        comp = analyse_project(store, model, ids, analysis=AnalysisSettings(analyzer="gradient"),
                               baseline_draws=2)  # fmt: skip
    assert comp.baseline_settings == {"draws": 2, "seed": 0, "centre": "mean", "max_images": 100,
                                      "max_maps": 200, "maps": 8,
                                      "maps_by_annotator": {"A": 4, "A2": 4}}  # fmt: skip
    summ = summaries(comp)
    iou = _row(summ["baselines"], "human", "shuffled", "iou")
    assert iou["images"] == 4 and iou["observed"] == pytest.approx(1.0)
    assert iou["ratio"] == pytest.approx(1.0) and iou["layout_share"] == pytest.approx(1.0)
    assert "100% of the human-vs-human IOU" in summ["layout_note"]
    model_rows = [r for r in comp.baselines if r["versus"] == "model"]
    assert len(model_rows) == 8 and all(r["draws"] == 2 for r in model_rows)
