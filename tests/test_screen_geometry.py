"""The session records the geometry of the screen it was shown on (no Qt): resolution from
the screen, physical size from the screen when plausible, else remembered, else asked;
a failed pre-flight blocks the start unless overridden; resume on the recorded screen."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import pytest

from gazelab.annotation.controller import AnnotationSession
from gazelab.annotation.preflight import PreflightResult, check_screen, start_blocked
from gazelab.annotation.screen import (
    ScreenInfo,
    ScreenMemory,
    reported_size_problem,
    resume_screen_problem,
    screen_geometry,
)
from gazelab.annotation.session import SessionConfig, SessionSetupError, on_screen, screen_event
from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.settings import Settings, TrackerSettings

DEFAULT = Settings().display  # 27" 2560x1440 at 70 cm


def test_reported_sizes_computed_from_a_nominal_dpi_are_not_trusted() -> None:
    # Xvfb and X servers without EDID: the resolution at 96 dpi, rounded to mm
    assert "96 dpi" in reported_size_problem((1920, 1080), (508.0, 286.0))
    assert "100 dpi" in reported_size_problem((800, 800), (203.2, 203.2))  # Qt offscreen
    assert "no physical size" in reported_size_problem((1920, 1080), (0.0, 0.0))
    assert "no physical size" in reported_size_problem((1920, 1080), None)
    assert "not a lab screen" in reported_size_problem((1920, 1080), (160.0, 90.0))  # 7.2"
    assert "square" in reported_size_problem((1920, 1080), (527.0, 527.0))
    # a real 23.8" 1920x1080 monitor's EDID (527x296 mm) and a 27" 2560x1440 (597x336 mm)
    assert reported_size_problem((1920, 1080), (527.0, 296.0)) == ""
    assert reported_size_problem((2560, 1440), (597.0, 336.0)) == ""


def test_default_settings_on_a_1920x1080_screen_record_that_screen() -> None:
    measured = ScreenInfo("HDMI-1", (1920, 1080), (527.0, 296.0), "DEL", "P2419H", "ABC")
    g = screen_geometry(DEFAULT, measured)
    assert g.size_source == "screen" and not g.needs_size
    assert g.display.resolution_px == (1920, 1080)
    assert (g.display.width_mm, g.display.height_mm) == (527.0, 296.0)
    assert g.display.distance_mm == DEFAULT.distance_mm  # no screen knows the distance
    assert g.diagonal_in == pytest.approx(math.hypot(527, 296) / 25.4)  # 23.8"
    assert any("settings say 2560x1440" in n for n in g.notes)
    # a degree is now this screen's: 1 deg at 70 cm = 12.2 mm = 44.5 px (not 52.4 of 27")
    pitch = (527.0 / 1920 + 296.0 / 1080) / 2  # mm per px
    px_per_deg = 2 * 700 * math.tan(math.radians(0.5)) / pitch
    assert g.display.deg_to_px(1.0) == pytest.approx(px_per_deg, rel=1e-6)
    assert px_per_deg == pytest.approx(44.5, abs=0.05)
    assert DEFAULT.deg_to_px(1.0) == pytest.approx(52.3, abs=0.05)  # what was recorded before


def test_a_screen_without_a_size_is_asked_once_and_remembered(tmp_path: Path) -> None:
    xvfb = ScreenInfo("screen", (1366, 768), (361.0, 203.0))  # 1366x768 at 96 dpi
    memory = ScreenMemory(tmp_path / "screens.json")
    g = screen_geometry(DEFAULT, xvfb, remembered_mm=memory.size_mm(xvfb.key))
    assert g.needs_size and g.size_source == "assumed"
    assert g.display.resolution_px == (1366, 768)
    assert g.diagonal_in == pytest.approx(27.0)  # the settings' diagonal stands in
    given = screen_geometry(DEFAULT, xvfb, operator_diagonal_in=15.6)
    assert given.size_source == "operator" and not given.needs_size
    assert given.display.width_mm == pytest.approx(15.6 * 25.4 * 1366 / math.hypot(1366, 768))
    memory.remember(xvfb.key, (given.display.width_mm, given.display.height_mm))
    again = screen_geometry(DEFAULT, xvfb, remembered_mm=memory.size_mm(xvfb.key))
    assert again.size_source == "remembered" and not again.needs_size
    assert again.diagonal_in == pytest.approx(15.6, abs=0.01)
    other = ScreenInfo("screen", (1920, 1080), (508.0, 286.0))  # another screen: asked
    assert memory.size_mm(other.key) is None
    (tmp_path / "bad.json").write_text("{not json")
    assert ScreenMemory(tmp_path / "bad.json").size_mm(xvfb.key) is None


def test_settings_of_this_resolution_give_the_size_when_the_screen_does_not() -> None:
    s = DisplayGeometry.from_diagonal(24.0, (1920, 1080), 600.0)
    g = screen_geometry(s, ScreenInfo("screen", (1920, 1080), (508.0, 286.0)))
    assert g.size_source == "settings" and g.display == s and not g.needs_size
    assert screen_geometry(s, None).display == s  # no screen (a window): as given


def test_a_session_on_a_screen_stores_what_was_shown_and_resumes_there(tmp_path: Path) -> None:
    s = dataclasses.replace(Settings(), tracker=TrackerSettings(kind="none"))
    cfg = SessionConfig(tmp_path / "s.sqlite", "P01", "synthetic:3:1:64", s)
    screen = ScreenInfo("HDMI-1", (1920, 1080), (527.0, 296.0))
    shown = on_screen(cfg, screen)
    assert shown.settings.display.resolution_px == (1920, 1080)
    session = AnnotationSession(shown, actual_screen_px=screen.resolution_px)
    session.event("screen", **screen_event(shown, screen))
    sid = session.session_id
    session.finish()
    with SessionStore(tmp_path / "s.sqlite") as st:
        stored = Settings.from_toml(st.session(sid).settings_toml)
        (ev,) = (e for e in st.events(sid) if e["kind"] == "screen")
    assert stored.display.resolution_px == (1920, 1080)
    assert (stored.display.width_mm, stored.display.height_mm) == (527.0, 296.0)
    assert stored.stimulus.square_px == 1020  # drawn at 1020 px, and recorded so
    assert ev["payload"]["size_source"] == "screen" and ev["payload"]["resolution_px"] == [
        1920,
        1080,
    ]
    # the same screen resumes (the settings given now are the defaults: ignored)
    resumed = dataclasses.replace(cfg, resume=sid)
    assert on_screen(resumed, screen) is resumed
    again = AnnotationSession(resumed, actual_screen_px=(1920, 1080))
    assert again.screen_px == (1920, 1080)
    again.finish()
    assert resume_screen_problem(stored.display, screen, sid) == ""
    laptop = ScreenInfo("eDP-1", (1366, 768), (344.0, 194.0))
    assert "recorded on 1920x1080" in resume_screen_problem(stored.display, laptop, sid)
    with pytest.raises(SessionSetupError, match="recorded on 1920x1080"):
        AnnotationSession(resumed, actual_screen_px=(1366, 768))


def test_a_failed_preflight_blocks_the_start_unless_overridden() -> None:
    assert "run the pre-flight" in start_blocked(None)
    assert start_blocked(PreflightResult()) == ""
    failed = PreflightResult(problems=("tracker eyetribe unreachable",))
    assert "1 problem" in start_blocked(failed) and "start despite" in start_blocked(failed)
    assert start_blocked(failed, override=True) == ""
    # the screen check: a resolution mismatch is a problem, a nominal-dpi size is not
    s = Settings()
    (line,) = check_screen(s, (1920, 1080), (508.0, 286.0))
    assert "1920x1080" in line and "2560x1440" in line
    assert check_screen(s, (2560, 1440), (677.0, 381.0)) == []  # 96 dpi: not compared
    (size,) = check_screen(s, (2560, 1440), (527.0, 296.0))  # a measured 23.8" is
    assert "23.8" in size and "27.0" in size


@pytest.mark.gui
def test_the_setup_dialog_asks_the_size_once_and_blocks_a_failed_preflight(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from gazelab.app.setup_dialog import SetupDialog

    xvfb = ScreenInfo("screen", (1920, 1080), (508.0, 286.0))  # a 96-dpi size: not trusted
    memory = ScreenMemory(tmp_path / "screens.json")
    init = dataclasses.replace(
        SessionConfig(tmp_path / "s.sqlite", "P01", "synthetic:2:1:64"),
        settings=dataclasses.replace(Settings(), tracker=TrackerSettings(kind="none")),
    )
    dlg = SetupDialog(init, screen=xvfb, memory=memory, preflight_options={"skip": ("microphone",)})
    qtbot.addWidget(dlg)
    assert dlg.resolution.text() == "1920x1080" and not dlg.resolution.isEnabled()
    assert dlg.diagonal.value() == 0 and "unknown: give it" in dlg.screen_note.text()
    dlg.ok_button.click()  # the size is not given: asked
    assert dlg.config is None and "screen diagonal" in dlg.errors.text()
    dlg.diagonal.setValue(23.8)
    dlg.ok_button.click()  # the pre-flight runs and passes: the session may start
    cfg = dlg.config
    assert cfg is not None and cfg.preflight_override == ()
    assert cfg.settings.display.resolution_px == (1920, 1080) and cfg.screen is not None
    assert cfg.screen.size_source == "operator"
    assert dlg.preflight_result is not None and not dlg.preflight_result.problems
    assert memory.size_mm(xvfb.key) == pytest.approx((527.0, 296.4), abs=0.2)
    again = SetupDialog(init, screen=xvfb, memory=memory)  # the same screen: not asked
    qtbot.addWidget(again)
    assert again.diagonal.value() == pytest.approx(23.8, abs=0.05)
    assert "as given for this screen before" in again.screen_note.text()
    # a screen that reports a measured size, and a settings resolution it does not have
    edid = ScreenInfo("DP-1", (2560, 1440), (597.0, 336.0), "DEL", "U2719D")
    bad = dataclasses.replace(init, images="folder:/nowhere/at/all")
    dlg = SetupDialog(bad, screen=edid, memory=memory, preflight_options={"skip": ("microphone",)})
    qtbot.addWidget(dlg)
    assert dlg.diagonal.value() == pytest.approx(27.0, abs=0.05)  # as the screen reports it
    dlg.images.setText("synthetic:2:1:64")
    dlg.diagonal.setValue(24.0)  # the operator says otherwise: the pre-flight objects
    dlg.ok_button.click()
    assert dlg.config is None and not dlg.ok_button.isEnabled()
    assert "reports 597x336 mm" in dlg.errors.text() and dlg.override.isVisibleTo(dlg)
    dlg.override.setChecked(True)  # start despite it: recorded with the session
    assert dlg.ok_button.isEnabled()
    dlg.ok_button.click()
    assert dlg.config is not None and "reports 597x336 mm" in dlg.config.preflight_override[0]
    assert memory.size_mm(edid.key) is None  # a measuring screen is not overruled for good


# -- a whole session on a real X screen (Xvfb + openbox, driven with xdotool) -----------------------
def _annotate(x, store: Path, *args: str, log: Path):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "gazelab.app.cli", "annotate", "--store", str(store),
           "--voice", "keys", *args]  # fmt: skip
    return subprocess.Popen(cmd, env=x.env, stdout=log.open("a"), stderr=subprocess.STDOUT)


def _ended(x, proc, log: Path, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        x.key("Escape")  # a second Esc, if one is asked
        proc.wait(timeout=10)
    assert proc.returncode == 0, log.read_text()[-3000:]


def _session(store: Path, sid: int) -> tuple[Settings, list[dict]]:
    with SessionStore(store) as st:
        return Settings.from_toml(st.session(sid).settings_toml), st.events(sid)


def _drawn_width(png: Path, row: int) -> int:
    """Width, px, of what differs from the grey surround (128) on one row of a screenshot:
    the stimulus as drawn."""
    import numpy as np
    from PIL import Image

    line = np.asarray(Image.open(png).convert("RGB"), dtype=int)[row]
    drawn = np.flatnonzero(np.abs(line - 128).sum(axis=1) > 6)
    return int(drawn.max() - drawn.min() + 1) if drawn.size else 0


def _event_kinds(store: Path, sid: int) -> list[str]:
    try:
        with SessionStore(store) as st:
            return [e["kind"] for e in st.events(sid)]
    except Exception:  # the store is being written
        return []


def _labels(store: Path, sid: int) -> int:
    try:
        with SessionStore(store) as st:
            return len(st.final_labels(sid))
    except Exception:  # the store is being created
        return -1


@pytest.mark.gui
@pytest.mark.slow
def test_default_settings_on_a_real_1920x1080_screen(tmp_path: Path) -> None:
    """Default settings (27", 2560x1440) on a 1920x1080 X screen that reports only a
    96-dpi size: the dialog asks the diagonal, the session records 1920x1080 and the
    1020 px square it drew, calibrates and validates there, and resumes on that screen;
    a new session later takes the remembered diagonal without asking."""
    from tests.xserver import x_screen

    store, log = tmp_path / "s.sqlite", tmp_path / "annotate.log"
    with x_screen(1920, 1080, tmp_path, "1920x1080") as x:
        proc = _annotate(x, store, "--participant", "P01", "--images", "synthetic:2:1:64",
                         "--tracker", "sim", "--experimenter-view", log=log)  # fmt: skip
        dlg = x.wait_window("new annotation session", proc=proc)
        x.activate(dlg)
        x.shot("01_setup_asks_the_diagonal", tmp_path)
        _, _, dw, dh = x.geometry(dlg)
        assert dw <= 1920 and dh <= 1080
        x.key("ctrl+a")
        x.type("23.8")
        x.key("Tab")
        x.shot("02_setup_diagonal_given", tmp_path)
        x.key("Return")  # OK: the pre-flight runs, passes, the session starts
        win = x.wait_window("^gazelab — P01$", proc=proc)  # not "… experimenter view — P01"
        x.activate(win)
        # full screen: the window manager applies the state after the window maps
        x.until(lambda: x.geometry(win)[2:] == (1920, 1080), 10, "the window to fill the screen")
        time.sleep(0.5)
        x.shot("03_start_screen", tmp_path)
        x.key("space")
        time.sleep(2.0)
        x.shot("04_calibration_target", tmp_path)

        def stored(what: str) -> int:
            try:
                with SessionStore(store) as st:
                    return len(getattr(st, what)(1))
            except Exception:
                return 0

        x.until(lambda: stored("calibrations") >= 1, 60, "the calibration result")
        time.sleep(0.5)
        x.shot("05_calibration_result", tmp_path)
        x.key("space")
        x.until(lambda: stored("validation_qualities") >= 1, 60, "the validation result")
        time.sleep(0.5)
        x.shot("06_validation_result", tmp_path)
        with SessionStore(store) as st:
            (v,) = st.validation_qualities(1)
        view = x.wait_window("experimenter view", proc=proc)  # one screen: beside it
        x.activate(view)
        time.sleep(0.5)
        x.shot("06b_operator_view_validation_plot", tmp_path)
        x.key("space" if v["passed"] else "o")  # typed in the operator's view: it acts
        x.until(lambda: "image" in _event_kinds(store, 1), 20, "the trials to start")
        time.sleep(0.3)
        x.shot("06c_operator_view_trials", tmp_path)
        x.activate(win)
        time.sleep(1.6)  # blank, cross, blank: the first image
        assert _drawn_width(x.shot("07_first_image", tmp_path), 540) == 1020  # as recorded
        x.key("5")
        time.sleep(0.3)
        x.shot("08_labelled", tmp_path)
        x.key("space")
        x.until(lambda: _labels(store, 1) == 1, 20, "the first label")
        x.key("Escape", "Escape")  # interrupted after one image (Esc twice): resumed below
        _ended(x, proc, log)
        settings, events = _session(store, 1)
        assert settings.display.resolution_px == (1920, 1080)  # what was shown
        assert math.hypot(settings.display.width_mm, settings.display.height_mm) == pytest.approx(
            23.8 * 25.4, abs=0.5
        )
        assert settings.stimulus.square_px == 1020  # the square drawn, recorded
        (screen,) = (e["payload"] for e in events if e["kind"] == "screen")
        assert screen["size_source"] == "operator" and screen["reported_mm"] == [508.0, 286.0]
        remembered = Path(x.env["XDG_CONFIG_HOME"]) / "gazelab" / "screens.json"
        assert "1920x1080" in remembered.read_text()
        import json

        from gazelab.annotation.bids import export_session

        with SessionStore(store) as st:  # the BIDS sidecar says what was shown too
            sidecar = json.loads(export_session(st, 1, tmp_path / "bids")["gaze_json"].read_text())
        assert sidecar["ScreenResolution"] == [1920, 1080]
        assert sidecar["StimulusSquarePixels"] == 1020
        assert math.hypot(*sidecar["ScreenSize"]) * 1000 / 25.4 == pytest.approx(23.8, abs=0.01)

        # the same screen resumes the session (it was refused before)
        proc = _annotate(x, store, "--participant", "P01", "--resume", "1", "--tracker", "sim",
                         "--skip-calibration", log=log)  # fmt: skip
        dlg = x.wait_window("resume session 1", proc=proc)
        x.activate(dlg)
        x.shot("09_resume_setup", tmp_path)
        x.key("Return")
        win = x.wait_window("^gazelab — P01$", proc=proc)  # not "… experimenter view — P01"
        x.activate(win)
        time.sleep(0.5)
        x.shot("10_resumed_start", tmp_path)
        x.key("space")
        time.sleep(1.6)
        x.key("2", "space")
        x.until(lambda: _labels(store, 1) == 2, 20, "the second label")
        time.sleep(0.3)
        x.shot("11_done", tmp_path)
        x.key("Escape")
        _ended(x, proc, log)

        # a new session on this screen: the diagonal given once is remembered, not asked
        proc = _annotate(x, store, "--participant", "P02", "--images", "synthetic:2:1:64",
                         "--tracker", "none", log=log)  # fmt: skip
        dlg = x.wait_window("new annotation session", proc=proc)
        x.activate(dlg)
        x.shot("12_setup_remembered", tmp_path)
        x.key("Return")
        win = x.wait_window("— P02$", proc=proc)
        x.activate(win)
        x.key("Escape")
        _ended(x, proc, log)
    settings, events = _session(store, 2)
    assert settings.display.resolution_px == (1920, 1080)
    diag = math.hypot(settings.display.width_mm, settings.display.height_mm) / 25.4
    assert diag == pytest.approx(23.8, abs=0.02)
    (screen,) = (e["payload"] for e in events if e["kind"] == "screen")
    assert screen["size_source"] == "remembered"


@pytest.mark.gui
@pytest.mark.slow
def test_default_settings_on_a_real_1366x768_screen(tmp_path: Path) -> None:
    """The laptop screen: asked 15.6", the 708 px square recorded, every screen fits."""
    from tests.xserver import x_screen

    store, log = tmp_path / "s.sqlite", tmp_path / "annotate.log"
    with x_screen(1366, 768, tmp_path, "1366x768") as x:
        proc = _annotate(x, store, "--participant", "P01", "--images", "synthetic:2:1:64",
                         "--tracker", "none", log=log)  # fmt: skip
        dlg = x.wait_window("new annotation session", proc=proc)
        x.activate(dlg)
        x.key("ctrl+a")
        x.type("15.6")
        x.key("Tab")
        x.shot("01_setup", tmp_path)
        _, _, dw, dh = x.geometry(dlg)
        assert dw <= 1366 and dh <= 768
        x.key("Return")
        win = x.wait_window("^gazelab — P01$", proc=proc)  # not "… experimenter view — P01"
        x.activate(win)
        x.until(lambda: x.geometry(win)[2:] == (1366, 768), 10, "the window to fill the screen")
        time.sleep(0.5)
        x.shot("02_start_screen", tmp_path)
        x.key("space")
        time.sleep(1.6)
        x.key("1")
        time.sleep(0.3)
        assert _drawn_width(x.shot("03_image_labelled", tmp_path), 384) == 708
        x.key("space")
        time.sleep(1.6)
        x.key("4", "space")
        x.until(lambda: _labels(store, 1) == 2, 20, "two labels")
        time.sleep(0.3)
        x.shot("04_done", tmp_path)
        x.key("Escape")
        _ended(x, proc, log)
    settings, _ = _session(store, 1)
    assert settings.display.resolution_px == (1366, 768)
    assert settings.stimulus.square_px == 708
    diag = math.hypot(settings.display.width_mm, settings.display.height_mm) / 25.4
    assert diag == pytest.approx(15.6, abs=0.02)


@pytest.mark.gui
def test_the_setup_dialog_browses_for_the_store_and_images_from_the_store_folder(
    qtbot, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QFileDialog

    from gazelab.app.setup_dialog import SetupDialog

    (tmp_path / "study").mkdir()
    (tmp_path / "faces").mkdir()
    started: list[str] = []

    def save_name(parent, title, start, filters, options=None):  # type: ignore[no-untyped-def]
        started.append(start)
        return str(tmp_path / "study" / "lab2"), filters

    def folder(parent, title, start):  # type: ignore[no-untyped-def]
        started.append(start)
        return str(tmp_path / "faces")

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_name)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", folder)
    dlg = SetupDialog(SessionConfig(tmp_path / "study" / "lab.sqlite", "P01"), screen=None)
    qtbot.addWidget(dlg)
    dlg.store.property("browse").click()
    assert dlg.store.text() == str(tmp_path / "study" / "lab2.sqlite")  # named *.sqlite
    dlg.images.property("browse").click()
    assert dlg.images.text() == f"folder:{tmp_path / 'faces'}"
    assert started == [str(tmp_path / "study" / "lab.sqlite"), str(tmp_path / "study")]
    dlg.images.setText(f"ck+:{tmp_path / 'faces'}")  # a layout given stays that layout
    dlg.images.property("browse").click()
    assert dlg.images.text() == f"ck+:{tmp_path / 'faces'}" and started[-1] == str(
        tmp_path / "faces"
    )
