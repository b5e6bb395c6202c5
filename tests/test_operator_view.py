"""The operator's view during calibration and validation (live targets, the result plot,
acting with R/F/O/Space from it) and the drift check after each break."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.operator import (
    drift_check,
    drift_check_needed,
    gaze_per_target,
    operator_keys,
)
from gazelab.annotation.session import SessionConfig
from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.settings import Settings

GEOMETRY = DisplayGeometry.from_diagonal(24.0, (800, 600), 650.0)


def _table(t: np.ndarray, x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> dict:
    return {"local_s": t, "x": x, "y": y, "valid": valid}


# -- pure decisions --------------------------------------------------------------------------------
def test_drift_check_measures_the_angle_to_the_mean_gaze_after_the_saccade() -> None:
    t = np.arange(0.0, 1.0, 1 / 120)
    x = np.where(t < 0.3, 100.0, 440.0)  # the first 0.3 s: still on the way (left out)
    y = np.full_like(t, 300.0)
    ok = drift_check(_table(t, x, y, np.ones_like(t, bool)), (400.0, 300.0), (0.0, 1.0),
                     GEOMETRY, 1.5, settle_s=0.3)  # fmt: skip
    pw = GEOMETRY.width_mm / 800  # the centre target: atan(40 px · pitch / D)
    assert ok.error_deg == pytest.approx(math.degrees(math.atan(40 * pw / 650.0)))
    assert ok.error_deg == pytest.approx(2.149, abs=0.001)
    assert ok.offset_px == pytest.approx((40.0, 0.0)) and ok.n_samples == 84
    assert not ok.passed  # 2.15° > 1.5°: recalibrate
    small = drift_check(_table(t, x - 34, y, np.ones_like(t, bool)), (400.0, 300.0),
                        (0.0, 1.0), GEOMETRY, 1.5, settle_s=0.3)  # fmt: skip
    assert small.error_deg == pytest.approx(0.322, abs=0.001) and small.passed
    blind = drift_check(_table(t, x, y, np.zeros_like(t, bool)), (400.0, 300.0), (0.0, 1.0),
                        GEOMETRY, 1.5)  # fmt: skip
    assert math.isnan(blind.error_deg) and not blind.passed and blind.n_samples == 0
    assert blind.payload()["error_deg"] is None and "no valid gaze" in blind.summary()
    assert drift_check_needed("sim", 1.5) and drift_check_needed("eyetribe", 0.5)
    assert not drift_check_needed("mouse", 1.5) and not drift_check_needed("sim", 0.0)


def test_gaze_per_target_keeps_each_windows_valid_samples_after_the_settle_time() -> None:
    t = np.arange(0.0, 2.0, 0.1)
    x, y = t * 10, t * 20
    valid = np.ones_like(t, bool)
    valid[12] = False
    a, b = gaze_per_target(_table(t, x, y, valid), [(0.0, 0.95), (1.0, 1.95)], settle_s=0.5)
    assert a[:, 0].tolist() == pytest.approx([5.0, 6.0, 7.0, 8.0, 9.0])
    assert b[:, 1].tolist() == pytest.approx([30.0, 32.0, 34.0, 36.0, 38.0])  # not 1.2 s


def test_the_operator_may_act_with_the_keys_of_the_screen_shown() -> None:
    assert operator_keys("validation_result", may_start=False, failing=2) == ["r", "f", "o"]
    assert operator_keys("validation_result", may_start=True) == ["space", "r"]
    assert operator_keys("calibration_result", calibrated=False) == ["r"]
    assert operator_keys("break") == ["space"] and operator_keys("calibration") == []
    assert operator_keys("trials", paused=True) == ["p", "c"]


# -- the window and the operator's view --------------------------------------------------------------
def _settings(**protocol: object) -> Settings:
    s = Settings()
    return dataclasses.replace(
        s,
        display=GEOMETRY,
        stimulus=dataclasses.replace(s.stimulus, square_px=400),
        protocol=dataclasses.replace(s.protocol, blank1_ms=30, cross_ms=30, blank2_ms=30,
                                     **protocol),  # type: ignore[arg-type]
        tracker=dataclasses.replace(s.tracker, kind="sim", rate_hz=120),
    )  # fmt: skip


def _window(qtbot, tmp_path: Path, settings: Settings, offset: list[float], **kw: object):  # type: ignore[no-untyped-def]
    """A window whose 'eyes' look at the target shown shifted by ``offset`` px."""
    from gazelab.annotation.session import OpenTracker
    from gazelab.app.annotate import AnnotationWindow
    from gazelab.gaze.trackers.mouse import MouseTracker

    holder: list = []

    def eyes() -> tuple[float, float] | None:
        win = holder[0] if holder else None
        if win is None or win.target is None:
            return (400.0, 300.0)
        return (win.target[0] + offset[0], win.target[1] + offset[1])

    tracker = MouseTracker(eyes, rate_hz=120, screen_px=(800, 600))
    cfg = SessionConfig(tmp_path / "s.sqlite", "P01", "synthetic:3:1:64", settings)
    win = AnnotationWindow(cfg, tracker=OpenTracker(tracker), calibration_dwell_s=0.3,
                           validation_dwell_s=0.5, microphone=False, **kw)  # fmt: skip
    holder.append(win)
    qtbot.addWidget(win)
    win.resize(800, 600)
    win.show()
    qtbot.waitExposed(win)
    return win


def _view(qtbot, win):  # type: ignore[no-untyped-def]
    from gazelab.app.experimenter import ExperimenterView

    view = ExperimenterView(win.ctl, window=win)
    qtbot.addWidget(view)
    view.resize(1100, 560)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.mark.gui
def test_the_operator_sees_calibration_and_validation_and_acts_from_the_view(
    qtbot, tmp_path, out_dir
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from gazelab.app.experimenter import MEAN, SAMPLE, TARGET

    win = _window(qtbot, tmp_path, _settings(), [40.0, 0.0])
    view = _view(qtbot, win)
    win.begin()
    qtbot.waitUntil(lambda: win.mode == "calibration" and win.target is not None, timeout=5000)
    qtbot.waitUntil(lambda: "target" in view.state_lines()[2], timeout=2000)
    assert view.state_lines()[2].startswith("phase calibration: target ")
    assert "of 9" in view.state_lines()[2]  # not "phase idle"
    shot = view.grab().toImage()
    c = view.screen_to_view(*win.target)
    assert shot.pixelColor(round(c.x()) + 5, round(c.y())) == TARGET  # the live target
    view.grab().save(str(out_dir / "operator_calibration.png"))
    qtbot.waitUntil(lambda: win.mode == "calibration_result", timeout=10_000)
    qtbot.waitUntil(lambda: view.buttons["r"].isVisible(), timeout=2000)  # live buttons
    calibrated = view.target_gaze("calibration")  # the calibration plot: 9 targets' gaze
    assert len(calibrated) == 9
    for (tx, ty), dots in calibrated.items():
        # (a few samples a target: fewer arrive on a loaded machine; their mean is the point)
        assert len(dots) >= 2 and dots.mean(axis=0) == pytest.approx((tx + 40, ty), abs=1)
    view.grab().save(str(out_dir / "operator_calibration_result.png"))
    assert view.available_keys() == ["space", "r"] and view.buttons["space"].isVisible()
    assert view.press("space")  # the operator starts the validation from the view
    qtbot.waitUntil(lambda: win.mode == "validation_result", timeout=15_000)
    view._tick()
    assert view.state_lines()[2] == "phase validation result"
    v = win.ctl.validation
    assert v is not None and not v.passed
    gaze = view.target_gaze("validation")
    assert len(gaze) == 9
    for q in v.quality.points:  # each target's dots sit 40 px right of it
        dots = gaze[(q.target_px[0], q.target_px[1])]
        assert len(dots) >= 10
        assert dots.mean(axis=0) == pytest.approx((q.target_px[0] + 40, q.target_px[1]), abs=1)
    path = out_dir / "operator_validation_result.png"
    view.grab().save(str(path))
    img = view.grab().toImage()
    centre = view.screen_to_view(440.0, 300.0)  # the centre target's gaze (dots, mean)
    near = {img.pixelColor(round(centre.x()) + dx, round(centre.y()) + dy).rgb()
            for dx in range(-3, 4) for dy in range(-3, 4)}  # fmt: skip
    assert SAMPLE.rgb() in near or MEAN.rgb() in near
    lines = view.result_lines()
    assert lines[0].startswith("validation NOT PASSED: mean 2.")
    assert lines[2] == "targets 1, 2, 3, 4, 5, 6, 7, 8, 9 above 1.50° or without gaze: NOT PASSED"
    assert view.available_keys() == ["r", "f", "o"] and not view.buttons["space"].isVisible()
    assert not view.press("space")  # blocked: the thresholds are not met
    qtbot.keyClick(view, Qt.Key.Key_O)  # O typed in the operator's view: override, start
    assert win.mode == "trials"
    sid = win.session.id
    win.finish()
    with SessionStore(tmp_path / "s.sqlite") as st:
        events = st.events(sid)
    assert [e["kind"] for e in events].count("validation_override") == 1
    keys = [e["payload"]["key"] for e in events if e["kind"] == "key"]
    assert keys == [" ", "o"]  # pressed from the view, recorded as the window's keys


@pytest.mark.gui
def test_a_drift_check_after_each_break_goes_on_or_recalibrates(qtbot, tmp_path, out_dir) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from gazelab.annotation.protocol import Phase

    offset = [6.0, 0.0]
    win = _window(qtbot, tmp_path, _settings(break_every_n_trials=1), offset,
                  skip_calibration=True)  # fmt: skip
    view = _view(qtbot, win)

    def trial_then_break() -> None:
        qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
        qtbot.keyClick(win, "3")
        qtbot.keyClick(win, Qt.Key.Key_Space)
        assert win.mode == "break"

    win.begin()
    trial_then_break()
    qtbot.keyClick(win, Qt.Key.Key_Space)  # after the break: the drift check first
    assert win.mode == "drift_check" and win.target == (400.0, 300.0)
    qtbot.waitUntil(lambda: view.state_lines()[2] == "phase drift check: target 1 of 1",
                    timeout=2000)  # fmt: skip
    view._tick()
    view.grab().save(str(out_dir / "operator_drift_check.png"))
    qtbot.waitUntil(lambda: win.mode == "trials", timeout=5000)  # 0.32° passes: go on
    assert win.drift is not None and win.drift.passed
    assert win.drift.error_deg == pytest.approx(0.322, abs=0.01)
    trial_then_break()
    offset[0] = 80.0  # the headrest slipped: 4.3° off
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "calibration", timeout=5000)  # recalibrate
    assert not win.drift.passed and win.drift.error_deg == pytest.approx(4.29, abs=0.05)
    view._tick()
    assert any("drift check FAILED: 4.2" in line or "drift check FAILED: 4.3" in line
               for line in view.result_lines())  # fmt: skip
    sid = win.session.id
    win.finish()
    with SessionStore(tmp_path / "s.sqlite") as st:
        checks = [e for e in st.events(sid) if e["kind"] == "drift_check"]
    assert [c["payload"]["passed"] for c in checks] == [True, False]
    assert [c["trial_index"] for c in checks] == [1, 2]
    assert checks[1]["payload"]["threshold_deg"] == 1.5
    assert checks[1]["payload"]["offset_px"][0] == pytest.approx(80.0, abs=0.5)
