"""The CLI and the core packages start without TensorFlow or Qt (docs/architecture.md#rules-of-the-house)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "innvestigate", "PySide6", "pyqtgraph")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_core_packages_import_neither_tensorflow_nor_qt():
    loaded = _loaded_after(
        "import gazelab.gaze, gazelab.annotation, gazelab.gaze.heatmaps, gazelab.gaze.fixations,"
        " gazelab.gaze.trackers.eyetribe, gazelab.gaze.trackers.simulator,"
        " gazelab.annotation.store, gazelab.annotation.bids, gazelab.models.datasets.library,"
        " gazelab.models.synthetic, gazelab.settings"
    )
    assert loaded == []


def test_cli_help_imports_neither_tensorflow_nor_qt():
    loaded = _loaded_after(
        "import contextlib, io\nfrom gazelab.app.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert loaded == []


def test_console_script_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "gazelab.app.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for command in ("demo", "settings", "synthetic", "export", "simulate-tracker", "heatmaps"):
        assert command in out
