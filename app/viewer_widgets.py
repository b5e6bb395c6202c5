"""Widgets and sizes of the overlay viewer's window: read-only tables and their cells,
scroll areas, and the window's size and column split on a given screen."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6 import QtWidgets

QUALITY_COLUMNS = ["annotator", "session", "trials", "trials_rated", "loss_pct", "rms_s2s_deg",
                   "std_deg", "validations", "passed", "accuracy_deg"]  # fmt: skip


def table(columns: list[str]) -> QtWidgets.QTableWidget:
    t = QtWidgets.QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setWordWrap(False)
    t.horizontalHeader().setStretchLastSection(True)
    t.verticalHeader().setVisible(False)
    return t


def scrolled(widget: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """``widget`` in a scroll area: on a small screen it scrolls instead of making the
    window taller than the screen."""
    area = QtWidgets.QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


def fill(table: QtWidgets.QTableWidget, columns: list[str], rows: list[dict[str, Any]]) -> None:
    table.setColumnCount(len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            table.setItem(r, c, QtWidgets.QTableWidgetItem(cell(row.get(col), col)))
    table.resizeColumnsToContents()


def cell(v: Any, column: str = "") -> str:
    """A table cell: durations (``*_ms``) in whole milliseconds, other numbers to 3
    decimals, missing values as a dash."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "–"
        return f"{float(v):.0f}" if column.endswith("_ms") else f"{float(v):.3f}"
    return str(v)


def window_size(available: tuple[int, int]) -> tuple[int, int]:
    """The viewer's size on a screen whose free area is ``available`` px: all of it but a
    margin for the frame (it used to open at 1400x900, cut off on 1366x768)."""
    w, h = available
    return max(640, w - 16), max(480, h - 40)


def split_sizes(width: int, list_px: int = 280) -> list[int]:
    """Widths of the image list, the picture and the side column (layers over tables) in
    a window ``width`` px wide: the picture gets at least half."""
    left = int(min(max(list_px, 0.15 * width), 0.22 * width))
    centre = max(width // 2, int(0.56 * width))
    return [left, centre, max(200, width - left - centre)]


__all__ = ["QUALITY_COLUMNS", "cell", "fill", "scrolled", "split_sizes", "table", "window_size"]
