"""What the annotation window does in the milliseconds before a timed phase onset: the
wait ends at the deadline, nothing that can wait runs, the garbage collector is off until
the onset's paint (pytest-qt, offscreen; no timed assertions)."""

from __future__ import annotations

import dataclasses
import gc
import time
from pathlib import Path

import pytest

from gazelab.annotation.protocol import Phase
from gazelab.annotation.session import SessionConfig
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.settings import Settings

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from gazelab.app.annotate import AnnotationWindow  # noqa: E402


def make_window(qtbot, tmp_path: Path, clock=time.monotonic) -> AnnotationWindow:  # type: ignore[no-untyped-def]
    s = Settings()
    s = dataclasses.replace(
        s,
        display=DisplayGeometry.from_diagonal(27.0, (640, 360), 700.0),
        stimulus=dataclasses.replace(s.stimulus, square_px=300),
        tracker=dataclasses.replace(s.tracker, kind="none"),
    )
    cfg = SessionConfig(tmp_path / "t.sqlite", "P01", "synthetic:3:3", s)
    win = AnnotationWindow(cfg, microphone=False, skip_calibration=True, clock=clock)
    qtbot.addWidget(win)
    win.resize(640, 360)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_the_wait_returns_at_the_deadline_not_before(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    win = make_window(qtbot, tmp_path)
    for ahead in (0.0, 0.0002, 0.001, 0.0019):
        deadline = time.monotonic() + ahead
        win._wait_until(deadline)
        assert time.monotonic() >= deadline, ahead
    win.finish()


def test_a_stopped_clock_cannot_hold_the_wait(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A test's clock that stands still: the wait gives up after 2 x SPIN_S of real time."""
    win = make_window(qtbot, tmp_path, clock=lambda: 100.0)
    t0 = time.perf_counter()
    win._wait_until(100.001)
    assert time.perf_counter() - t0 >= 2 * win.SPIN_S
    win.finish()


def test_poll_and_prefetch_wait_while_an_onset_is_near(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    win = make_window(qtbot, tmp_path)
    win.begin()
    assert win.protocol.phase is Phase.BLANK1 and win._phase_timer.isActive()
    polls: list[int] = []
    win.ctl.poll = lambda: polls.append(1) or 0  # type: ignore[method-assign]
    deadline = win.protocol.next_deadline()
    assert deadline is not None
    # far from the onset: the poll runs; within QUIET_S of it: not
    win.clock = lambda: deadline - 0.05  # type: ignore[method-assign]
    win._poll()
    assert polls == [1]
    win.clock = lambda: deadline - win.QUIET_S / 2  # type: ignore[method-assign]
    win._poll()
    assert polls == [1]
    assert win._onset_within(win.QUIET_S) and not win._onset_within(0.0)
    # the image (shown after blank2) is not decoded this close to the cross's onset
    win._image_cache.clear()
    win._prepare_image()
    assert not win._image_cache
    win.clock = lambda: deadline - 0.09  # type: ignore[method-assign]
    win._prepare_image()
    assert len(win._image_cache) == 1
    # nothing waits for a deadline once its timer is stopped (a pause): the poll runs
    win._phase_timer.stop()
    win.clock = lambda: deadline - win.QUIET_S / 2  # type: ignore[method-assign]
    win._poll()
    assert polls == [1, 1]
    win.finish()


def test_no_collection_between_the_timer_and_the_paint(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    win = make_window(qtbot, tmp_path)
    win.begin()
    seen: list[bool] = []
    paint = win.paintEvent
    win.paintEvent = lambda e: (seen.append(gc.isenabled()), paint(e))  # type: ignore[method-assign]
    assert gc.isenabled()
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.CROSS, timeout=5000)
    win.paintEvent = paint  # type: ignore[method-assign]
    assert seen and seen[-1] is False  # the cross's onset paint ran with gc off
    assert gc.isenabled()  # and it is back on after
    flips = [e for e in win.store.events(win.session.id) if e["kind"] == "flip"]
    assert [f["payload"]["phase"] for f in flips][:2] == ["blank1", "cross"]
    win.finish()
