"""The command line's start-up and its one-line messages.

``--help`` (of any command) is answered from the help cache once the command's help has
been built: no NumPy, SciPy, Numba, TensorFlow or Qt is imported then, and a change of what
the text depends on is a miss (how long it takes is shown by benchmarks/bench_startup.py,
never asserted here). gazelab's own warnings print as one line like the errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HEAVY = ["numpy", "scipy", "numba", "tensorflow", "PySide6", "PIL"]

# main() in a fresh interpreter, as the gazelab script runs it; reports on stderr's last
# line its exit status and which heavy libraries it imported
PROBE = f"""
import json, sys
from gazelab.app.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def _gazelab(cache: Path, *argv: str, **env: str) -> tuple[str, dict[str, object]]:
    """(stdout, {code, heavy}) of ``gazelab ARGV`` with its help cache in ``cache``."""
    environ = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": "100", **env}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=environ,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("command", [[], ["masks"], ["annotate"], ["compare"], ["demo"]])
def test_help_built_once_is_then_read_without_heavy_imports(
    tmp_path: Path, command: list[str]
) -> None:
    built, first = _gazelab(tmp_path, *command, "--help")
    assert first["code"] == 0 and len(list((tmp_path / "gazelab" / "help").iterdir())) == 1
    cached, second = _gazelab(tmp_path, *command, "--help")
    assert second == {"code": 0, "heavy": []}
    assert cached == built and built.startswith(f"usage: gazelab {' '.join(command)}".strip())


def test_the_cached_help_lists_the_registered_choices(tmp_path: Path) -> None:
    from gazelab.analysis.saliency import ANALYZERS
    from gazelab.models.masks import ALGORITHMS

    _gazelab(tmp_path, "masks", "--help")
    masks, report = _gazelab(tmp_path, "masks", "--help")
    assert report["heavy"] == []
    for name in [*ALGORITHMS, *ANALYZERS]:
        assert name in masks


def test_a_changed_key_is_a_miss_and_a_failed_help_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gazelab.app.help_cache import cache_folder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real, _ = _gazelab(tmp_path, "sessions", "--help")
    (stored,) = list(cache_folder().glob("sessions*"))
    key, _, text = stored.read_text().partition("\n")
    assert text == real
    stored.write_text(f"{key}\nplanted\n")
    assert _gazelab(tmp_path, "sessions", "--help")[0] == "planted\n"  # the key matched
    # another value of a variable help may read: the key differs, the parser answers
    again, report = _gazelab(tmp_path, "sessions", "--help", GAZELAB_ANYTHING="1")
    assert again == real and report["heavy"]
    assert _gazelab(tmp_path, "sessions", "--help")[0] == real  # without it: built again
    # an unknown command fails (exit 2) and leaves nothing in the cache
    out, report = _gazelab(tmp_path, "nosuch", "--help")
    assert report["code"] == 2 and out == ""
    assert not list(cache_folder().glob("nosuch*"))


def test_a_program_that_has_read_a_registry_gets_no_cached_help(tmp_path: Path) -> None:
    """Its own registrations (register_layout(...) before main) are not in the key."""
    code = "import gazelab.plugins\nfrom gazelab.app.cli import main\nmain(['sessions', '--help'])"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("usage: gazelab sessions")
    assert not (tmp_path / "gazelab").exists()


def test_only_a_help_request_of_plain_words_is_answered_from_the_cache() -> None:
    from gazelab.app.help_cache import request

    assert request(["--help"]) == ("--help",)
    assert request(["voice", "install", "-h"]) == ("voice", "install", "-h")
    assert request(["--version"]) == ("--version",)
    assert request([]) is None
    assert request(["masks", "--out", "x", "--help"]) is None
    assert request(["sessions", "--store", "s.sqlite"]) is None


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
