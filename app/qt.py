"""The one QApplication of the process.

Created on first use and kept for the life of the process: a QApplication that
is garbage-collected and created again breaks signal delivery from worker
threads (and pytest-qt reuses whichever instance exists).
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

_APP: QApplication | None = None


def application() -> QApplication:
    """The existing QApplication, or a new one that lives until the process ends."""
    global _APP
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    _APP = QApplication(sys.argv[:1])
    return _APP
