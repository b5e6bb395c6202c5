"""The demo runs end to end headless, and the CLI commands work on its output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np

from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main


def test_quick_demo_runs_every_stage(tmp_path, capsys):
    summary = __import__("gazelab.app.demo", fromlist=["run_demo"]).run_demo(
        tmp_path, n_images=3, seed=1, quick=True
    )
    printed = capsys.readouterr().out
    for stage in ("[1/4]", "[2/4]", "[3/4]", "[4/4]", "done in"):
        assert stage in printed
    with SessionStore(tmp_path / "project.sqlite") as store:
        (rec,) = store.sessions()
        assert len(store.final_labels(rec.id)) == 3
        assert store.first_unlabelled_trial(rec.id) is None
        kinds = [e["kind"] for e in store.events(rec.id)]
        assert kinds.count("cross") == 3 and kinds.count("image") == 3
        assert store.sample_count(rec.id) > 60 * 3 * 0.9  # ~60 Hz over the trials
        assert len(store.calibrations(rec.id)) == 1
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
