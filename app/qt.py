"""The one QApplication of the process.

Created on first use and kept for the life of the process: a QApplication that
is garbage-collected and created again breaks signal delivery from worker
threads (and pytest-qt reuses whichever instance exists).
"""

from __future__ import annotations

import os
import sys

from PySide6.QtWidgets import QApplication

from gazelab.errors import GazelabError


class NoDisplayError(GazelabError, RuntimeError):
    """No screen to open a window on (Qt would abort the process natively)."""


def display_problem(env: dict[str, str] | None = None, platform: str = sys.platform) -> str:
    """Why Qt could not open a window here ("" = it can): on Linux without an X11 or
    Wayland display and no ``QT_QPA_PLATFORM``, Qt prints a plug-in error and aborts."""
    env = dict(os.environ) if env is None else env
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return ""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return ""
    return (
        "no display: run gazelab on the lab computer's desktop (X11 or Wayland), or set"
        " QT_QPA_PLATFORM=offscreen for a headless run"
    )


_APP: QApplication | None = None


def application() -> QApplication:
    """The existing QApplication, or a new one that lives until the process ends."""
    global _APP
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    problem = display_problem()
    if problem:
        raise NoDisplayError(problem)
    _APP = QApplication(sys.argv[:1])
    return _APP
