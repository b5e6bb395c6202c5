"""One per-image scorer (analysis/scoring.py) behind compare, the viewer and heatmaps: the
viewer's rows are compare's rows, a session's samples are read once, each image is decoded
once per command, and the data quality stored with a session is the one the limits read.

The project: 4 synthetic faces (64 px); annotator A fixates 3 points per image, B 5 points
with duration-weighted heatmaps (tests/gaze_project.py: 300 ms fixations of 60 Hz samples
with 50 ms gaps, so a trial loses about 10 % of its expected samples).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gazelab import CLASSES
from gazelab.annotation.store import SessionStore
from gazelab.models.datasets.base import ImageSet
from gazelab.models.datasets.registry import open_image_set
from gazelab.settings import AnalysisSettings, HeatmapSettings, QualitySettings, Settings
from gazelab.tests.gaze_project import write_gaze_session

SOURCE = "synthetic:4:7:64"
A_FIX = [(10.0, 12.0), (40.0, 20.0), (30.0, 50.0)]
B_FIX = [(50.0, 50.0), (12.0, 40.0), (33.0, 8.0), (20.0, 20.0), (55.0, 30.0)]


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, list[str], tuple[int, int]]:
    src = open_image_set(SOURCE)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    path = tmp_path / "project.sqlite"
    with SessionStore(path, create=True) as store:
        sa = write_gaze_session(store, "A", SOURCE, dict.fromkeys(src.ids, A_FIX), truth)
        weighted = Settings(heatmap=HeatmapSettings(duration_weighting=True))
        sb = write_gaze_session(store, "B", SOURCE, dict.fromkeys(src.ids, B_FIX), truth, weighted)
    return path, list(src.ids), (sa, sb)


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab.models.architectures import build_model

    tf.keras.utils.set_random_seed(0)
    return build_model("small_cnn", (32, 32, 1), len(CLASSES))


class Reads:
    """Counts the store's sample reads (by session and trial) and the images decoded (by id)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.samples: Counter[tuple[int, int | None]] = Counter()
        self.decoded: Counter[str] = Counter()
        samples, image = SessionStore.samples, ImageSet.image

        def counted_samples(store: SessionStore, session_id: int, trial_index: int | None = None,
                            **kw: Any) -> Any:  # fmt: skip
            self.samples[session_id, trial_index] += 1
            return samples(store, session_id, trial_index, **kw)

        def counted_image(images: ImageSet, key: int | str) -> Any:
            self.decoded[images.ids[images._at(key)]] += 1
            return image(images, key)

        monkeypatch.setattr(SessionStore, "samples", counted_samples)
        monkeypatch.setattr(ImageSet, "image", counted_image)


# -- the viewer's numbers are compare's ----------------------------------------------------------
@pytest.mark.tf
@pytest.mark.parametrize("point_source", ["events", "samples"])
def test_viewer_rows_equal_compare_rows(project, model, tmp_path, point_source) -> None:  # type: ignore[no-untyped-def]
    """Row by row, every metric of every (image, annotator, reference) the viewer shows is the
    number compare writes to rows.csv (exact equality: one scorer), the model heatmap is
    saliency.model_heatmap of the relevance map, and the viewer's n is compare's."""
    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import analyse_project
    from gazelab.analysis.report import write_report
    from gazelab.analysis.saliency import model_heatmap
    from gazelab.app.viewer_project import ViewerProject, model_layer

    path, ids, _ = project
    an = AnalysisSettings(analyzer="gradient", point_source=point_source)
    with SessionStore(path) as store:
        comp = analyse_project(store, model, analysis=an, cache=SaliencyCache(tmp_path / "c"))
    write_report(comp, tmp_path / "report", max_image_figures=0)
    csv = pd.read_csv(tmp_path / "report" / "rows.csv", float_precision="round_trip")
    with ViewerProject(path, an, cache_dir=tmp_path / "v" / "saliency-cache") as p:
        layer = model_layer(model, p.mean_points(), tmp_path / "c")
        assert (layer.n_points, layer.mean_points) == (comp.n_points, comp.mean_points)
        views = [p.view(e.image_id, layer) for e in p.entries]
    rows = pd.DataFrame([r for v in views for r in v.analysis.rows], columns=csv.columns)
    assert len(rows) == len(csv) == 4 * (2 + 2)  # 4 images x 2 annotators x (model + other)
    for col in ("image_id", "annotator", "reference", "kind"):
        assert rows[col].tolist() == csv[col].tolist()
    for m in csv.columns[6:]:  # the CSV's floats read back exactly (shortest round-trip text)
        np.testing.assert_array_equal(rows[m].to_numpy(float), csv[m].to_numpy(float))
    assert rows.equals(comp.frame())  # and every column of the in-memory rows
    for v, im in zip(views, comp.images, strict=True):
        a = v.analysis
        assert a.model_hit == im.model_hit and a.predicted == im.predicted
        np.testing.assert_array_equal(a.model_heatmap, im.model_heatmap)
        want = model_heatmap(a.relevance, comp.n_points, a.shape, *a.kernel_px)
        np.testing.assert_array_equal(a.model_heatmap, want)
        for who in ("A", "B"):
            np.testing.assert_array_equal(a.humans[who].heatmap, im.humans[who].heatmap)


# -- samples read once, images decoded once --------------------------------------------------------
@pytest.mark.tf
@pytest.mark.parametrize("stored", [False, True])
def test_compare_reads_each_session_once_and_decodes_each_image_once(
    project, model, monkeypatch, stored
) -> None:  # type: ignore[no-untyped-def]
    """With a trial-loss limit set, compare needs each session's fixations and data quality:
    one read of its samples serves both (the stored quality read, or measured from that
    read where none is stored); each image is decoded once for both sessions."""
    from gazelab.analysis.compare import analyse_project
    from gazelab.annotation.sessions import compute_trial_quality

    path, ids, (sa, sb) = project
    if stored:
        with SessionStore(path) as store:
            for sid in (sa, sb):
                compute_trial_quality(store, sid)
            assert len(store.trial_quality(sa)) == 4
    reads = Reads(monkeypatch)
    with SessionStore(path) as store:
        comp = analyse_project(store, model, analysis=AnalysisSettings(analyzer="gradient"),
                               quality=QualitySettings(max_trial_loss_pct=50.0))  # fmt: skip
    assert len(comp.rows) == 16 and not comp.excluded
    assert reads.samples == {(sa, None): 1, (sb, None): 1}
    assert reads.decoded == dict.fromkeys(ids, 1)


def test_heatmaps_read_the_session_once_and_decode_each_image_once(project, tmp_path,
                                                                    monkeypatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """``gazelab heatmaps``: one read of the session's samples, each image decoded once (for
    its size and its overlay), and the overlay's map is the scorer's human map."""
    from gazelab.app.cli import main

    path, ids, (sa, _) = project
    reads = Reads(monkeypatch)
    out = tmp_path / "o"
    assert main(["heatmaps", "--store", str(path), "--session", str(sa), "--out", str(out)]) == 0
    assert reads.samples == {(sa, None): 1}
    assert reads.decoded == dict.fromkeys(ids, 1)
    assert len(list(out.glob("*.png"))) == 4
    assert sorted(np.load(out / f"session{sa}_heatmaps.npz").files) == sorted(ids)


def test_viewer_reads_each_trial_once_and_decodes_each_image_once(project, tmp_path,
                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """The viewer reads one image's trials at a time: each trial's samples once (fixations
    and the scanpath's samples from one read; then from the gaze cache), each image decoded
    once for the survey of n, the views, the summary and the baselines."""
    from gazelab.app.viewer_project import ViewerProject

    path, ids, (sa, sb) = project
    reads = Reads(monkeypatch)
    with ViewerProject(path, AnalysisSettings(), cache_dir=tmp_path / "saliency-cache") as p:
        assert p.mean_points() == pytest.approx(4.0)  # (3 + 5) / 2
        first = p.view(ids[0])
        p.view(ids[0])
        comp, _ = p.comparison()
        p.baselines(first)
    assert reads.samples == {(s, t): 1 for s in (sa, sb) for t in range(4)}
    assert reads.decoded == dict.fromkeys(ids, 1)
    assert len(comp.rows) == 4 * 2  # human vs human only (no model)
    scan = first.scanpaths["A"]
    assert len(scan.x_px) == 3 and len(scan.t_ms) == 3 * 18  # 18 valid samples a fixation


# -- the stored data quality is read ---------------------------------------------------------------
@pytest.mark.tf
def test_the_stored_trial_quality_is_what_compare_and_the_viewer_use(project, model, tmp_path,
                                                                     monkeypatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """The trials lose about 10 % of their samples; a stored row saying 50 % for A's first
    trial leaves it out of compare under a 20 % limit (the reason names 50 %), and out of
    the viewer with the same limits; the viewer's quality table shows the stored value.
    Nothing is measured again from the samples while every trial has a stored value."""
    import gazelab.annotation.sessions as sessions
    from gazelab.analysis.compare import analyse_project
    from gazelab.app.viewer_project import ViewerProject
    from gazelab.gaze.quality import TrialQuality

    path, ids, (sa, sb) = project
    limits = QualitySettings(max_trial_loss_pct=20.0)
    an = AnalysisSettings(analyzer="gradient")
    with SessionStore(path) as store:
        kept = analyse_project(store, model, analysis=an, quality=limits)
        assert not kept.excluded  # measured: about 10 % lost, under the limit
        for sid in (sa, sb):
            sessions.compute_trial_quality(store, sid)
        q = {t.trial_index: t for t in store.trial_quality(sa)}
        assert 5.0 < q[0].loss_pct < 15.0
        store.set_trial_quality(sa, [TrialQuality(0, q[0].duration_s, q[0].n_samples,
                                                  q[0].n_expected, 50.0, 0.1, 0.1)])  # fmt: skip
    measured: list[int] = []
    compute = sessions.compute_trial_quality
    monkeypatch.setattr(sessions, "compute_trial_quality",
                        lambda *a, **k: measured.append(1) or compute(*a, **k))  # fmt: skip
    with SessionStore(path) as store:
        comp = analyse_project(store, model, analysis=an, quality=limits)
    assert measured == []
    assert [(e["session"], e["trial_index"], e["image_id"]) for e in comp.excluded] == [
        (sa, 0, ids[0])
    ]
    assert comp.excluded[0]["reason"] == "data loss 50.0% > 20.0%"
    assert "A" not in comp.images[0].humans and "A" in comp.images[1].humans
    with ViewerProject(path, an, cache_dir=tmp_path / "v" / "saliency-cache",
                       quality=limits) as p:  # fmt: skip
        rows = {r["annotator"]: r for r in p.quality_rows()}
        others = sum(q[k].loss_pct for k in (1, 2, 3))
        assert rows["A"]["loss_pct"] == pytest.approx((50.0 + others) / 4)
        assert p.excluded(p.entry(ids[0]).trials[0]) == "data loss 50.0% > 20.0%"
        v0 = p.view(ids[0])
        assert list(v0.analysis.humans) == ["B"] and not v0.analysis.rows
        assert list(p.view(ids[1]).analysis.humans) == ["A", "B"]
    with ViewerProject(path, an, cache_dir=tmp_path / "w" / "saliency-cache") as p:
        assert list(p.view(ids[0]).analysis.humans) == ["A", "B"]  # no limits: all shown


def test_gazelab_view_gives_the_window_the_quality_limits_of_its_config(tmp_path, monkeypatch):
    """``gazelab view --config`` hands ``[quality]`` to the window, which hands it to the
    project worker, so the window leaves out the trials compare leaves out."""
    import gazelab.app.viewer as viewer
    from gazelab.app.cli import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(viewer, "run_viewer", lambda *a, **k: seen.update(k) or 0)
    config = tmp_path / "limits.toml"
    config.write_text("[quality]\nmax_trial_loss_pct = 20.0\n")
    store = tmp_path / "p.sqlite"
    assert main(["view", "--store", str(store), "--config", str(config)]) == 0
    assert seen["quality"].max_trial_loss_pct == 20.0


def test_the_viewer_window_leaves_out_what_the_quality_limits_leave_out(project, tmp_path,
                                                                        monkeypatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """The window (``run_viewer``, as ``gazelab view`` runs it) builds its project with the
    limits it was given: the worker's ViewerProject gets them."""
    import gazelab.app.viewer_worker as worker
    from gazelab.app.viewer import run_viewer

    path, _, _ = project
    given: list[Any] = []
    real = worker.ViewerProject

    def recording(*args: Any, **kwargs: Any) -> Any:
        given.append(kwargs.get("quality"))
        return real(*args, **kwargs)

    monkeypatch.setattr(worker, "ViewerProject", recording)
    limits = QualitySettings(max_trial_loss_pct=20.0)
    shot = tmp_path / "view.png"
    assert run_viewer(None, store=str(path), cache=str(tmp_path / "c"), screenshot=str(shot),
                      analysis=AnalysisSettings(analyzer="gradient"), quality=limits) == 0  # fmt: skip
    assert given == [limits] and shot.is_file()
