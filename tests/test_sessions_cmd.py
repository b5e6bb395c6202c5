"""``gazelab sessions``: one row per session with progress and data quality."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from gazelab.annotation.sessions import (
    compute_trial_quality,
    image_windows,
    list_sessions,
    sessions_csv,
    sessions_table,
)
from gazelab.annotation.store import SessionStore
from gazelab.gaze.quality import PointQuality, validation_quality
from gazelab.gaze.trackers.base import GazeSample
from gazelab.settings import Settings

RATE = 60  # Settings().tracker.rate_hz


def _samples(t0: float, n: int, invalid: range = range(0)) -> list[GazeSample]:
    return [
        GazeSample(time_ms=(t0 + i / RATE) * 1000, local_s=t0 + i / RATE, x=1280.0, y=720.0,
                   valid=i not in invalid)
        for i in range(n)
    ]  # fmt: skip


def build_store(path) -> SessionStore:
    """Two sessions: P01 with hand-made gaps and a validation, P02 never started."""
    store = SessionStore(path, create=True)
    assert Settings().tracker.rate_hz == RATE
    rec = store.create_session("P01", settings_toml=Settings().to_toml(), seed=0,
                               image_source="synthetic", stimulus_order=["a", "b"],
                               start_local_s=0.0)  # fmt: skip
    sid = rec.id
    for kind, t, trial in (("blank1", 0.0, 0), ("image", 1.0, 0), ("label", 2.5, 0),
                           ("blank1", 3.0, 1), ("image", 4.0, 1), ("done", 5.0, None)):  # fmt: skip
        store.add_event(sid, kind, t, trial_index=trial)
    store.add_samples(sid, _samples(0.0, 60), trial_index=0, phase="blank1")
    # trial 0: 2 s of image, 120 expected, 120 recorded, 12 invalid -> 10 % loss
    store.add_samples(sid, _samples(1.0, 120, range(40, 52)), trial_index=0, phase="image")
    # trial 1: 1 s of image, 60 expected, only 30 recorded -> 50 % loss
    store.add_samples(sid, _samples(4.0, 30), trial_index=1, phase="image")
    store.add_label(sid, 0, "happy", local_s=2.5)
    pts = [PointQuality((100.0, 100.0), (1.0, 1.0), acc, 0.02, 0.03, 50, 0.0, 50)
           for acc in (0.5, 0.7)]  # fmt: skip
    store.add_validation_quality(sid, validation_quality(pts), kind="calibration-validation",
                                 local_s=0.5)  # fmt: skip
    store.create_session("P02", settings_toml=Settings().to_toml(), seed=0,
                         image_source="synthetic", stimulus_order=["a", "b", "c"],
                         start_local_s=0.0)  # fmt: skip
    return store


def test_image_windows_and_trial_loss_on_hand_made_gaps(tmp_path):
    with build_store(tmp_path / "s.sqlite") as store:
        assert image_windows(store, 1) == {0: (1.0, 3.0), 1: (4.0, 5.0)}
        q = compute_trial_quality(store, 1)
        assert [(t.trial_index, t.n_expected, t.n_samples) for t in q] == [(0, 120, 108),
                                                                             (1, 60, 30)]  # fmt: skip
        assert q[0].loss_pct == pytest.approx(10.0) and q[1].loss_pct == pytest.approx(50.0)
        assert q[1].rms_s2s_deg == 0.0  # a still gaze: no sample-to-sample motion
        assert store.trial_quality(1) == q  # stored


def test_list_sessions_progress_accuracy_and_loss(tmp_path):
    with build_store(tmp_path / "s.sqlite") as store:
        one, two = list_sessions(store)
        assert (one.participant, one.tracker, one.trials_done, one.trials_total) == (
            "P01", "sim", 1, 2)  # fmt: skip
        assert one.validations == 1
        assert one.accuracy_deg == pytest.approx(0.6)
        assert one.rms_s2s_deg == pytest.approx(0.02) and one.std_deg == pytest.approx(0.03)
        assert one.loss_pct == pytest.approx(100.0 * 42 / 180)
        assert (two.trials_done, two.trials_total, two.validations) == (0, 3, 0)
        assert math.isnan(two.loss_pct) and math.isnan(two.accuracy_deg)
        assert store.trial_quality(1) == []  # listing does not write


def test_sessions_csv_and_table(tmp_path):
    with build_store(tmp_path / "s.sqlite") as store:
        rows = list_sessions(store)
    parsed = list(csv.DictReader(io.StringIO(sessions_csv(rows))))
    assert [r["participant"] for r in parsed] == ["P01", "P02"]
    assert float(parsed[0]["loss_pct"]) == pytest.approx(23.333333, abs=1e-5)
    assert parsed[1]["accuracy_deg"] == ""
    text = sessions_table(rows)
    assert "1/2" in text and "0/3" in text and "23.3" in text and "0.60" in text
    empty = sessions_table([]).splitlines()  # a store with no sessions yet
    assert empty[0].startswith("session") and empty[1] == "(no sessions)"


def test_trial_without_end_event_ends_at_its_last_sample(tmp_path):
    with SessionStore(tmp_path / "c.sqlite", create=True) as store:
        rec = store.create_session("P03", settings_toml=Settings().to_toml(), seed=0,
                                   image_source="synthetic", stimulus_order=["a"],
                                   start_local_s=0.0)  # fmt: skip
        store.add_event(rec.id, "image", 1.0, trial_index=0)  # then the session crashed
        store.add_samples(rec.id, _samples(1.0, 90), trial_index=0, phase="image")
        (q,) = compute_trial_quality(store, rec.id, save=False)
        assert q.n_expected == 90 and q.loss_pct == pytest.approx(0.0)
        assert np.isfinite(q.std_deg)


def test_gazelab_sessions_command_table_csv_and_missing_store(tmp_path, capsys):
    from gazelab.app.cli import main

    build_store(tmp_path / "s.sqlite").close()
    assert main(["sessions", "--store", str(tmp_path / "s.sqlite")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("session") and "P01" in out and "P02" in out
    assert main(["sessions", "--store", str(tmp_path / "s.sqlite"), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["trials_done"] for r in rows] == ["1", "0"]
    assert main(["sessions", "--store", str(tmp_path / "nope.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "no store at" in err and len(err.strip().splitlines()) == 1


def test_bids_sidecar_carries_data_quality(tmp_path):
    import json

    from gazelab.annotation.bids import export_session

    with build_store(tmp_path / "s.sqlite") as store:
        paths = export_session(store, 1, tmp_path / "bids")
        empty = export_session(store, 2, tmp_path / "bids")
    side = json.loads(paths["gaze_json"].read_text())
    assert side["AverageCalibrationError"] == pytest.approx(0.6)
    assert side["MaximalCalibrationError"] == pytest.approx(0.7)
    assert side["CalibrationCount"] == 0
    dq = side["DataQuality"]
    assert dq["DataLossPercent"] == pytest.approx(100.0 * 42 / 180, abs=1e-5)
    assert [t["DataLossPercent"] for t in dq["Trials"]] == [10.0, 50.0]
    (run,) = dq["Validations"]
    assert run["Kind"] == "calibration-validation" and run["Passed"] is True
    assert [t["AccuracyDeg"] for t in run["Targets"]] == [0.5, 0.7]
    side2 = json.loads(empty["gaze_json"].read_text())
    assert "AverageCalibrationError" not in side2
    assert side2["DataQuality"]["DataLossPercent"] is None  # strict JSON: no NaN


# -- compare: trial exclusion by the [quality] limits ----------------------
def test_quality_exclusions_by_trial_loss_and_session_accuracy(tmp_path):
    from gazelab.annotation.sessions import quality_exclusions
    from gazelab.settings import QualitySettings

    s = Settings()
    with build_store(tmp_path / "s.sqlite") as store:
        assert quality_exclusions(store, 1, s, QualitySettings()) == {}  # default keeps all
        assert quality_exclusions(store, 1, s, QualitySettings(max_trial_loss_pct=20.0)) == {
            1: "data loss 50.0% > 20.0%"
        }
        strict = QualitySettings(max_accuracy_deg=0.5)
        assert quality_exclusions(store, 1, s, strict) == {
            0: "session validation accuracy 0.60° > 0.50°",
            1: "session validation accuracy 0.60° > 0.50°",
        }
        assert quality_exclusions(store, 1, s, QualitySettings(max_accuracy_deg=1.0)) == {}
        assert set(quality_exclusions(store, 2, s, strict).values()) == {
            "no validation accuracy recorded for the session"
        }


def test_exclusion_report_parts():
    from gazelab.annotation.sessions import exclusions_csv, exclusions_markdown

    rows = [
        {"session": 1, "annotator": "A", "trial_index": 3, "image_id": "x", "reason": "r1"},
        {"session": 2, "annotator": "B", "trial_index": 0, "image_id": "y", "reason": "r2"},
    ]
    md = exclusions_markdown(rows, kept=["A"])
    assert "2 trials left out; participants left out entirely: B." in md
    assert "| A | 1 | r1 |" in md
    assert list(csv.DictReader(io.StringIO(exclusions_csv(rows))))[1]["reason"] == "r2"
    assert "No trial was left out." in exclusions_markdown([], kept=["A"])


def test_compare_leaves_out_an_unvalidated_participant_and_reports_it(tmp_path):
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.analysis.compare import analyse_project
    from gazelab.analysis.report import write_report
    from gazelab.models.architectures import build_model
    from gazelab.models.datasets.registry import open_image_set
    from gazelab.settings import AnalysisSettings, QualitySettings
    from gazelab.tests.gaze_project import write_gaze_session

    source = "synthetic:4:7:64"
    src = open_image_set(source)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    fix = {iid: [(10.0, 12.0), (40.0, 20.0), (30.0, 50.0)] for iid in src.ids}
    tf.keras.utils.set_random_seed(0)
    model = build_model("small_cnn", (32, 32, 1), len(CLASSES))
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        sa = write_gaze_session(store, "A", source, fix, truth)
        sb = write_gaze_session(store, "B", source, fix, truth)
        pts = [PointQuality((100.0, 100.0), (1.0, 1.0), 0.4, 0.02, 0.03, 50, 0.0, 50)]
        store.add_validation_quality(sa, validation_quality(pts), kind="calibration-validation",
                                     local_s=0.0)  # fmt: skip
        comp = analyse_project(store, model, [sa, sb], analysis=AnalysisSettings(
            analyzer="gradient"), quality=QualitySettings(max_accuracy_deg=1.0))  # fmt: skip
    assert comp.annotators == ["A"]
    assert all(set(im.humans) == {"A"} for im in comp.images)
    assert [(e["annotator"], e["trial_index"]) for e in comp.excluded] == [
        ("B", 0), ("B", 1), ("B", 2), ("B", 3)]  # fmt: skip
    md = write_report(comp, tmp_path / "report").read_text()
    assert "participants left out entirely: B." in md
    rows = list(csv.DictReader((tmp_path / "report" / "excluded.csv").open()))
    assert len(rows) == 4 and rows[0]["reason"] == "no validation accuracy recorded for the session"


def test_gazelab_sessions_refuses_hostile_stores_in_one_line(tmp_path, capsys):
    import sqlite3

    from gazelab.app.cli import main

    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE foo (x)")
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    bad = tmp_path / "bad.sqlite"
    build_store(bad).close()
    with sqlite3.connect(bad) as db:
        db.execute("UPDATE sessions SET settings_toml = 'x = [' WHERE id = 1")
    for path, word in ((foreign, "not a gazelab store"), (empty, "is empty"),
                       (bad, "not valid TOML")):  # fmt: skip
        assert main(["sessions", "--store", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert word in err and len(err.splitlines()) == 1, err


# slow tier: quick: test_demo_trackers checks the stored trial quality of its eyetribe session
@pytest.mark.slow
def test_a_recorded_session_stores_its_trial_quality_at_the_end(tmp_path):
    from gazelab.annotation.simulated import Stimulus, run_simulated_session
    from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
    from gazelab.gaze.trackers.simulator import EyeTribeSimulator, SyntheticObserver
    from gazelab.settings import ProtocolSettings

    s = Settings().replace(protocol=ProtocolSettings(blank1_ms=50, cross_ms=50, blank2_ms=50))
    stimuli = [Stimulus(f"img{i}", (64, 64), i) for i in range(2)]
    observer = SyntheticObserver(s.display.resolution_px, seed=1)
    with SessionStore(tmp_path / "s.sqlite", create=True) as store:
        with EyeTribeSimulator(port=0, rate_hz=60, source=observer, seed=1) as sim:
            rec = run_simulated_session(store, stimuli, EyeTribeTracker(port=sim.port),
                                        participant="P01", settings=s, observer=observer,
                                        view_s=(0.5, 0.6))  # fmt: skip
        stored = store.trial_quality(rec.id)
        assert [q.trial_index for q in stored] == [0, 1]
        for q in stored:  # ~0.5 s of image at 60 Hz; how many frames arrive depends on load
            assert 25 <= q.n_expected <= 45 and q.n_samples > 0
            assert q.loss_pct == pytest.approx(
                100.0 * max(0, q.n_expected - q.n_samples) / q.n_expected
            )
        assert stored == compute_trial_quality(store, rec.id, save=False)
