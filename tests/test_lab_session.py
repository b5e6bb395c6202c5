"""Lab-ready sessions: screen fit, resume geometry, counterbalanced order,
validation screens, instructions and the experimenter view."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.controller import AnnotationSession
from gazelab.annotation.protocol import balanced_latin_row, session_order
from gazelab.annotation.session import SessionConfig, SessionSetupError, config_from_options
from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import DisplayGeometry, fit_stimulus_square
from gazelab.settings import Settings


def screen_settings(w: int, h: int, diagonal: float = 24.0, kind: str = "none") -> Settings:
    s = Settings()
    return dataclasses.replace(
        s,
        display=DisplayGeometry.from_diagonal(diagonal, (w, h), 650.0),
        protocol=dataclasses.replace(s.protocol, blank1_ms=30, cross_ms=30, blank2_ms=30),
        tracker=dataclasses.replace(s.tracker, kind=kind),
    )


def session(tmp_path: Path, who: str, settings: Settings, **kw: object) -> AnnotationSession:
    cfg = SessionConfig(tmp_path / "s.sqlite", who, "synthetic:6:1:64", settings, **kw)  # type: ignore[arg-type]
    return AnnotationSession(cfg)


# -- 18.1 screen fit ------------------------------------------------------------------------------
@pytest.mark.parametrize(("res", "side"), [((1920, 1080), 1020), ((1366, 768), 708)])
def test_the_square_fits_the_screen_with_the_feedback_line(tmp_path, res, side) -> None:  # type: ignore[no-untyped-def]
    assert fit_stimulus_square(res, 1200, 30) == side
    s = session(tmp_path, "P01", screen_settings(*res, diagonal=15.6 if res[0] == 1366 else 24))
    s.finish()
    assert s.settings.stimulus.square_px == side
    assert any(f"{side} px instead of 1200" in n for n in s.notes)
    with SessionStore(tmp_path / "s.sqlite") as st:  # recorded: analysis derives from it
        stored = Settings.from_toml(st.session(s.session_id).settings_toml)
    assert stored.stimulus.square_px == side
    layout = s.layout_for(s.record.stimulus_order[0])
    x, y, w, h = layout.image_rect_on_screen
    assert y + h + 30 <= res[1] and y >= 30 and x >= 0 and x + w <= res[0]  # room under it
    assert (w, h) == (side, side)  # the 64 px face, aspect kept


def test_set_up_refuses_a_screen_the_square_cannot_fit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = screen_settings(1366, 768)
    s = dataclasses.replace(s, stimulus=dataclasses.replace(s.stimulus, min_square_px=800))
    problems = SessionConfig(tmp_path / "s.sqlite", "P01", "synthetic:2:1", s).problems()
    (line,) = (p for p in problems if "1366x768" in p)
    assert "708 px" in line and "min_square_px" in line and "\n" not in line
    with pytest.raises(SessionSetupError, match="708 px"):
        session(tmp_path, "P01", s)


# -- 18.2 resume takes the session's geometry -------------------------------------------------
def test_resume_ignores_another_command_line_geometry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = session(tmp_path, "P01", screen_settings(1920, 1080))
    sid = first.session_id
    first.finish()
    other = config_from_options(store=tmp_path / "s.sqlite", participant="P01",
                                images="synthetic:6:1:64", tracker="none",
                                resolution="2560x1440", resume=sid)  # fmt: skip
    again = AnnotationSession(other)
    try:
        assert again.screen_px == (1920, 1080)
        assert again.settings.stimulus.square_px == 1020
        assert any("resume" in n and "ignored" in n and "1920x1080" in n for n in again.notes)
        lay = again.layout_for(again.record.stimulus_order[0])
        assert lay.square_origin == (450.0, 30.0)  # the cross stays at (960, 540)
    finally:
        again.finish()
    with pytest.raises(SessionSetupError, match="recorded on 1920x1080"):
        AnnotationSession(other, actual_screen_px=(2560, 1440))
    with SessionStore(tmp_path / "s.sqlite") as st:
        assert st.lease_holder(sid) is None  # the refused resume left the session free


# -- 18.3 order ------------------------------------------------------------------------------------
def test_two_participants_get_different_orders_and_a_pseudonym_always_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ids = [f"img{i}" for i in range(12)]
    a = session_order(ids, "random", participant="P01", participant_index=0, seed=0)
    b = session_order(ids, "random", participant="P02", participant_index=1, seed=0)
    assert a[0] != b[0] and sorted(a[0]) == sorted(b[0]) == sorted(ids)
    assert session_order(ids, "random", participant="P01", participant_index=5, seed=0) == a
    fixed = [session_order(ids, "fixed", participant=p, participant_index=i, seed=3)[0]
             for i, p in enumerate(("P01", "P02"))]  # fmt: skip
    assert fixed[0] == fixed[1]
    s1 = session(tmp_path, "P01", screen_settings(1920, 1080))
    s1.finish()
    s2 = session(tmp_path, "P02", screen_settings(1920, 1080))
    s2.finish()
    assert s1.record.stimulus_order != s2.record.stimulus_order
    assert s1.record.seed != s2.record.seed  # each session's own seed is stored
    (tmp_path / "other").mkdir()
    s3 = session(tmp_path / "other", "P01", screen_settings(1920, 1080))  # another store
    s3.finish()
    assert s3.record.stimulus_order == s1.record.stimulus_order


def test_latin_square_orders_counterbalance_positions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = np.array([balanced_latin_row(4, r) for r in range(4)])
    assert rows.tolist()[0] == [0, 1, 3, 2]
    for k in range(4):  # each item once per position and once per row
        assert sorted(rows[:, k]) == [0, 1, 2, 3] and sorted(rows[k]) == [0, 1, 2, 3]
    pairs = {(int(r[i]), int(r[i + 1])) for r in rows for i in range(3)}
    assert len(pairs) == 12  # every ordered pair follows once: carry-over balanced
    s = dataclasses.replace(screen_settings(1920, 1080))
    s = dataclasses.replace(s, protocol=dataclasses.replace(s.protocol, order="latin"))
    orders = []
    for who in ("P01", "P02", "P01"):
        run = session(tmp_path, who, s)
        run.finish()
        orders.append(run.record.stimulus_order)
    assert orders[0] != orders[1] and orders[0] == orders[2]  # row = participant's index
    with SessionStore(tmp_path / "s.sqlite") as st:
        opened = [e["payload"]["order"] for e in st.events(3) if e["kind"] == "app_open"]
    assert opened == [{"method": "latin", "seed": 0, "latin_row": 0}]


def _qt() -> None:
    pytest.importorskip("PySide6")


def shown(qtbot, win, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
    """Show a test window at ``width`` x ``height`` and wait until it is on screen."""
    qtbot.addWidget(win)
    win.resize(width, height)
    win.show()
    qtbot.waitExposed(win)


@pytest.mark.gui
def test_resume_with_another_resolution_does_not_move_the_cross(qtbot, tmp_path, out_dir) -> None:  # type: ignore[no-untyped-def]
    _qt()
    from PySide6.QtGui import QImage

    from gazelab.annotation.protocol import Phase
    from gazelab.app.annotate import AnnotationWindow
    from gazelab.app.setup_dialog import SetupDialog

    first = session(tmp_path, "P01", screen_settings(1920, 1080))
    sid = first.session_id
    first.finish()
    other = config_from_options(store=tmp_path / "s.sqlite", participant="P01",
                                images="synthetic:6:1:64", tracker="none",
                                resolution="2560x1440", resume=sid)  # fmt: skip
    dlg = SetupDialog(other)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    dlg.grab().save(str(out_dir / "setup_resume.png"))
    assert "resume" in dlg.windowTitle() and "Resume session" in dlg.resume_note.text()
    assert dlg.resolution.text() == "1920x1080" and not dlg.resolution.isEnabled()
    dlg.ok_button.click()
    assert dlg.config is not None
    win = AnnotationWindow(dlg.config, microphone=False)
    shown(qtbot, win, 1920, 1080)
    win.begin()
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.CROSS, timeout=5000)
    path = out_dir / "resume_cross.png"
    win.grab().save(str(path))
    img = QImage(str(path))
    assert img.pixelColor(960, 540).black() == 255  # the cross, at the session's centre
    assert img.pixelColor(960 + 15, 540).black() == 255
    assert img.pixelColor(1280, 720).black() != 255
    win.finish()


# -- 18.4 validation screens ----------------------------------------------------------------------
def validation_window(qtbot, tmp_path, offset: tuple[float, float], kind: str = "sim"):  # type: ignore[no-untyped-def]
    """A window whose 'eyes' look at each target shifted by ``offset`` px (scripted)."""
    from gazelab.annotation.session import OpenTracker
    from gazelab.app.annotate import AnnotationWindow
    from gazelab.gaze.trackers.mouse import MouseTracker

    holder: list = []

    def eyes() -> tuple[float, float] | None:
        win = holder[0] if holder else None
        if win is None or win.target is None:
            return (400.0, 300.0)
        return (win.target[0] + offset[0], win.target[1] + offset[1])

    s = screen_settings(800, 600, kind=kind)
    s = dataclasses.replace(s, stimulus=dataclasses.replace(s.stimulus, square_px=400),
                            tracker=dataclasses.replace(s.tracker, rate_hz=120))  # fmt: skip
    tracker = MouseTracker(eyes, rate_hz=120, screen_px=(800, 600))
    cfg = SessionConfig(tmp_path / "s.sqlite", "P01", "synthetic:3:1:64", s)
    win = AnnotationWindow(cfg, tracker=OpenTracker(tracker), calibration_dwell_s=0.01,
                           validation_dwell_s=0.5, microphone=False)  # fmt: skip
    holder.append(win)
    shown(qtbot, win, 800, 600)
    win.begin()
    qtbot.waitUntil(lambda: win.mode == "calibration_result", timeout=10_000)
    return win


def px(img, x: float, y: float) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    c = img.pixelColor(round(x), round(y))
    return (c.red(), c.green(), c.blue())


@pytest.mark.gui
def test_validation_screen_shows_offsets_and_a_failing_threshold_blocks_the_start(
    qtbot, tmp_path, out_dir
) -> None:  # type: ignore[no-untyped-def]
    _qt()
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage

    win = validation_window(qtbot, tmp_path, offset=(40.0, 0.0))
    win.grab().save(str(out_dir / "calibration_result.png"))
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "validation_result", timeout=15_000)
    v = win.ctl.validation
    assert v is not None and len(v.quality.points) == 9
    g = win.ctl.settings.display
    for q in v.quality.points:  # the mean gaze 40 px right of each target
        assert q.offset_px == pytest.approx((40.0, 0.0), abs=1.0)
        assert q.rms_s2s_deg == pytest.approx(0.0, abs=1e-9)  # a still "eye"
    (centre,) = (q for q in v.quality.points if q.target_px == (400.0, 300.0))
    pw = g.width_mm / 800  # the eye on the normal through the centre: atan(40 px · pw / D)
    assert centre.accuracy_deg == pytest.approx(np.degrees(np.arctan(40 * pw / g.distance_mm)))
    assert 1.9 < v.quality.mean_accuracy_deg < centre.accuracy_deg  # off-centre: smaller angles
    assert not v.passed and any("mean accuracy" in p or "target" in p for p in v.problems)
    path = out_dir / "validation_failed.png"
    win.grab().save(str(path))
    img = QImage(str(path))
    cx, cy = 400.0, 300.0  # the centre target: its vector runs right to (440, 300)
    assert px(img, cx + 28, cy) == (80, 220, 255)  # the offset vector
    assert px(img, cx - 28, cy) != (80, 220, 255)  # nothing on the other side
    qtbot.keyClick(win, Qt.Key.Key_Space)  # blocked: the thresholds are not met
    assert win.mode == "validation_result"
    qtbot.keyClick(win, Qt.Key.Key_O)  # the experimenter overrides: recorded, trials start
    assert win.mode == "trials"
    sid = win.session.id
    win.finish()
    with SessionStore(tmp_path / "s.sqlite") as st:
        (run,) = st.validation_qualities(sid)
        assert run["kind"] == "calibration-validation" and not run["passed"]
        overrides = [e for e in st.events(sid) if e["kind"] == "validation_override"]
        assert len(overrides) == 1 and overrides[0]["payload"]["problems"] == list(v.problems)


@pytest.mark.gui
def test_a_passing_validation_starts_and_failing_targets_can_be_measured_again(
    qtbot, tmp_path, out_dir
) -> None:  # type: ignore[no-untyped-def]
    _qt()
    from PySide6.QtCore import Qt

    win = validation_window(qtbot, tmp_path, offset=(6.0, 0.0))
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "validation_result", timeout=15_000)
    win.grab().save(str(out_dir / "validation_passed.png"))
    v = win.ctl.validation
    assert v is not None and v.passed and win.ctl.failing_targets() == []
    assert v.quality.max_accuracy_deg < 0.5
    qtbot.keyClick(win, Qt.Key.Key_Space)
    assert win.mode == "trials"
    win.finish()


@pytest.mark.gui
def test_the_mouse_tracker_does_not_report_a_passed_validation(qtbot, tmp_path, out_dir) -> None:  # type: ignore[no-untyped-def]
    _qt()
    from PySide6.QtCore import Qt

    win = validation_window(qtbot, tmp_path, offset=(0.0, 0.0), kind="mouse")
    win.grab().save(str(out_dir / "mouse_calibration.png"))
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "validation_result", timeout=15_000)
    win.grab().save(str(out_dir / "mouse_validation.png"))
    v = win.ctl.validation
    assert v is not None and not v.meaningful and v.problems == ()
    win.finish()


def test_screen_colours_are_readable() -> None:
    pytest.importorskip("PySide6")
    from PySide6.QtGui import QColor

    from gazelab.app import annotate_screens as sc

    assert sc.contrast_ratio(QColor(255, 255, 255), QColor(0, 0, 0)) == pytest.approx(21.0)
    assert sc.contrast_ratio(QColor(220, 60, 60), sc.BACKGROUNDS["grey"]) < 1.5  # the old red
    for fg in (sc.TEXT, sc.GOOD, sc.BAD, sc.WARNING):
        assert sc.contrast_ratio(fg, sc.PANEL) >= 4.5
    for bg, fg in sc.FEEDBACK.items():
        assert sc.contrast_ratio(fg, sc.BACKGROUNDS[bg]) >= 4.5


# -- 18.7 instructions, practice, breaks ----------------------------------------------------------
@pytest.mark.gui
def test_start_screen_practice_and_breaks(qtbot, tmp_path, out_dir) -> None:  # type: ignore[no-untyped-def]
    _qt()
    from PySide6.QtCore import Qt

    from gazelab.annotation.protocol import Phase
    from gazelab.app.annotate import AnnotationWindow
    from gazelab.app.annotate_screens import instructions

    s = screen_settings(800, 600)
    s = dataclasses.replace(
        s,
        stimulus=dataclasses.replace(s.stimulus, square_px=400),
        protocol=dataclasses.replace(s.protocol, practice_trials=2, break_every_n_trials=2),
    )
    win = AnnotationWindow(SessionConfig(tmp_path / "s.sqlite", "P01", "synthetic:4:1:64", s),
                           microphone=False)  # fmt: skip
    shown(qtbot, win, 800, 600)
    words = "\n".join(instructions(win))
    assert "0 neutral   1 anger   2 contempt" in words and "7 surprise" in words
    assert "First 2 practice images (not recorded)" in words
    win.grab().save(str(out_dir / "start_screen.png"))
    qtbot.keyClick(win, Qt.Key.Key_Space)

    def one_trial(shot: str | None = None) -> None:
        qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
        qtbot.keyClick(win, "5")
        if shot:
            win.grab().save(str(out_dir / shot))
        qtbot.keyClick(win, Qt.Key.Key_Space)

    practice_ids = set()
    for k in range(2):
        qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
        assert win.ctl.practising
        practice_ids.add(win.protocol.image_id)
        one_trial("practice_image.png" if k == 0 else None)
    assert win.mode == "practice_done" and not win.ctl.practising
    win.grab().save(str(out_dir / "practice_done.png"))
    qtbot.keyClick(win, Qt.Key.Key_Space)
    for _ in range(2):
        one_trial()
    assert win.mode == "break" and win.protocol.phase is Phase.PAUSED
    win.grab().save(str(out_dir / "break.png"))
    qtbot.keyClick(win, Qt.Key.Key_Space)
    for _ in range(2):
        one_trial()
    qtbot.waitUntil(lambda: win.mode == "done", timeout=5000)
    sid = win.session.id
    order = win.session.stimulus_order
    win.finish()
    with SessionStore(tmp_path / "s.sqlite") as st:
        assert [lab.trial_index for lab in st.labels(sid)] == [0, 1, 2, 3]  # practice not stored
        assert not practice_ids & set(order)  # practice faces are not the study's images
        events = st.events(sid)
        kinds = [e["kind"] for e in events]
        assert kinds.count("image") == 4 and kinds.count("practice_done") == 1
        assert [e["trial_index"] for e in events if e["kind"] == "break"] == [2]


# -- 18.8 the experimenter view -------------------------------------------------------------------
@pytest.mark.gui
def test_experimenter_view_shows_the_gaze_point_where_the_simulator_reports_it(
    qtbot, tmp_path, out_dir
) -> None:  # type: ignore[no-untyped-def]
    _qt()
    from PySide6.QtGui import QImage

    from gazelab.annotation.protocol import Phase
    from gazelab.app.annotate import AnnotationWindow
    from gazelab.app.experimenter import GAZE, ExperimenterView

    s = screen_settings(800, 600, kind="sim")
    s = dataclasses.replace(s, stimulus=dataclasses.replace(s.stimulus, square_px=400),
                            tracker=dataclasses.replace(s.tracker, rate_hz=120))  # fmt: skip
    win = AnnotationWindow(SessionConfig(tmp_path / "s.sqlite", "P01", "synthetic:3:1:64", s),
                           skip_calibration=True, microphone=False)  # fmt: skip
    shown(qtbot, win, 800, 600)
    view = ExperimenterView(win.ctl)
    qtbot.addWidget(view)
    view.resize(1000, 480)
    view.show()
    qtbot.waitExposed(view)
    win.begin()
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
    qtbot.wait(600)  # the simulated eyes on the image for a while
    qtbot.keyClick(win, "4")
    qtbot.waitUntil(lambda: len(win.ctl.recent_gaze(1.0)) > 20, timeout=5000)
    last = [g for g in win.ctl.recent_gaze(1.0) if g.valid][-1]
    path = out_dir / "experimenter_view.png"
    view.grab().save(str(path))  # painted now, from the same samples (no event in between)
    img = QImage(str(path))
    hits = np.array([(x, y) for y in range(img.height()) for x in range(img.width())
                     if img.pixelColor(x, y) == GAZE])  # fmt: skip
    assert len(hits) > 20
    expect = view.screen_to_view(last.x, last.y)
    cx, cy = hits.mean(axis=0) + 0.5  # pixel centres
    assert abs(cx - expect.x()) <= 1.0 and abs(cy - expect.y()) <= 1.0
    lines = view.state_lines()
    assert "trial 1/3" in lines[1] and "phase image" in lines[2] and "connected" in lines[3]
    assert lines[6] == "last label fear"
    rate = float(lines[4].split()[1])
    assert 90 <= rate <= 150  # the simulator's 120 Hz
    grab = win.grab().toImage()  # the participant's screen has no gaze marker
    assert not any(grab.pixelColor(x, y) == GAZE
                   for y in range(0, grab.height(), 2) for x in range(0, grab.width(), 2))  # fmt: skip
    win.finish()


@pytest.mark.gui
def test_annotate_cli_order_and_experimenter_view(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    _qt()
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "gazelab.app.cli", "annotate", "--no-dialog", "--windowed",
           "--store", str(store), "--participant", "P09", "--images", "synthetic:2:1:64",
           "--tracker", "none", "--resolution", "800x600", "--order", "latin",
           "--experimenter-view", "--autopilot", "0.2"]  # fmt: skip
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "stimulus square 540 px instead of 1200 px" in out.stderr  # the 800x600 fit
    with SessionStore(store) as st:
        (rec,) = st.sessions()
        assert Settings.from_toml(rec.settings_toml).protocol.order == "latin"
        assert len(st.final_labels(rec.id)) == 2


# -- pre-flight in the set-up dialog ---------------------------------------------------------------
@pytest.mark.gui
def test_setup_dialog_preflight_names_a_corrupt_image_and_an_unreachable_tracker(
    qtbot, tmp_path, out_dir
) -> None:  # type: ignore[no-untyped-def]
    _qt()
    import socket

    from gazelab.app.setup_dialog import SetupDialog
    from gazelab.models.synthetic import synthetic_faces, write_folder

    write_folder(synthetic_faces(3, size=64, seed=2), tmp_path / "faces")
    bad = sorted((tmp_path / "faces").rglob("*.png"))[0]
    bad.write_bytes(bad.read_bytes()[:60])
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dlg = SetupDialog(SessionConfig(tmp_path / "s.sqlite", "P01"))
    qtbot.addWidget(dlg)
    dlg.images.setText(f"folder:{tmp_path / 'faces'}")
    dlg.tracker.setCurrentText(f"eyetribe:127.0.0.1:{port}")
    dlg.voice.setCurrentText("keys")
    dlg.show()
    result = dlg.run_preflight()
    dlg.grab().save(str(out_dir / "setup_preflight.png"))
    assert result is not None and len(result.problems) >= 2
    assert bad.name in dlg.errors.text() and str(port) in dlg.errors.text()
    assert "problem" in dlg.preflight_text.text() and not dlg.level.isVisible()

    dlg.images.setText("synthetic:2:1:64")  # fixed, with the simulator: the rate is measured
    dlg.tracker.setCurrentText("sim")
    result = dlg.run_preflight()
    assert result is not None and not any("tracker" in p for p in result.problems)
    assert "samples at" in dlg.preflight_text.text()


def test_the_experimenter_view_closes_with_the_participant_window(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Seen in a real X server: Esc closed the participant's window but the view stayed
    open, so `gazelab annotate --experimenter-view` never ended."""
    _qt()
    from PySide6.QtCore import Qt

    from gazelab.app.annotate import AnnotationWindow
    from gazelab.app.annotate_run import open_experimenter_view
    from gazelab.app.qt import application

    s = screen_settings(800, 600, kind="none")
    win = AnnotationWindow(SessionConfig(tmp_path / "s.sqlite", "P01", "synthetic:2:1:64", s),
                           skip_calibration=True, microphone=False)  # fmt: skip
    qtbot.addWidget(win)
    win.show()
    view = open_experimenter_view(win, application())
    qtbot.addWidget(view)
    qtbot.waitExposed(view)
    assert view.isVisible()
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=3000)
    assert not win.isVisible() and win.mode == "closed"
