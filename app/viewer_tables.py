"""The overlay viewer's tables: this image's metrics, layout baselines and AOI statistics,
and the summary tables over all images (per annotator, per class, AOIs, data quality per
session) with their CSV export.

:class:`ViewerTables` is a part of :class:`~gazelab.app.viewer.ViewerWindow` (a mixin): it
builds the tabs and fills them from what the worker computes; the window owns the
project, the picture and the image shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from PySide6 import QtWidgets

from gazelab.analysis.aoi import aoi_means
from gazelab.analysis.compare import METRICS, Comparison
from gazelab.analysis.render import Layers
from gazelab.app.viewer_project import (
    BASELINE_COLUMNS,
    BASELINE_TIPS,
    ImageEntry,
    ImageView,
    baseline_note,
    baseline_table_rows,
)
from gazelab.app.viewer_widgets import QUALITY_COLUMNS, rows_height
from gazelab.app.viewer_widgets import fill as _fill
from gazelab.app.viewer_widgets import scrolled as _scrolled
from gazelab.app.viewer_widgets import table as _table
from gazelab.app.viewer_worker import ProjectWorker

AOI_TABLE_COLUMNS = ["aoi", "annotator", "dwell_ms", "fixations", "ttff_ms", "visits",
                     "revisits", "dwell_share", "relevance_share"]  # fmt: skip


class ViewerTables:
    """The tables of the viewer window (see the module's docstring)."""

    # the window's, read here
    status_label: QtWidgets.QLabel
    project_dir: Path
    comparison: Comparison | None
    baselines: dict[str, list[dict[str, Any]] | str]
    set_sentence: str
    _baselines_asked: set[str]
    summary: tuple[dict[str, Any], list[dict[str, Any]]] | None
    _worker: ProjectWorker | None

    def current_entry(self) -> ImageEntry | None:
        raise NotImplementedError  # the window's

    def current_view(self) -> ImageView | None:
        raise NotImplementedError  # the window's

    def _status(self) -> None:
        raise NotImplementedError  # the window's

    def _layers_changed(self, *_: Any) -> None:
        raise NotImplementedError  # the window's

    def _attempt(self, what: str, path: str | Path, action: Callable[[], object]) -> bool:
        raise NotImplementedError  # the window's

    def _build_tables(self) -> QtWidgets.QTabWidget:
        """The tabs: metrics, baselines and AOIs of this image, the summary tables."""
        self.metrics = _table(["annotator", "versus", *METRICS])
        self.aoi_table = _table(AOI_TABLE_COLUMNS)
        self.baseline_table = _table(BASELINE_COLUMNS)
        for c, col in enumerate(BASELINE_COLUMNS):
            self.baseline_table.horizontalHeaderItem(c).setToolTip(BASELINE_TIPS[col])
        self.baseline_metric = QtWidgets.QComboBox()
        self.baseline_metric.addItems(list(METRICS))
        self.baseline_metric.setToolTip("the metric the baselines table shows")
        self.baseline_metric.currentTextChanged.connect(self._layers_changed)
        self.baseline_note = QtWidgets.QLabel("")
        self.baseline_note.setWordWrap(True)
        base_tab = QtWidgets.QWidget()
        bl = QtWidgets.QVBoxLayout(base_tab)
        bl.setContentsMargins(2, 2, 2, 2)
        pick = QtWidgets.QHBoxLayout()
        pick.addWidget(QtWidgets.QLabel("metric"))
        pick.addWidget(self.baseline_metric)
        pick.addStretch(1)
        bl.addLayout(pick)
        bl.addWidget(self.baseline_table, 1)
        bl.addWidget(self.baseline_note)
        self.by_annotator = _table(["annotator"])
        self.by_class = _table(["class"])
        self.aoi_summary = _table(["aoi"])
        self.quality_table = _table(QUALITY_COLUMNS)
        self.quality: list[dict[str, Any]] = []
        # short words: the row fits a side column 400 px wide (the tables scroll sideways
        # themselves; the tab does not)
        self.summary_button = QtWidgets.QPushButton("Compute summary")
        self.summary_button.setToolTip("compute the summary tables over all images")
        self.summary_button.clicked.connect(self.compute_summary)
        self.tables_button = QtWidgets.QPushButton("Export CSV…")
        self.tables_button.setToolTip("write the tables below as CSV files into a folder")
        self.tables_button.clicked.connect(self._export_tables_dialog)
        self.tables_button.setEnabled(False)
        summary = QtWidgets.QWidget()
        sl = QtWidgets.QVBoxLayout(summary)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.summary_button)
        row.addWidget(self.tables_button)
        row.addStretch(1)
        sl.addLayout(row)
        for title, t in (("per annotator (mean ± sd over images)", self.by_annotator),
                         ("per class", self.by_class), ("areas of interest", self.aoi_summary),
                         ("data quality per session", self.quality_table)):  # fmt: skip
            sl.addWidget(QtWidgets.QLabel(f"<b>{title}</b>"))
            sl.addWidget(t)  # as tall as its rows (up to 8): the tab scrolls, no table is squashed
        sl.addStretch(1)
        self._fit_summary_tables()
        tabs = self.tabs = QtWidgets.QTabWidget()
        # short titles, so that the four tabs fit a side column 450 px wide (1366x768)
        for page, title, tip in ((self.metrics, "metrics", "this image's metrics"),
                                 (base_tab, "baselines", "this image's layout baselines"),
                                 (self.aoi_table, "AOIs", "this image's areas of interest"),
                                 (_scrolled(summary), "summary", "tables over all images")):  # fmt: skip
            tabs.setTabToolTip(tabs.addTab(page, title), tip)
        self.baseline_tab = base_tab
        self.summary_tab = tabs.widget(3)
        self.tabs.currentChanged.connect(lambda _: self._want_baselines())
        return tabs

    def _fill_image_tables(self, view: ImageView, layers: Layers) -> None:
        """The metrics, baselines and AOI tabs for the image shown (the AOI rows of the
        annotators whose layers are shown)."""
        im = view.analysis
        _fill(self.metrics, ["annotator", "reference", *METRICS], im.rows)
        self.metrics.setHorizontalHeaderLabels(["annotator", "versus", *METRICS])
        self._show_baselines(im.image_id)
        self._want_baselines()
        shown = [r for r in view.aoi_rows if layers.humans.get(r["annotator"], True)]
        _fill(self.aoi_table, AOI_TABLE_COLUMNS, shown)

    def _clear_tables(self) -> None:
        self.metrics.setRowCount(0)
        self.aoi_table.setRowCount(0)
        self.baseline_table.setRowCount(0)
        self.baseline_note.setText("")

    def _on_quality(self, rows: list[dict[str, Any]]) -> None:
        self.quality = rows
        _fill(self.quality_table, QUALITY_COLUMNS, rows)
        self._fit_summary_tables()
        self.tables_button.setEnabled(True)

    def _on_baselines(self, image_id: str, rows: list[dict[str, Any]] | str) -> None:
        self.baselines[image_id] = rows
        self._baselines_asked.discard(image_id)
        cur = self.current_entry()
        if cur is not None and cur.image_id == image_id:
            self._show_baselines(image_id)
        self._status()

    def _want_baselines(self) -> None:
        """Ask the worker for the shown image's baselines while their tab is in front (they
        read every image's maps once, so they wait until asked for)."""
        view = self.current_view()
        if view is None or self.tabs.currentWidget() is not self.baseline_tab:
            return
        iid = view.analysis.image_id
        if iid not in self.baselines and iid not in self._baselines_asked and self._worker:
            self._baselines_asked.add(iid)
            self._worker.request_baselines(iid)
            self._show_baselines(iid)

    def _show_baselines(self, image_id: str) -> None:
        """The baselines tab for the image shown, for the metric picked: a row per
        (annotator, versus, baseline), as computed in the worker."""
        rows = self.baselines.get(image_id)
        if rows is None:
            self.baseline_table.setRowCount(0)
            self.baseline_note.setText(
                "computing the layout baselines (the first image reads every image's maps once) …"
                if self._worker is not None
                else "layout baselines: open a project (gazelab view --store) to compute them")  # fmt: skip
            return
        if isinstance(rows, str):
            self.baseline_table.setRowCount(0)
            self.baseline_note.setText(f"no layout baselines: {rows}")
            return
        self.baseline_table.setUpdatesEnabled(False)
        metric = self.baseline_metric.currentText()
        _fill(self.baseline_table, BASELINE_COLUMNS, baseline_table_rows(rows, metric))
        for c, col in enumerate(BASELINE_COLUMNS):
            self.baseline_table.horizontalHeaderItem(c).setToolTip(BASELINE_TIPS[col])
        self.baseline_table.setUpdatesEnabled(True)
        self.baseline_note.setText(baseline_note(rows, self.set_sentence, metric))

    # -- summary tables ---------------------------------------------------------------------
    def compute_summary(self) -> None:
        """Compute the summary tables over every image (in the worker)."""
        if self.comparison is not None:
            self._on_summary((self.comparison, []))
            return
        if self._worker is not None:
            self.summary_button.setEnabled(False)
            self._worker.request_summary()

    def _on_summary(self, payload: tuple[Comparison, list[dict[str, Any]]]) -> None:
        from gazelab.analysis.compare import summaries

        comp, aoi_rows = payload
        summ = summaries(comp)
        self.summary = (summ, aoi_rows)
        self.summary_button.setEnabled(True)
        self.tables_button.setEnabled(True)
        for table, key, col in ((self.by_annotator, "by_annotator", "annotator"),
                                (self.by_class, "by_class", "class")):  # fmt: skip
            rows = [self._mean_sd(r, col) for r in summ[key]]
            _fill(table, [col, "versus", "n", *METRICS], rows)
        agg = aoi_means(aoi_rows)
        _fill(self.aoi_summary, ["aoi", "annotator", "images", "dwell_ms", "fixations",
                                 "ttff_ms", "revisits", "relevance_share"], agg)  # fmt: skip
        self._fit_summary_tables()
        self.tabs.setCurrentWidget(self.summary_tab)
        self._status()

    def summary_tables(self) -> list[QtWidgets.QTableWidget]:
        """The tables of the summary tab, top to bottom."""
        return [self.by_annotator, self.by_class, self.aoi_summary, self.quality_table]

    def _fit_summary_tables(self) -> None:
        """Each summary table as tall as its rows, up to 8 (it used to share the tab's height
        with the other three: two rows of each showed, whatever their number)."""
        for t in self.summary_tables():
            t.setFixedHeight(rows_height(t, 8))

    @staticmethod
    def _mean_sd(row: dict[str, Any], col: str) -> dict[str, Any]:
        out = {col: row[col], "versus": row["versus"], "n": row["n"]}
        for m in METRICS:
            mean, sd = row[f"{m}_mean"], row[f"{m}_sd"]
            if not math.isfinite(mean):
                out[m] = "–"
            else:
                out[m] = f"{mean:.3f} ± {sd:.3f}" if math.isfinite(sd) else f"{mean:.3f}"
        return out

    def export_tables(self, folder: str | Path) -> list[Path]:
        """Write the tables as CSV: quality.csv (data quality per session) and, once the
        summary is computed, by_annotator.csv, by_class.csv and aoi.csv."""
        import pandas as pd

        from gazelab.fileio import atomic_write

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "quality.csv", pd.DataFrame(self.quality, columns=QUALITY_COLUMNS)
                     .to_csv(index=False))  # fmt: skip
        written = [out / "quality.csv"]
        if self.summary is None:
            self.status_label.setText(f"data quality written to {out} (no summary computed)")
            return written
        summ, aoi_rows = self.summary
        for key in ("by_annotator", "by_class"):
            atomic_write(out / f"{key}.csv", pd.DataFrame(summ[key]).to_csv(index=False))
            written.append(out / f"{key}.csv")
        from gazelab.analysis.aoi import AOI_COLUMNS

        atomic_write(out / "aoi.csv", pd.DataFrame(aoi_rows, columns=list(AOI_COLUMNS))
                     .to_csv(index=False))  # fmt: skip
        written.append(out / "aoi.csv")
        self.status_label.setText(f"tables written to {out}")
        return written

    def _export_tables_dialog(self) -> None:
        window = cast(QtWidgets.QWidget, self)  # the mixin is part of the window
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            window, "Export tables into", str(self.project_dir)
        )
        if folder:
            self._attempt("export the tables", folder, lambda: self.export_tables(folder))


__all__ = ["AOI_TABLE_COLUMNS", "ViewerTables"]
