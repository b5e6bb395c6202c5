"""Session store: round trips, concurrent writers, migrations, BIDS-like export."""

from __future__ import annotations

import csv
import gzip
import json
import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from gazelab.annotation.bids import export_session
from gazelab.annotation.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    BatchedSampleWriter,
    SessionStore,
    StoreError,
)
from gazelab.gaze.trackers.base import CalibrationPoint, CalibrationResult, GazeSample
from gazelab.settings import Settings


def _session(store, who="P01", order=("a", "b", "c")):
    return store.create_session(
        who,
        settings_toml=Settings().to_toml(),
        seed=7,
        image_source="synthetic:0",
        stimulus_order=list(order),
        start_local_s=100.0,
    )


def _sample(i, t0=0.0):
    return GazeSample(
        time_ms=i * 16.0, local_s=t0 + i * 0.016, x=100.0 + i, y=200.0, fix=i % 2 == 0
    )


def test_session_round_trip(tmp_path):
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        rec = _session(store)
        assert store.schema_version == SCHEMA_VERSION
        back = store.session(rec.id)
        assert back.participant == "P01" and back.seed == 7
        assert back.stimulus_order == ("a", "b", "c")
        assert Settings.from_toml(back.settings_toml) == Settings()
        store.add_samples(
            rec.id, [_sample(i, 100.0) for i in range(10)], trial_index=0, phase="image"
        )
        store.add_event(rec.id, "cross", 100.5, trial_index=0, payload={"x": 1})
        store.add_label(
            rec.id, 0, "happy", local_s=101.0, text="happiness", confidence=0.9, source="voice"
        )
        store.add_label(rec.id, 0, "sadness", local_s=101.5, source="key")  # relabel
        cal = CalibrationResult(True, 0.5, 0.6, 0.4, (CalibrationPoint(10, 20, 0.5),))
        store.add_calibration(rec.id, cal, kind="calibration", local_s=99.0)
        store.set_trial_onset(rec.id, 0, 100.7, 1.5)

    with SessionStore(tmp_path / "p.sqlite") as store:  # reopen: everything is there
        table = store.samples(rec.id)
        assert len(table["x"]) == 10
        assert table["x"].tolist() == [100.0 + i for i in range(10)]
        assert table["fix"].tolist() == [i % 2 == 0 for i in range(10)]
        assert set(table["phase"]) == {"image"}
        late = store.samples(rec.id, since_local_s=100.0 + 6 * 0.016)
        assert late["x"].tolist() == [106.0, 107.0, 108.0, 109.0]
        assert store.events(rec.id)[0]["payload"] == {"x": 1}
        assert store.final_labels(rec.id) == {0: "sadness"}
        assert [lab.label for lab in store.labels(rec.id)] == ["happy", "sadness"]
        assert store.first_unlabelled_trial(rec.id) == 1
        assert store.calibrations(rec.id)[0]["deg"] == 0.5
        assert store.trials(rec.id)[0]["onset_error_ms"] == 1.5


def test_bad_label_and_pseudonym_are_refused(tmp_path):
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        rec = _session(store)
        with pytest.raises(StoreError, match="not one of the classes"):
            store.add_label(rec.id, 0, "joyful", local_s=1.0)
        with pytest.raises(StoreError, match="pseudonym"):
            store.participant_id("jane.doe@example.org")
        with pytest.raises(StoreError, match="no session 99"):
            store.session(99)


def test_batched_writer_commits_every_batch_interval(tmp_path):
    now = [0.0]
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        rec = _session(store)
        w = BatchedSampleWriter(store, rec.id, batch_ms=100, clock=lambda: now[0])
        for i in range(30):  # 30 samples over 480 ms at 16 ms
            now[0] = i * 0.016
            w.add([_sample(i)], 0, "image")
        committed = store.sample_count(rec.id)
        # at most the samples of the last 100 ms are still pending
        assert 30 - committed <= 7
        w.flush()
        assert store.sample_count(rec.id) == 30


def _writer_process(path, who, n):
    store = SessionStore(path)
    rec = _session(store, who=who)
    for k in range(n // 50):
        store.add_samples(rec.id, [_sample(k * 50 + i) for i in range(50)], trial_index=k)
        store.add_event(rec.id, "tick", float(k), trial_index=k)
    store.close()


def test_two_annotators_write_one_store_concurrently(tmp_path):
    path = tmp_path / "p.sqlite"
    SessionStore(path, create=True).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer_process, args=(path, who, 5000)) for who in ("A1", "A2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with SessionStore(path) as store:
        sessions = store.sessions()
        assert sorted(s.participant for s in sessions) == ["A1", "A2"]
        for s in sessions:
            assert store.sample_count(s.id) == 5000
            assert len(store.events(s.id)) == 100


def test_migration_from_v1_keeps_data(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO participants(pseudonym, created_utc) VALUES ('P9', 'x')")
    db.execute(
        "INSERT INTO sessions(uuid, participant_id, created_utc, software_version, settings_toml,"
        " seed, image_source, stimulus_order, start_local_s) VALUES ('u', 1, 'x', '0.0.1', ?, 3,"
        " 'folder', '[\"img1\"]', 0.0)",
        (Settings().to_toml(),),
    )
    db.commit()
    db.close()
    with SessionStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert store.session(1).participant == "P9"
        store.add_gap(1, 1.0, 2.0, "connection lost")  # a v2 table works
        assert store.gaps(1) == [
            {"start_local_s": 1.0, "end_local_s": 2.0, "reason": "connection lost"}
        ]


def test_newer_store_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer than this gazelab"):
        SessionStore(path)


def test_bids_like_export(tmp_path):
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        rec = _session(store)
        store.add_samples(
            rec.id, [_sample(i, 100.0) for i in range(5)], trial_index=0, phase="image"
        )
        store.add_event(rec.id, "image", 100.0, trial_index=0)
        store.add_event(rec.id, "label", 100.25, trial_index=0, payload={"label": "happy"})
        paths = export_session(store, rec.id, tmp_path / "bids")
    assert paths["gaze"].name == "sub-P01_ses-01_task-cklabel_gaze.tsv.gz"
    with gzip.open(paths["gaze"], "rt") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 5
    assert float(rows[1]["t_s"]) == pytest.approx(0.016)
    assert float(rows[1]["x_px"]) == 101.0 and rows[0]["fix"] == "1"
    sidecar = json.loads(paths["gaze_json"].read_text())
    assert sidecar["x_px"]["Units"] == "px" and sidecar["t_s"]["Units"] == "s"
    assert sidecar["ScreenResolution"] == [2560, 1440]
    assert sidecar["ScreenDistance"] == pytest.approx(0.7)
    with open(paths["events"]) as fh:
        events = list(csv.DictReader(fh, delimiter="\t"))
    assert [e["trial_type"] for e in events] == ["image", "label"]
    assert float(events[0]["duration"]) == pytest.approx(0.25)
    assert events[1]["value"] == "happy" and events[1]["image_id"] == "a"
    assert json.loads(paths["events_json"].read_text())["onset"]["Units"] == "s"


def test_v2_store_gains_quality_tables_and_trial_index(tmp_path):
    path = tmp_path / "v2.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + MIGRATIONS[1])
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with SessionStore(path) as store:
        assert store.schema_version == 3
        rec = _session(store)
        assert store.validation_qualities(rec.id) == [] and store.trial_quality(rec.id) == []
    db = sqlite3.connect(path)
    plan = db.execute(
        "EXPLAIN QUERY PLAN SELECT x FROM gaze_samples WHERE session_id = 1 AND trial_index = 3"
        " ORDER BY local_s"
    ).fetchall()
    db.close()
    assert "gaze_samples_trial" in " ".join(str(r) for r in plan)


def test_validation_and_trial_quality_round_trip(tmp_path):
    import math

    from gazelab.gaze.quality import PointQuality, TrialQuality, validation_quality

    pts = [
        PointQuality((100.0, 200.0), (3.0, -4.0), 0.12, 0.05, 0.07, 55, 8.33, 60),
        PointQuality((900.0, 200.0), (math.nan, math.nan), math.nan, math.nan, math.nan, 0,
                     100.0, 60),
    ]  # fmt: skip
    v = validation_quality(pts)
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        rec = _session(store)
        store.add_validation_quality(rec.id, v, kind="calibration-validation", local_s=5.0,
                                     problems=["no valid gaze on target(s) 2"], overridden=True)  # fmt: skip
        store.add_validation_quality(rec.id, v, kind="final", local_s=9.0)
        with pytest.raises(StoreError, match="validation kind"):
            store.add_validation_quality(rec.id, v, kind="later", local_s=9.0)
        trials = [TrialQuality(0, 2.0, 110, 120, 100 * 10 / 120, 0.03, 0.04),
                  TrialQuality(1, 1.0, 0, 60, 100.0, math.nan, math.nan)]  # fmt: skip
        store.set_trial_quality(rec.id, trials)
        store.set_trial_quality(rec.id, trials[:1])  # replacing keeps one row per trial
    with SessionStore(tmp_path / "p.sqlite") as store:
        runs = store.validation_qualities(rec.id)
        assert [r["kind"] for r in runs] == ["calibration-validation", "final"]
        first = runs[0]
        assert first["passed"] is False and first["overridden"] is True
        assert first["problems"] == ["no valid gaze on target(s) 2"]
        q = first["quality"]
        assert q.mean_accuracy_deg == pytest.approx(0.12)
        assert q.loss_pct == pytest.approx(v.loss_pct)
        assert q.points[0] == pts[0]
        assert math.isnan(q.points[1].accuracy_deg) and q.points[1].n_samples == 0
        assert runs[1]["passed"] is True
        back = store.trial_quality(rec.id)
        assert back[0] == trials[0]
        assert back[1].trial_index == 1 and math.isnan(back[1].rms_s2s_deg)


def test_samples_by_trial_equals_per_trial_queries(tmp_path):
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        rec = _session(store, order=("a", "b", "c"))
        # interleaved writes, out of trial order, plus samples outside any trial
        for i in range(30):
            trial = (i * 7) % 3
            store.add_samples(rec.id, [_sample(i, 100.0)], trial_index=trial,
                              phase="image" if i % 2 else "cross")  # fmt: skip
        store.add_samples(rec.id, [_sample(99, 100.0)], trial_index=None, phase="idle")
        by_trial = store.samples_by_trial(rec.id)
        assert sorted(by_trial) == [0, 1, 2]
        for t in range(3):
            one = store.samples(rec.id, t)
            assert len(one["x"]) == 10
            for key in one:
                np.testing.assert_array_equal(by_trial[t][key], one[key])
        image = store.samples_by_trial(rec.id, phase="image")
        assert sum(len(t["x"]) for t in image.values()) == 15
        assert all(set(t["phase"]) == {"image"} for t in image.values())


def test_a_store_being_created_by_another_process_is_waited_for(tmp_path):
    import os
    import threading
    import time

    path = tmp_path / "new.sqlite"
    path.write_bytes(b"")  # the creating process has made the file, not yet its tables

    def create_later() -> None:
        time.sleep(0.3)
        SessionStore(path, create=True).close()

    t = threading.Thread(target=create_later)
    t.start()
    with SessionStore(path) as store:  # a reader that found the young, empty file
        assert store.schema_version == SCHEMA_VERSION
    t.join()
    old = tmp_path / "old.sqlite"
    old.write_bytes(b"")
    os.utime(old, (time.time() - 60, time.time() - 60))
    t0 = time.monotonic()
    with pytest.raises(StoreError, match="is empty"):
        SessionStore(old)
    assert time.monotonic() - t0 < 1.5  # refused at once, not after the 2 s wait for a young file
