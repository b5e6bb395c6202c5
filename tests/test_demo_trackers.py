"""`gazelab demo --tracker lsl|gazepoint|eyetribe`: the simulated sessions run
through each protocol's real client, and the session records which tracker it was."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gazelab.annotation.bids import export_session
from gazelab.annotation.simulated import Stimulus, run_simulated_session
from gazelab.annotation.store import SessionStore
from gazelab.app.demo import demo_trackers, simulated_tracker
from gazelab.models.synthetic import synthetic_faces
from gazelab.settings import ProtocolSettings, Settings

SIM_KIND = demo_trackers()


def test_the_demo_trackers_are_the_registered_simulators() -> None:
    assert {"eyetribe", "gazepoint", "lsl"} <= set(SIM_KIND)  # at least these
    assert SIM_KIND["eyetribe"] == "sim" and SIM_KIND["lsl"] == "lsl-sim"


# slow tier for all but the default: the GazePoint and LSL clients have their own quick tests
@pytest.mark.parametrize("kind", [pytest.param(k, marks=() if k == "eyetribe" else pytest.mark.slow)
                                  for k in sorted(SIM_KIND)])  # fmt: skip
def test_a_simulated_session_through_each_demo_tracker(kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    faces = synthetic_faces(3, size=64, seed=1)
    stimuli = [Stimulus(fid, (64, 64), int(lab), reg)
               for fid, lab, reg in zip(faces.ids, faces.labels, faces.regions, strict=True)]  # fmt: skip
    s = Settings()
    s = s.replace(
        protocol=ProtocolSettings(blank1_ms=100, cross_ms=100, blank2_ms=100),
        tracker=s.tracker.__class__(**{**s.tracker.__dict__, "kind": SIM_KIND[kind]}),
    )
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        with simulated_tracker(kind, s, seed=0, k=0) as (trk, observer, where):
            rec = run_simulated_session(store, stimuli, trk, participant="A1", settings=s,
                                        observer=observer, view_s=(0.4, 0.5),
                                        image_source="synthetic:3:1:64")  # fmt: skip
        assert len(store.final_labels(rec.id)) == 3
        assert store.sample_count(rec.id) > 3 * 0.4 * 60 * 0.8  # ≥ 80 % of the image phases
        assert [c["kind"] for c in store.calibrations(rec.id)][:2] == ["calibration", "validation"]
        stored = store.trial_quality(rec.id)  # written at the session's end, one row per trial
        assert [q.trial_index for q in stored] == [0, 1, 2]
        for q in stored:  # 0.4-0.5 s of image at 60 Hz, longer on a loaded machine (0.82 s once)
            assert q.duration_s >= 0.35 and abs(q.n_expected - 60 * q.duration_s) <= 1
            assert q.n_samples > 0
            assert q.loss_pct == pytest.approx(
                100.0 * max(0, q.n_expected - q.n_samples) / q.n_expected
            )
        export_session(store, rec.id, tmp_path / "bids")
    (sidecar,) = (tmp_path / "bids").rglob("*_gaze.json")
    meta = json.loads(sidecar.read_text())
    assert meta["TrackerKind"] == SIM_KIND[kind] and meta["SamplingFrequency"] == 60
    model = {"eyetribe": "Eye Tribe", "gazepoint": "GazePoint", "lsl": "LSL"}[kind]
    assert model.lower() in meta["ManufacturersModelName"].lower()


def test_demo_tracker_choice_is_checked_in_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["demo", "--tracker", "tobii"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "eyetribe" in err and "lsl" in err


@pytest.mark.slow
def test_quick_demo_through_lsl_from_the_command_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run([sys.executable, "-m", "gazelab.app.cli", "demo", "--quick",
                          "--out", str(tmp_path / "d"), "--tracker", "lsl"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "simulated LSL gaze stream" in out.stdout and "INFO|" not in out.stderr
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["sessions"][0]["data_quality"]
