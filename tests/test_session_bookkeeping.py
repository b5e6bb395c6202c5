"""Bookkeeping a lab can trust: practice is not data, resume says where it is, Esc asks,
a tracker that reports no calibration error says so."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from gazelab.annotation.protocol import Phase
from gazelab.annotation.session import SessionConfig
from gazelab.annotation.store import SessionStore
from gazelab.app.annotate_screens import calibration_headline, instructions
from gazelab.tests.test_annotate_gui import small_settings

pytestmark = pytest.mark.gui


def practice_settings(n: int = 2):  # type: ignore[no-untyped-def]
    s = small_settings()
    return dataclasses.replace(
        s,
        protocol=dataclasses.replace(
            s.protocol, practice_trials=n, blank1_ms=20.0, cross_ms=20.0, blank2_ms=20.0
        ),
    )


def window(qtbot, store: Path, resume: int | None = None):  # type: ignore[no-untyped-def]
    from gazelab.app.annotate import AnnotationWindow

    cfg = SessionConfig(store, "P01", "synthetic:4:3", practice_settings(), resume=resume)
    win = AnnotationWindow(cfg, skip_calibration=True, microphone=False)
    qtbot.addWidget(win)
    win.resize(800, 600)
    win.show()
    qtbot.waitExposed(win)
    return win


def label_and_advance(qtbot, win) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
    qtbot.keyClick(win, Qt.Key.Key_1)
    qtbot.keyClick(win, Qt.Key.Key_Space)


def test_practice_leaves_nothing_in_the_store_and_resume_skips_it(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    store_path = tmp_path / "study.sqlite"
    win = window(qtbot, store_path)
    assert any("practice" in line for line in instructions(win))
    qtbot.keyClick(win, Qt.Key.Key_Space)  # start: practice first
    assert win.ctl.practising
    for _ in range(2):
        label_and_advance(qtbot, win)
    qtbot.waitUntil(lambda: win.mode == "practice_done", timeout=5000)
    qtbot.keyClick(win, Qt.Key.Key_Space)
    for _ in range(2):  # two of the study's four images
        label_and_advance(qtbot, win)
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
    sid = win.session.id
    # one Esc asks; a second one ends the session
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert win.mode == "trials" and "Esc again" in win.warning
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert win.mode == "closed"

    with SessionStore(store_path) as store:
        events = store.events(sid)
        kinds = [e["kind"] for e in events]
        done_at = kinds.index("practice_done")
        # nothing of the practice trials: no phase, key or label with a trial number
        assert all(e["trial_index"] is None for e in events[:done_at])
        assert [lab.trial_index for lab in store.labels(sid)] == [0, 1]
        assert sum(k == "image" for k in kinds) == 3  # trials 0, 1 and the one cut short

    win2 = window(qtbot, store_path, resume=sid)
    assert not any("practice" in line for line in instructions(win2))
    assert "continues with image 3 of 4" in "\n".join(instructions(win2))
    qtbot.keyClick(win2, Qt.Key.Key_Space)  # straight to the trials
    assert not win2.ctl.practising and win2.mode == "trials"
    label_and_advance(qtbot, win2)
    win2.finish()
    with SessionStore(store_path) as store:
        assert "practice_done" not in [e["kind"] for e in store.events(sid)][done_at + 1 :]
        assert [lab.trial_index for lab in store.labels(sid)] == [0, 1, 2]


def test_any_other_key_after_one_esc_goes_on(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    win = window(qtbot, tmp_path / "s.sqlite")
    qtbot.keyClick(win, Qt.Key.Key_Space)
    label_and_advance(qtbot, win)  # a practice trial
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert "Esc again" in win.warning
    qtbot.keyClick(win, Qt.Key.Key_1)
    assert win.warning == "" and win.mode == "trials"
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert win.mode == "trials"  # asked again, not closed
    win._esc_until = win.clock() - 0.1  # the confirmation time has passed: asks again
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert win.mode == "trials"
    win.finish()


def test_a_tracker_without_its_own_calibration_error_says_so() -> None:
    assert calibration_headline(True, 0.41) == (
        "Calibration done — the tracker reports a mean error of 0.41°"
    )
    line = calibration_headline(True, math.nan)
    assert "nan" not in line and "no error of its own" in line


def test_the_demo_flags_a_session_whose_validation_failed(tmp_path: Path) -> None:
    from gazelab.app.demo import data_quality
    from gazelab.gaze.quality import PointQuality, validation_quality
    from gazelab.settings import Settings

    points = [PointQuality((100.0, 100.0), (10.0, 0.0), 0.4, 0.02, 0.03, 60, 0.0, 60),
              PointQuality((900.0, 500.0), (80.0, 0.0), 2.98, 0.02, 0.03, 60, 0.0, 60)]  # fmt: skip
    with SessionStore(tmp_path / "s.sqlite", create=True) as store:
        rec = store.create_session("P01", settings_toml=Settings().to_toml(), seed=0,
                                   image_source="synthetic:1:0", stimulus_order=["a"],
                                   start_local_s=0.0)  # fmt: skip
        store.add_validation_quality(rec.id, validation_quality(points), kind="calibration-validation",
                                     local_s=1.0, problems=["worst target 2.98° > 1.50°"],
                                     overridden=True)  # fmt: skip
        q = data_quality(store, rec.id)
    assert q["validation_passed"] is False
    assert q["validation_problems"] == ["worst target 2.98° > 1.50°"]
    assert str(q["text"]).startswith("VALIDATION FAILED (worst target 2.98° > 1.50°)")
