"""The demo runs end to end headless, and the CLI commands work on its output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.errors import GazelabError


# slow tier: each stage has its own quick tests; CI also runs demo --quick from the installed wheel
@pytest.mark.slow
def test_quick_demo_runs_every_stage(tmp_path, capsys):
    summary = __import__("gazelab.app.demo", fromlist=["run_demo"]).run_demo(
        tmp_path, n_images=3, seed=1, quick=True
    )
    printed = capsys.readouterr().out
    for stage in (
        "[1/8]",
        "[2/8]",
        "[3/8]",
        "[4/8]",
        "[5/8]",
        "[6/8]",
        "[7/8]",
        "[8/8]",
        "done in",
        "chance macro-F1 is about 0.125",  # the Trainee table's reading note
        "What they cannot show: whether masks speed up training",  # and its scope
        "the bench_trainee_real.py table in benchmarks/results.md",
        "of the model-vs-human IOU",  # the baselines' layout sentence
    ):
        assert stage in " ".join(printed.split())  # wrapped lines read as one
    with SessionStore(tmp_path / "project.sqlite") as store:
        (rec,) = store.sessions()
        assert len(store.final_labels(rec.id)) == 3
        assert store.first_unlabelled_trial(rec.id) is None
        kinds = [e["kind"] for e in store.events(rec.id)]
        assert kinds.count("cross") == 3 and kinds.count("image") == 3
        # ~60 Hz over the trials; a loaded CI machine lags the simulator
        assert store.sample_count(rec.id) > 60 * 3 * 0.6
        # one calibration, then the validation the headless session now runs before trials
        assert [c["kind"] for c in store.calibrations(rec.id)] == ["calibration", "validation"]
    assert list((tmp_path / "bids").rglob("*_gaze.tsv.gz"))
    heat = np.load(tmp_path / "heatmaps" / "A1_heatmaps.npz")
    assert len(heat.files) == 3 and all(heat[k].shape == (1200, 1200) for k in heat.files)
    assert json.loads((tmp_path / "summary.json").read_text())["sessions"][0]["participant"] == "A1"
    assert summary["sessions"][0]["fixations_per_image"] > 0

    # gazelab heatmaps / export on the demo's store
    assert (
        main(
            [
                "heatmaps",
                "--store",
                str(tmp_path / "project.sqlite"),
                "--session",
                "1",
                "--images",
                str(tmp_path / "images"),
                "--out",
                str(tmp_path / "hm"),
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "hm").glob("*.png"))) == 3
    assert (
        main(
            [
                "export",
                "--store",
                str(tmp_path / "project.sqlite"),
                "--out",
                str(tmp_path / "bids2"),
            ]
        )
        == 0
    )

    # stages 5-6: the model and the report; then compare / saliency / view on the project
    assert (tmp_path / "model.keras").exists()
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["analyzer"] == "gradient" and doc["images"] == 3 and doc["n_points"] >= 1
    assert summary["comparison"]["n_points"] == doc["n_points"]
    argv = ["compare", "--project", str(tmp_path), "--analyzer", "gradcam",
            "--point-source", "samples", "--report", str(tmp_path / "r2")]  # fmt: skip
    assert main(argv) == 0
    doc2 = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert doc2["point_source"] == "samples" and doc2["n_points"] > doc["n_points"]
    assert "vs model" in capsys.readouterr().out
    argv = ["saliency", "--model", str(tmp_path / "model.keras"), "--images",
            "synthetic:3:1:240", "--analyzer", "gradient", "--out", str(tmp_path / "sal"),
            "--png"]  # fmt: skip
    assert main(argv) == 0
    rel = np.load(tmp_path / "sal" / "relevance_gradient.npz")
    assert len(rel.files) == 3 and rel[rel.files[0]].dtype == np.float16
    assert len(list((tmp_path / "sal").glob("*.png"))) == 3
    shot = tmp_path / "viewer.png"
    argv = ["view", "--project", str(tmp_path), "--analyzer", "gradient", "--screenshot", str(shot)]
    assert main(argv) == 0 and shot.stat().st_size > 10_000
    assert main(["compare", "--store", str(tmp_path / "project.sqlite")]) == 2
    assert "no model" in capsys.readouterr().err

    # stages 7-8 and the masks / train commands
    assert (tmp_path / "masks" / "human_A1" / "manifest.csv").exists()
    assert (tmp_path / "trainee" / "summary.md").exists()
    assert len(summary["trainee"]) == 7
    argv = ["masks", "--project", str(tmp_path), "--analyzer", "gradient", "--algorithm",
            "human", "--annotator", "A1", "--mixed", "--size", "32",
            "--out", str(tmp_path / "mh")]  # fmt: skip
    assert main(argv) == 0
    from gazelab.models.export import load_masks

    assert load_masks(tmp_path / "mh").masks.shape == (3, 32, 32)
    capsys.readouterr()
    argv[argv.index("A1")] = "ZZ"  # a mistyped annotator: named, with the ones there are
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no annotator 'ZZ'" in err and "its annotators: A1" in err
    argv = ["masks", "--model", str(tmp_path / "model.keras"), "--images", "synthetic:40:5:64",
            "--analyzer", "gradient", "--algorithm", "mean", "--out", str(tmp_path / "mm")]  # fmt: skip
    assert main(argv) == 0 and len(load_masks(tmp_path / "mm").ids) == 40
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[data]\nimages = "synthetic:40:5:64"\n[training]\narchitecture = "small_cnn"\n'
        "input_size = 32\nepochs = 2\nmasked_epochs = 1\nbatch_size = 8\n"
        '[trainee.masks]\nmean = "mm"\n'
    )
    assert main(["train", "trainer", "--config", str(cfg), "--out", str(tmp_path / "tr")]) == 0
    assert (tmp_path / "tr" / "best.keras").exists() and (tmp_path / "tr" / "steps.csv").exists()
    assert main(["train", "trainee", "--config", str(cfg), "--out", str(tmp_path / "te")]) == 0
    assert "mean_then_no_mask" in (tmp_path / "te" / "summary.md").read_text()
    capsys.readouterr()
    cfg.write_text('[data]\nimages = "synthetic:40:5:64"\n[training]\nepochs = -1\n')
    assert main(["train", "trainer", "--config", str(cfg)]) == 2
    assert "training.epochs" in capsys.readouterr().err
    # another config into the folder of a finished run: refused, the model left as it was
    best = (tmp_path / "tr" / "best.keras").read_bytes()
    cfg.write_text('[data]\nimages = "synthetic:40:6:64"\n[training]\ninput_size = 32\n')
    assert main(["train", "trainer", "--config", str(cfg), "--out", str(tmp_path / "tr")]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a run of another config" in err and len(err.splitlines()) == 1
    assert (tmp_path / "tr" / "best.keras").read_bytes() == best

    # the demo again into its own folder, other images: starts from nothing, keeps the rest
    assert main(["demo", "--out", str(tmp_path), "--quick", "--images", "2", "--seed", "2"]) == 0
    with SessionStore(tmp_path / "project.sqlite") as store:
        (rec,) = store.sessions()
        assert len(store.final_labels(rec.id)) == 2
    assert len(list((tmp_path / "images").rglob("*.png"))) == 2
    assert len(list((tmp_path / "bids").rglob("*_gaze.tsv.gz"))) == 1
    assert (tmp_path / "tr" / "best.keras").read_bytes() == best  # not the demo's: kept


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[protocol]\ncross_ms = -1\n")
    assert main(["settings", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "protocol.cross_ms" in err and "Traceback" not in err
    assert (
        main(
            [
                "heatmaps",
                "--store",
                str(tmp_path / "s.sqlite"),
                "--session",
                "4",
                "--images",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no images found" in capsys.readouterr().err


def test_simulate_tracker_command_serves_the_protocol():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gazelab.app.cli",
            "simulate-tracker",
            "--port",
            str(port),
            "--rate",
            "30",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "Eye Tribe simulator" in proc.stdout.readline()
        from gazelab.gaze.trackers.eyetribe import EyeTribeTracker

        with EyeTribeTracker(port=port) as client:
            assert client.framerate == 30
            client.start()
            time.sleep(0.5)
            assert len(client.drain()) >= 10
    finally:
        proc.terminate()
        proc.wait(5)


def test_demo_never_writes_over_a_folder_it_did_not_make(tmp_path, capsys):
    from gazelab.app.demo import DEMO_MARKER, check_demo_out

    project = tmp_path / "study"
    project.mkdir()
    (project / "project.sqlite").write_bytes(b"a real study")
    assert main(["demo", "--out", str(project), "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a gazelab demo's output" in err and len(err.splitlines()) == 1
    assert (project / "project.sqlite").read_bytes() == b"a real study"
    assert sorted(p.name for p in project.iterdir()) == ["project.sqlite"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(GazelabError, match="is a file"):
        check_demo_out(tmp_path / "file")
    check_demo_out(tmp_path / "new")  # a new folder, an empty one, an earlier demo's: fine
    (tmp_path / "empty").mkdir()
    check_demo_out(tmp_path / "empty")
    (project / DEMO_MARKER).write_text("")
    check_demo_out(project)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "summary.json").write_text('{"sessions": [], "trainee": {}}')
    check_demo_out(legacy)


def test_a_run_folder_is_refused_only_when_it_holds_another_configs_results(tmp_path):
    from gazelab.app.commands.models import check_run_folder

    out = tmp_path / "run"
    check_run_folder(out, "a")  # new
    out.mkdir()
    (out / "config.toml").write_text("a")
    check_run_folder(out, "b")  # a run that failed before any result: free
    (out / "no_mask").mkdir()
    (out / "no_mask" / "run.json").write_text("{}")
    check_run_folder(out, "a")  # the same config: resumes or trains again
    with pytest.raises(GazelabError, match="holds a run of another config"):
        check_run_folder(out, "b")
    (out / "config.toml").write_bytes(b"[data]\r\nimages = 'x'\r\n")  # a Windows config
    check_run_folder(out, "[data]\r\nimages = 'x'\r\n")
    (out / "config.toml").unlink()
    with pytest.raises(GazelabError, match="results that are not from this config"):
        check_run_folder(out, "a")
