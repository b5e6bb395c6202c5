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
    a window ``width`` px wide: the picture gets at least half (until the picture is known:
    :func:`picture_split` then gives the side column what the picture cannot use)."""
    left = int(min(max(list_px, 0.15 * width), 0.22 * width))
    centre = max(width // 2, int(0.56 * width))
    return [left, centre, max(200, width - left - centre)]


def picture_width(picture_hw: tuple[int, ...], view_hw: tuple[float, float], margin_px: float,
                  slack_px: int = 4) -> int:  # fmt: skip
    """The width the picture column needs to show the whole picture as large as its height
    allows.

    Parameters
    ----------
    picture_hw : tuple of int
        The picture's (height, width, ...) in px, legend included (``render_view``).
    view_hw : tuple of float
        The (height, width) in px of the box that draws it (the plot less its margins).
    margin_px : float
        The column's width outside that box (both sides together), px.
    slack_px : int
        Added against rounding, px.

    Returns
    -------
    int
        The column's width in px: the picture at the box's full height, plus the margin.
    """
    h, w = picture_hw[:2]
    return int(math.ceil(view_hw[0] * w / max(1, h) + margin_px)) + slack_px


def picture_split(
    sizes: list[int], picture_px: int, most_px: int, min_side: int = 200
) -> list[int]:
    """The splitter's widths (image list, picture, side column) with the picture column at
    ``picture_px`` (what the picture uses), at most ``most_px``, and the side column (layers
    and tables) the rest of the two; the image list keeps its width.

    >>> picture_split([280, 952, 672], 880, 952)  # a surplus of 72 px goes to the side
    [280, 880, 744]
    >>> picture_split([280, 700, 370], 900, 756)  # a wider picture: up to most_px
    [280, 756, 314]
    """
    left, centre, side = sizes
    total = centre + side
    width = max(0, min(picture_px, most_px, total - min_side))
    return [left, width, total - width]


def rows_height(table: QtWidgets.QTableWidget, max_rows: int = 8) -> int:
    """The height in px that shows a table's header, its horizontal scroll bar and up to
    ``max_rows`` of its rows (at least one), so that a short table takes no more room than
    its rows and a long one scrolls."""
    n = max(1, min(table.rowCount(), max_rows))
    row = table.verticalHeader().defaultSectionSize()
    rows = sum(table.rowHeight(r) for r in range(min(n, table.rowCount()))) + row * (
        n - min(n, table.rowCount())
    )
    header = table.horizontalHeader().sizeHint().height()
    bar = table.horizontalScrollBar().sizeHint().height()
    return rows + header + bar + 2 * table.frameWidth() + 2


__all__ = [
    "QUALITY_COLUMNS",
    "cell",
    "fill",
    "picture_split",
    "picture_width",
    "rows_height",
    "scrolled",
    "split_sizes",
    "table",
    "window_size",
]
