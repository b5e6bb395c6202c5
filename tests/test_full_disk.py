"""A really full disk (a small tmpfs holding the store) anywhere in a session: during the
calibration, the validation, a trial, a break and on the end screen the session pauses
with a message, holds what it recorded in memory, and goes on once space returns, with
nothing lost.

Needs root (mount); skipped otherwise. The fake-connection tests in
tests/test_session_hardening.py cover the same paths on any machine.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.protocol import Phase
from gazelab.annotation.session import SessionConfig
from gazelab.annotation.store import SessionStore
from gazelab.tests.test_annotate_gui import small_settings

pytestmark = pytest.mark.gui


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    """Fill the file system to the last byte (unbuffered writes); returns the filler file."""
    filler = disk / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


# slow tier: quick: test_session_hardening's disk-full pause and resume
@pytest.mark.slow
def test_a_full_disk_in_validation_trials_and_at_the_end_pauses_and_loses_nothing(
    qtbot, small_disk: Path
) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    from gazelab.app.annotate import AnnotationWindow

    s = small_settings()
    s = dataclasses.replace(
        s,
        protocol=dataclasses.replace(
            s.protocol, blank1_ms=50.0, cross_ms=50.0, blank2_ms=50.0, break_every_n_trials=2
        ),  # fmt: skip
        quality=dataclasses.replace(
            s.quality,
            validation_mean_accuracy_deg=5.0,
            validation_max_point_accuracy_deg=10.0,
            drift_check_max_deg=0.0,  # the break is only its screen here (a failed drift check
        ),  # recalibrates, which takes longer than the break's pause)  # fmt: skip
    )
    store_path = small_disk / "study.sqlite"
    cfg = SessionConfig(store_path, "P01", "synthetic:3:3", s)
    win = AnnotationWindow(cfg, calibration_dwell_s=0.05, validation_dwell_s=1.0,
                           microphone=False)  # fmt: skip
    qtbot.addWidget(win)
    win.resize(800, 600)
    win.show()
    # 0. the disk is full as the calibration starts: its result waits in memory
    filler = fill(small_disk)
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "calibration_result", timeout=15_000)
    qtbot.waitUntil(lambda: win.ctl.store_fault is not None, timeout=5000)
    filler.unlink()
    qtbot.waitUntil(lambda: win.ctl.store_fault is None, timeout=5000)

    # 1. the disk fills during the validation: no exception, paused, a message
    filler = fill(small_disk)
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "validation_result", timeout=20_000)
    qtbot.waitUntil(lambda: win.ctl.store_fault is not None, timeout=5000)
    assert "disk" in win.ctl.store_message.lower()
    assert win.ctl.validation is not None and not win.ctl.may_start()  # not measured
    qtbot.wait(1500)  # retried every second while full
    assert win.ctl.store_fault is not None
    filler.unlink()
    qtbot.waitUntil(lambda: win.ctl.store_fault is None, timeout=5000)
    # measure the (unmeasured) targets again, as an operator would: F while a target fails
    # (on a loaded machine a 1 s dwell can miss a target's samples once)
    for _ in range(3):
        before = win.ctl.validation
        qtbot.keyClick(win, Qt.Key.Key_F)
        qtbot.waitUntil(lambda: win.ctl.validation is not before  # noqa: B023
                        and win.mode == "validation_result", timeout=20_000)  # fmt: skip
        if win.ctl.may_start():
            break
    v = win.ctl.validation
    assert win.ctl.may_start(), f"validation still fails after 3 redos: {v and v.problems}"
    qtbot.keyClick(win, Qt.Key.Key_Space)

    # 2. the disk fills during a trial's image: paused, the trial starts again after
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
    filler = fill(small_disk)
    qtbot.keyClick(win, Qt.Key.Key_1)
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.ctl.store_fault is not None, timeout=5000)
    filler.unlink()
    qtbot.waitUntil(lambda: win.ctl.store_fault is None, timeout=5000)
    breaks = 0
    for _ in range(4):
        qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE or win.mode in ("done", "break"),
                        timeout=5000)  # fmt: skip
        if win.mode == "done":
            break
        if win.mode == "break":  # 2b. full during the break: Space goes on once space is back
            breaks += 1
            filler = fill(small_disk)
            qtbot.keyClick(win, Qt.Key.Key_Space)
            # (the few records of leaving a break may still fit in SQLite's write-ahead log:
            # then the session pauses only once the trial's gaze needs new pages)
            qtbot.waitUntil(lambda: win.ctl.store_fault is not None
                            or win.protocol.phase is Phase.IMAGE, timeout=10_000)  # fmt: skip
            qtbot.wait(500)
            filler.unlink()
            qtbot.waitUntil(lambda: win.ctl.store_fault is None, timeout=5000)
            qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=15_000)
        if win.protocol.current_label is None:
            qtbot.keyClick(win, Qt.Key.Key_2)
        qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "done", timeout=5000)
    assert breaks == 1

    # 3. the disk fills on the end screen: closing writes what it can, and says so
    sid = win.session.id
    filler = fill(small_disk)
    qtbot.wait(300)
    filler.unlink()
    win.finish()

    with SessionStore(store_path) as store:
        labels = store.final_labels(sid)
        assert sorted(labels) == [0, 1, 2]
        kinds = [e["kind"] for e in store.events(sid)]
        assert kinds.count("store_fault") >= 3  # calibration, validation, trial (+ the break)
        val = store.validation_qualities(sid)
        assert [v["passed"] for v in val][-1] is True
        t = np.sort(store.samples(sid)["time_ms"])
        assert t.size > 0 and np.diff(t).max() < 100.0  # no gap in what was recorded
