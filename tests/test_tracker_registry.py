"""The tracker registry: every tracker is one registered module; settings, the command
line and the set-up dialog read the registry; each simulated tracker opens through the
session's one entry point and streams gaze."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time

import pytest

from gazelab.annotation.session import SessionSetupError, config_from_options, open_tracker
from gazelab.gaze.trackers.registry import (
    TRACKERS,
    TrackerSpecError,
    parse_tracker_spec,
    tracker_names,
    trackers,
)
from gazelab.settings import Settings, TrackerSettings


def test_every_tracker_is_registered_and_a_settings_choice():
    assert {
        "eyetribe", "sim", "gazepoint", "gazepoint-sim", "lsl", "lsl-sim", "mouse", "none",
    } <= set(tracker_names())  # at least these  # fmt: skip
    for name in tracker_names():
        Settings(tracker=TrackerSettings(kind=name))  # validates
    with pytest.raises(ValueError, match="tobii"):
        Settings.from_toml('[tracker]\nkind = "tobii"\n')
    from gazelab.app.cli import build_parser

    annotate = build_parser()._subparsers._group_actions[0].choices["annotate"]  # type: ignore[union-attr]
    help_text = next(a.help for a in annotate._actions if a.dest == "tracker")
    assert all(name in help_text for name in TRACKERS)


@pytest.mark.parametrize(
    ("spec", "kind", "host", "port", "stream"),
    [
        ("sim", "sim", None, None, None),
        ("eyetribe:10.0.0.2:6556", "eyetribe", "10.0.0.2", 6556, None),
        ("gazepoint:lab-pc", "gazepoint", "lab-pc", None, None),
        ("lsl:name=Tobii Pro", "lsl", None, None, "name=Tobii Pro"),
    ],
)
def test_specs_name_a_kind_and_its_arguments(spec, kind, host, port, stream):
    s = parse_tracker_spec(spec)
    assert (s.kind, s.host, s.port, s.stream) == (kind, host, port, stream)


@pytest.mark.parametrize(
    "spec", ["tobii", "eyetribe:host:port", "eyetribe:h:70000", "sim:x", "mouse:1"]
)
def test_bad_specs_are_refused_with_the_usage(spec):
    with pytest.raises(TrackerSpecError):
        parse_tracker_spec(spec)
    with pytest.raises(SessionSetupError):
        config_from_options(store="s.sqlite", participant="P", tracker=spec)


def test_annotate_options_reach_the_tracker_settings():
    c = config_from_options(store="s.sqlite", participant="P", tracker="lsl:type=Gaze")
    assert (c.settings.tracker.kind, c.settings.tracker.stream) == ("lsl", "type=Gaze")
    c = config_from_options(store="s.sqlite", participant="P", tracker="gazepoint:1.2.3.4:4243")
    assert (c.settings.tracker.kind, c.settings.tracker.host, c.settings.tracker.port) == (
        "gazepoint", "1.2.3.4", 4243,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["sim", "gazepoint-sim", "lsl-sim"])
def test_each_simulated_tracker_opens_and_streams_on_screen_gaze(kind):
    if kind == "lsl-sim":
        pytest.importorskip("pylsl")
    s = Settings()
    s = dataclasses.replace(s, tracker=dataclasses.replace(s.tracker, kind=kind, rate_hz=120))
    opened = open_tracker(s)
    try:
        opened.tracker.start()
        deadline = time.monotonic() + 10.0
        samples: list = []
        while len(samples) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
            samples += opened.tracker.drain()
        assert len(samples) >= 60, f"{kind}: {len(samples)} samples"
        valid = [x for x in samples if x.valid]
        assert len(valid) >= len(samples) // 2
        w, h = s.display.resolution_px
        assert all(0 <= x.x < w and 0 <= x.y < h for x in valid)
        times = [x.time_ms for x in samples]
        assert times == sorted(times)
        assert trackers()[kind].simulated
    finally:
        opened.close()


@pytest.mark.parametrize("protocol", ["gazepoint", "lsl"])
def test_simulate_tracker_serves_gazepoint_and_lsl(protocol):
    if protocol == "lsl":
        pytest.importorskip("pylsl")
    argv = [sys.executable, "-m", "gazelab.app.cli", "simulate-tracker", "--protocol", protocol]
    port = 0
    if protocol == "gazepoint":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        argv += ["--port", str(port)]
    proc = subprocess.Popen([*argv, "--rate", "60"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if protocol == "gazepoint":
            from gazelab.gaze.trackers.gazepoint import GazePointTracker

            assert "GazePoint Open Gaze simulator" in line
            tracker = GazePointTracker(port=port)
        else:
            from gazelab.gaze.trackers.lsl import LSLTracker

            assert "LSL gaze stream" in line
            name = line.split("lsl:name=")[1].split(";")[0]
            tracker = LSLTracker(f"lsl:name={name}", resolve_timeout_s=10.0)
        tracker.connect()
        try:
            tracker.start()
            time.sleep(1.0)
            assert len(tracker.drain()) >= 20
        finally:
            tracker.stop()
            tracker.close()
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize(
    ("kind", "manufacturer", "model"),
    [("gazepoint", "Gazepoint", "Open Gaze API tracker"), ("lsl", "Lab Streaming Layer",
     "LSL gaze stream"), ("eyetribe", "The Eye Tribe", "ET1000")],
)  # fmt: skip
def test_bids_sidecar_names_the_tracker_and_its_rate(tmp_path, kind, manufacturer, model):
    import json

    from gazelab.annotation.bids import export_session
    from gazelab.annotation.store import SessionStore
    from gazelab.gaze.trackers.base import GazeSample

    s = Settings()
    s = dataclasses.replace(s, tracker=dataclasses.replace(s.tracker, kind=kind, rate_hz=150))
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        sid = store.create_session("P01", settings_toml=s.to_toml(), seed=0,
                                   image_source="synthetic:1:0", stimulus_order=["a"],
                                   start_local_s=0.0).id  # fmt: skip
        store.add_samples(sid, [GazeSample(i * 6.7, i * 0.0067, 100.0, 100.0) for i in range(5)],
                          trial_index=0, phase="image")  # fmt: skip
        paths = export_session(store, sid, tmp_path / "bids")
    sidecar = json.loads(paths["gaze_json"].read_text())
    assert (sidecar["Manufacturer"], sidecar["ManufacturersModelName"]) == (manufacturer, model)
    assert sidecar["SamplingFrequency"] == 150 and sidecar["TrackerKind"] == kind
