"""Set-up mistakes a session must refuse before it starts: one line, exit 2, no store.

A Whisper model name that is not installed (or a typo) used to be found only when the voice
child loaded it, mid-session, and the session fell back to keys with exit 0; a machine
without a display made Qt abort the process natively.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gazelab.annotation.session import whisper_model_problem
from gazelab.app.qt import display_problem


def test_a_whisper_model_that_is_neither_known_nor_a_folder_is_named():
    problem = whisper_model_problem("tiny.en-typo")
    assert "tiny.en-typo" in problem and "\n" not in problem


def test_a_folder_holding_a_ctranslate2_model_is_accepted(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\0")
    problem = whisper_model_problem(str(tmp_path))
    assert problem == "" or "faster-whisper" in problem  # only the package may be missing


def test_display_problem_only_on_linux_without_a_display_or_platform():
    assert display_problem({}, "linux") != ""
    assert display_problem({"DISPLAY": ":0"}, "linux") == ""
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") == ""
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") == ""
    assert display_problem({}, "darwin") == ""
    assert display_problem({}, "win32") == ""


def _annotate(tmp_path: Path, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "gazelab.app.cli", "annotate", "--tracker", "sim",
           "--images", "synthetic:2:1", "--no-dialog", "--autopilot", "0.2",
           "--skip-calibration", "--participant", "P01",
           "--store", str(tmp_path / "s.sqlite"), *extra]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def test_annotate_refuses_an_unknown_whisper_model_with_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = _annotate(tmp_path, "--voice", "whisper:nosuch", env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "nosuch" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_annotate_without_a_display_says_so_in_one_line_with_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}  # fmt: skip
    done = _annotate(tmp_path, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no display" in lines[0], done.stderr
    assert not (tmp_path / "s.sqlite").exists()
