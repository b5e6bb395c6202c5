"""The command line's start-up and its one-line messages: ``--help`` lists every command's
choices without importing the heavy libraries (how long it takes is shown by
benchmarks/bench_startup.py, not asserted here), and gazelab's own warnings print as one
line like the errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def test_a_skipped_dataset_row_is_one_warning_line(tmp_path: Path) -> None:
    faces = tmp_path / "faces"
    (faces / "happy").mkdir(parents=True)
    (faces / "sad").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(faces / "happy" / "1.png")
    (faces / "sad" / "2.png").symlink_to("/dev/zero")  # not a regular file: skipped
    done = subprocess.run(
        [sys.executable, "-m", "gazelab.app.cli", "heatmaps", "--store",
         str(tmp_path / "none.sqlite"), "--session", "1", "--images", str(faces),
         "--dataset", "folder", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = done.stderr.splitlines()
    assert done.returncode == 2
    assert lines[0] == (
        f"gazelab heatmaps: warning: folder: skipped 1 row(s)/file(s); first: "
        f"{faces / 'sad' / '2.png'}: outside {faces} or not a regular file"
    )
    assert lines[1].startswith("gazelab heatmaps: error: no store at")
    assert len(lines) == 2  # no "base.py:304: DatasetWarning:", no source line


def test_other_warnings_keep_pythons_form(capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    from gazelab.app.cli import one_line_warnings
    from gazelab.errors import GazelabWarning

    passed: list[tuple[str, type[Warning], str, int]] = []
    saved = warnings.showwarning
    try:
        warnings.showwarning = lambda m, c, f, n, *rest: passed.append((str(m), c, f, n))
        one_line_warnings("gazelab x")
        one_line_warnings("gazelab x")  # main() run twice in one process: still one line
        warnings.showwarning("kept\n as is", RuntimeWarning, "m.py", 7)
        warnings.showwarning("two\n  lines", GazelabWarning, "m.py", 8)
    finally:
        warnings.showwarning = saved
    assert passed == [("kept\n as is", RuntimeWarning, "m.py", 7)]  # Python's own way
    assert capsys.readouterr().err == "gazelab x: warning: two lines\n"
