"""Human vs model comparison over a project: numbers on hand-placed fixations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gazelab import CLASSES
from gazelab.analysis.cache import SaliencyCache
from gazelab.analysis.compare import (
    AnalysisError,
    analyse_project,
    summaries,
)
from gazelab.analysis.report import write_report
from gazelab.annotation.store import SessionStore
from gazelab.models.datasets.registry import open_image_set
from gazelab.settings import AnalysisSettings
from gazelab.tests.gaze_project import write_gaze_session

pytestmark = pytest.mark.tf
SOURCE = "synthetic:4:7:64"


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab.models.architectures import build_model

    tf.keras.utils.set_random_seed(0)
    return build_model("small_cnn", (32, 32, 1), len(CLASSES))


@pytest.fixture()
def project(tmp_path):  # type: ignore[no-untyped-def]
    src = open_image_set(SOURCE)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    a_fix = {iid: [(10.0, 12.0), (40.0, 20.0), (30.0, 50.0)] for iid in src.ids}
    b_fix = {iid: [(50.0, 50.0), (12.0, 40.0), (33.0, 8.0), (20.0, 20.0), (55.0, 30.0)]
             for iid in src.ids}  # fmt: skip
    wrong = dict(truth)
    first = src.ids[0]
    wrong[first] = CLASSES[(CLASSES.index(truth[first]) + 1) % len(CLASSES)]
    store = SessionStore(tmp_path / "project.sqlite", create=True)
    sa = write_gaze_session(store, "A", SOURCE, a_fix, truth)
    sa2 = write_gaze_session(store, "A-copy", SOURCE, a_fix, truth)
    sb = write_gaze_session(store, "B", SOURCE, b_fix, wrong)
    yield store, (sa, sa2, sb), truth
    store.close()


def test_identical_annotators_agree_perfectly_and_n_is_the_mean(project, model) -> None:  # type: ignore[no-untyped-def]
    store, (sa, sa2, sb), _ = project
    comp = analyse_project(
        store, model, [sa, sa2, sb], analysis=AnalysisSettings(analyzer="gradient")
    )
    assert comp.annotators == ["A", "A-copy", "B"]
    assert len(comp.images) == 4
    # 3 + 3 + 5 fixations per image -> mean 11/3 -> n = 4
    assert comp.mean_points == pytest.approx(11 / 3)
    assert comp.n_points == 4
    df = comp.frame()
    same = df[(df.annotator == "A") & (df.reference == "A-copy")]
    assert len(same) == 4
    assert np.allclose(same["iou"], 1.0)
    assert np.allclose(same["spearman"], 1.0)
    assert np.allclose(same["cosine_distance"], 0.0, atol=1e-12)
    assert np.allclose(same["sim"], 1.0)
    # the fixation centroids come back at the planted image points
    im = comp.images[0]
    assert np.allclose(np.sort(im.humans["A"].fixations, axis=0),
                       np.sort(np.array([(10.0, 12.0), (40.0, 20.0), (30.0, 50.0)]), axis=0),
                       atol=0.05)  # fmt: skip
    for im in comp.images:
        assert im.model_points is not None and len(im.model_points) == 4
        assert im.model_heatmap is not None and im.model_heatmap.shape == (64, 64)
    vs_model = df[df.kind == "model"]
    assert len(vs_model) == 12 and vs_model["iou"].between(0, 1).all()


def test_sample_points_and_labels(project, model) -> None:  # type: ignore[no-untyped-def]
    store, (sa, _sa2, sb), truth = project
    comp = analyse_project(
        store,
        model,
        [sa, sb],
        analysis=AnalysisSettings(analyzer="gradient", point_source="samples"),
    )
    # every fixation is 18 samples (300 ms at 60 Hz): mean (3 + 5) / 2 * 18 = 72
    assert comp.mean_points == pytest.approx(72.0)
    assert comp.n_points == 72
    lab = summaries(comp)["labels"]
    assert lab["annotators"]["A"]["accuracy"] == 1.0
    assert lab["annotators"]["B"]["accuracy"] == pytest.approx(0.75)
    from sklearn.metrics import cohen_kappa_score

    ids = [im.image_id for im in comp.images]
    la = [im.humans["A"].label for im in comp.images]
    lb = [im.humans["B"].label for im in comp.images]
    assert ids and lab["kappa"][0]["kappa"] == pytest.approx(cohen_kappa_score(la, lb))
    conf = np.array(lab["annotators"]["B"]["confusion"])
    assert conf.sum() == 4 and np.trace(conf) == 3


def test_report_files_and_cache(project, model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, (sa, _sa2, sb), _ = project
    cache = SaliencyCache(tmp_path / "cache")
    an = AnalysisSettings(analyzer="gradient")
    first = analyse_project(store, model, [sa, sb], analysis=an, cache=cache)
    assert first.computed_maps == 4
    again = analyse_project(store, model, [sa, sb], analysis=an, cache=cache)
    assert again.computed_maps == 0
    for a, b in zip(first.images, again.images, strict=True):
        assert np.array_equal(a.relevance, b.relevance)
    other = analyse_project(store, model, [sa, sb], analysis=AnalysisSettings(analyzer="gradcam"),
                            cache=cache)  # fmt: skip
    assert other.computed_maps == 4

    md = write_report(first, tmp_path / "report")
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["n_points"] == 4 and doc["point_source"] == "events"
    assert doc["analyzer"] == "gradient" and 'analyzer = "gradient"' in doc["settings_toml"]
    rows = [r for r in doc["by_annotator"] if r["annotator"] == "A" and r["versus"] == "model"]
    assert rows[0]["n"] == 4
    df = first.frame()
    want = df[(df.annotator == "A") & (df.kind == "model")]["iou"]
    assert rows[0]["iou_mean"] == pytest.approx(want.mean())
    assert rows[0]["iou_sd"] == pytest.approx(want.std(ddof=1))
    text = md.read_text()
    assert "| A | model | 4 |" in text and "Cohen's κ A vs B" in text
    for name in ("rows.csv", "by_annotator.csv", "by_class.csv", "figures/metrics.png",
                 "figures/confusion.png"):  # fmt: skip
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert len(list((tmp_path / "report" / "figures").glob("synthetic*.png"))) == 4


def test_relevance_points_map_pixel_centres_into_the_image() -> None:
    from gazelab.gaze.geometry import model_input_to_image

    pts = model_input_to_image(np.array([[0.0, 0.0], [31.0, 15.0]]), (32, 32), (64, 128))
    assert np.allclose(pts, [[2.0, 1.0], [126.0, 31.0]])


def test_errors_name_the_session(tmp_path, model) -> None:  # type: ignore[no-untyped-def]
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        with pytest.raises(AnalysisError, match="no sessions"):
            analyse_project(store, model)
        rec = store.create_session("X", settings_toml="", seed=0, image_source="folder:/no/such/dir",
                                   stimulus_order=["a"], start_local_s=0.0)  # fmt: skip
        with pytest.raises(AnalysisError, match="not in"):
            analyse_project(store, model, [rec.id + 5])
        with pytest.raises(AnalysisError, match=f"session {rec.id} .*image source"):
            analyse_project(store, model)


def test_duration_weighting_reaches_the_comparison(tmp_path, model) -> None:  # type: ignore[no-untyped-def]
    """``heatmap.duration_weighting`` stored with a session weights the heatmaps that
    compare (and so masks and the viewer) builds: each planted fixation lasts 17 sample
    intervals of 1/60 s, so every weighted map is 283.3 ms × the unweighted one."""
    from gazelab.settings import HeatmapSettings, Settings

    src = open_image_set(SOURCE)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    fix = {iid: [(10.0, 12.0), (40.0, 20.0)] for iid in src.ids}
    maps = {}
    for weighting in (False, True):
        settings = Settings(heatmap=HeatmapSettings(duration_weighting=weighting))
        with SessionStore(tmp_path / f"w{weighting}.sqlite", create=True) as store:
            sid = write_gaze_session(store, "A", SOURCE, fix, truth, settings)
            comp = analyse_project(store, model, [sid], analysis=AnalysisSettings("gradient"))
        maps[weighting] = comp.images[0].humans["A"].heatmap
    on = maps[False] > 0
    assert on.any()
    np.testing.assert_allclose(maps[True][on] / maps[False][on], 17 * 1000 / 60, rtol=1e-9)
    assert not maps[True][~on].any()


def test_keep_maps_lets_go_of_the_heatmaps_it_does_not_draw(project, model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Memory at study scale: with keep_maps=N only the first N images keep their heatmaps
    (those a report draws); every score is the same (the memory saved is measured by
    benchmarks/bench_study.py)."""
    from gazelab.analysis.report import write_report

    store, (sa, _sa2, sb), _truth = project
    an = AnalysisSettings(analyzer="gradient")
    lean = analyse_project(store, model, [sa, sb], analysis=an, keep_maps=1)
    again = analyse_project(store, model, [sa, sb], analysis=an)
    assert lean.frame().equals(again.frame())  # the same rows, number for number
    first, rest = lean.images[0], lean.images[1:]
    assert first.model_heatmap is not None and all(
        g.heatmap is not None for g in first.humans.values()
    )
    assert all(im.model_heatmap is None for im in rest)
    assert all(g.heatmap is None for im in rest for g in im.humans.values())
    g = rest[0].humans[next(iter(rest[0].humans))]
    assert np.array_equal(g.heatmap_or_build(), again.images[1].humans[g.annotator].heatmap)
    write_report(lean, tmp_path / "report", max_image_figures=3)  # builds what it draws
    assert len(list((tmp_path / "report" / "figures").glob("*.png"))) >= 3
