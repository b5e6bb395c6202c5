"""The session records the geometry of the screen it was shown on (no Qt): resolution from
the screen, physical size from the screen when plausible, else remembered, else asked;
a failed pre-flight blocks the start unless overridden; resume on the recorded screen."""

from __future__ import annotations

import dataclasses
import math
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
        (ev,) = [e for e in st.events(sid) if e["kind"] == "screen"]
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
