"""``gazelab view``: the overlay viewer (PySide6 + pyqtgraph), a thin view over
:func:`gazelab.analysis.compare.analyse_project`.

The analysis (model loading, cached relevance maps, heatmaps, metrics) runs in a
worker thread with a progress bar; the GUI thread only composes layers (pure
numpy, :func:`compose`) and shows them. Layers: the image, each annotator's
heatmap, the model heatmap (each with an opacity), contours, raw fixations.
Filters: class, annotator, label disagreement. "Export PNG" writes the current
view at image resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6 import QtCore, QtWidgets

from gazelab import CLASSES
from gazelab.analysis.compare import METRICS, Comparison, ImageAnalysis, ProjectPaths
from gazelab.analysis.overlays import heat_overlay, outline, points_overlay
from gazelab.analysis.report import HUMAN_COLOURS, MODEL_COLOUR
from gazelab.settings import AnalysisSettings

ALL = "(all)"


@dataclass
class Layers:
    """What the view shows."""

    image: bool = True
    humans: dict[str, bool] = field(default_factory=dict)  # annotator -> shown
    model: bool = True
    contours: bool = True
    fixations: bool = False
    human_opacity: float = 0.6
    model_opacity: float = 0.6


def compose(im: ImageAnalysis, annotators: list[str], layers: Layers) -> NDArray[np.uint8]:
    """The view of one image as RGB at image resolution (pure; the GUI only displays it)."""
    base = im.image if im.image.ndim == 3 else np.repeat(im.image[..., None], 3, axis=2)
    out = base.copy() if layers.image else np.zeros_like(base)
    shown = [
        (a, HUMAN_COLOURS[k % len(HUMAN_COLOURS)])
        for k, a in enumerate(annotators)
        if a in im.humans and layers.humans.get(a, True)
    ]
    for a, colour in shown:
        out = heat_overlay(out, im.humans[a].heatmap, colour, layers.human_opacity, contour=False)
    if layers.model and im.model_heatmap is not None:
        out = heat_overlay(out, im.model_heatmap, MODEL_COLOUR, layers.model_opacity, contour=False)
    if layers.contours:
        for a, colour in shown:
            out = outline(out, im.humans[a].heatmap, colour)
        if layers.model and im.model_heatmap is not None:
            out = outline(out, im.model_heatmap, MODEL_COLOUR)
    if layers.fixations:
        for a, colour in shown:
            out = points_overlay(out, im.humans[a].fixations, colour, radius=3)
        if layers.model and im.model_points is not None:
            out = points_overlay(out, im.model_points, MODEL_COLOUR, radius=2)
    return out


class AnalysisThread(QtCore.QThread):
    """Loads the model and runs the analysis off the GUI thread."""

    progressed = QtCore.Signal(str, int, int)
    done = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, paths: ProjectPaths, analysis: AnalysisSettings) -> None:
        super().__init__()
        self.paths = paths
        self.analysis = analysis

    def run(self) -> None:
        try:
            from gazelab.analysis.cache import SaliencyCache
            from gazelab.analysis.compare import AnalysisError, analyse_project
            from gazelab.annotation.store import SessionStore
            from gazelab.models.architectures import load_classifier

            if self.paths.model is None:
                raise AnalysisError("no model: open the viewer with --model M.keras")
            self.progressed.emit("loading model", 0, 1)
            model = load_classifier(self.paths.model)
            with SessionStore(self.paths.store) as store:
                comp = analyse_project(
                    store,
                    model,
                    analysis=self.analysis,
                    cache=SaliencyCache(self.paths.cache) if self.paths.cache else None,
                    progress=lambda s, d, t: self.progressed.emit(s, d, t),
                )
            self.done.emit(comp)
        except Exception as exc:  # shown in the window; nothing to lose here
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class ViewerWindow(QtWidgets.QMainWindow):
    """Browse a project's images with human and model heatmaps and their metrics."""

    def __init__(
        self,
        paths: ProjectPaths | None = None,
        analysis: AnalysisSettings | None = None,
        comparison: Comparison | None = None,
        *,
        show_errors: bool = True,
    ) -> None:
        super().__init__()
        import pyqtgraph as pg

        self.show_errors = show_errors

        pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
        self.setWindowTitle("gazelab — gaze vs saliency")
        self.comp: Comparison | None = None
        self.visible: list[ImageAnalysis] = []
        self.rendered: NDArray[np.uint8] | None = None
        self.error: str | None = None
        self._thread: AnalysisThread | None = None

        # left: filters and image list
        self.class_filter = QtWidgets.QComboBox()
        self.class_filter.addItems([ALL, *CLASSES])
        self.annotator_filter = QtWidgets.QComboBox()
        self.annotator_filter.addItem(ALL)
        self.disagreement = QtWidgets.QCheckBox("label disagreement only")
        self.images = QtWidgets.QListWidget()
        left = QtWidgets.QWidget()
        lf = QtWidgets.QFormLayout(left)
        lf.addRow("class", self.class_filter)
        lf.addRow("annotator", self.annotator_filter)
        lf.addRow(self.disagreement)
        lf.addRow(self.images)

        # centre: the picture
        self.plot = pg.GraphicsLayoutWidget()
        self.view = self.plot.addViewBox(lockAspect=True, invertY=True)
        self.item = pg.ImageItem()
        self.view.addItem(self.item)
        self.caption = QtWidgets.QLabel("")

        # right: layers and metrics
        self.show_image = QtWidgets.QCheckBox("image")
        self.show_model = QtWidgets.QCheckBox("model heatmap")
        self.show_contours = QtWidgets.QCheckBox("contours")
        self.show_fixations = QtWidgets.QCheckBox("raw fixations")
        for box, on in ((self.show_image, True), (self.show_model, True),
                        (self.show_contours, True), (self.show_fixations, False)):  # fmt: skip
            box.setChecked(on)
            box.toggled.connect(self._layers_changed)
        self.human_boxes: dict[str, QtWidgets.QCheckBox] = {}
        self.human_layer_box = QtWidgets.QVBoxLayout()
        self.human_opacity = self._slider(60)
        self.model_opacity = self._slider(60)
        self.metrics = QtWidgets.QTableWidget(0, 2 + len(METRICS))
        self.metrics.setHorizontalHeaderLabels(["annotator", "versus", *METRICS])
        self.metrics.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.export_button = QtWidgets.QPushButton("Export PNG…")
        self.export_button.clicked.connect(self._export_dialog)
        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.addWidget(QtWidgets.QLabel("<b>Layers</b>"))
        rl.addWidget(self.show_image)
        rl.addLayout(self.human_layer_box)
        rl.addWidget(self.show_model)
        rl.addWidget(self.show_contours)
        rl.addWidget(self.show_fixations)
        rl.addWidget(QtWidgets.QLabel("human opacity"))
        rl.addWidget(self.human_opacity)
        rl.addWidget(QtWidgets.QLabel("model opacity"))
        rl.addWidget(self.model_opacity)
        rl.addWidget(self.export_button)
        rl.addStretch(1)

        centre = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(centre)
        cl.addWidget(self.plot, 1)
        cl.addWidget(self.caption)
        cl.addWidget(self.metrics)
        split = QtWidgets.QSplitter()
        split.addWidget(left)
        split.addWidget(centre)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        self.setCentralWidget(split)
        self.progress = QtWidgets.QProgressBar()
        self.status_label = QtWidgets.QLabel("")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)

        self.class_filter.currentIndexChanged.connect(self._refilter)
        self.annotator_filter.currentIndexChanged.connect(self._refilter)
        self.disagreement.toggled.connect(self._refilter)
        self.images.currentRowChanged.connect(lambda _row: self._render())
        self.resize(1280, 800)

        if comparison is not None:
            self.set_comparison(comparison)
        elif paths is not None:
            self.start_analysis(paths, analysis or AnalysisSettings())

    def _slider(self, value: int) -> QtWidgets.QSlider:
        s = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        s.setRange(0, 100)
        s.setValue(value)
        s.valueChanged.connect(self._layers_changed)
        return s

    # -- analysis ---------------------------------------------------------------------------
    def start_analysis(self, paths: ProjectPaths, analysis: AnalysisSettings) -> None:
        self.status_label.setText(f"analysing {paths.store} …")
        self.progress.setRange(0, 0)  # busy until the first count arrives
        self._thread = AnalysisThread(paths, analysis)
        self._thread.progressed.connect(self._on_progress)
        self._thread.done.connect(self.set_comparison)
        self._thread.failed.connect(self._on_failed)
        self._thread.start()

    def busy(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status_label.setText(f"{stage}: {done}/{total}")

    def _on_failed(self, message: str) -> None:
        self.error = message
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status_label.setText(f"error: {message}")
        if self.show_errors:  # not while taking a --screenshot: nobody would close the box
            QtWidgets.QMessageBox.critical(self, "gazelab view", message)

    def set_comparison(self, comp: Comparison) -> None:
        self.comp = comp
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.status_label.setText(
            f"{len(comp.images)} images, {len(comp.annotators)} annotators, analyzer "
            f"{comp.analysis.analyzer}, n = {comp.n_points} ({comp.analysis.point_source})"
        )
        self.annotator_filter.blockSignals(True)
        self.annotator_filter.clear()
        self.annotator_filter.addItems([ALL, *comp.annotators])
        self.annotator_filter.blockSignals(False)
        for box in self.human_boxes.values():
            self.human_layer_box.removeWidget(box)
            box.deleteLater()
        self.human_boxes = {}
        for a in comp.annotators:
            box = QtWidgets.QCheckBox(f"heatmap {a}")
            box.setChecked(True)
            box.toggled.connect(self._layers_changed)
            self.human_layer_box.addWidget(box)
            self.human_boxes[a] = box
        self._refilter()

    # -- view state -------------------------------------------------------------------------
    def _refilter(self) -> None:
        if self.comp is None:
            return
        cls = self.class_filter.currentText()
        who = self.annotator_filter.currentText()
        only_disagree = self.disagreement.isChecked()
        self.visible = [
            im
            for im in self.comp.images
            if (cls == ALL or im.true_class == cls)
            and (who == ALL or who in im.humans)
            and (not only_disagree or im.disagreement)
        ]
        self.images.blockSignals(True)
        self.images.clear()
        for im in self.visible:
            labels = ", ".join(f"{a}: {g.label}" for a, g in im.humans.items())
            self.images.addItem(f"{im.image_id}  [{im.true_class}]  {labels}")
        self.images.blockSignals(False)
        if self.visible:
            self.images.setCurrentRow(0)
        self._render()

    def _layers_changed(self, *_: Any) -> None:
        self._render()

    def current_layers(self) -> Layers:
        """The layers as the check boxes and sliders set them (the annotator filter shows
        only that annotator's heatmap)."""
        who = self.annotator_filter.currentText()
        return Layers(
            image=self.show_image.isChecked(),
            humans={a: box.isChecked() and who in (ALL, a) for a, box in self.human_boxes.items()},
            model=self.show_model.isChecked(),
            contours=self.show_contours.isChecked(),
            fixations=self.show_fixations.isChecked(),
            human_opacity=self.human_opacity.value() / 100,
            model_opacity=self.model_opacity.value() / 100,
        )

    def current(self) -> ImageAnalysis | None:
        row = self.images.currentRow()
        return self.visible[row] if 0 <= row < len(self.visible) else None

    def _render(self) -> None:
        im = self.current()
        if im is None or self.comp is None:
            self.rendered = None
            self.item.clear()
            self.caption.setText("no image matches the filters" if self.comp else "")
            self.metrics.setRowCount(0)
            return
        self.rendered = compose(im, self.comp.annotators, self.current_layers())
        self.item.setImage(self.rendered, levels=(0, 255))
        self.view.autoRange(padding=0.0)
        hit = "" if im.model_hit is None else f"; model's top pixel in a region: {im.model_hit}"
        self.caption.setText(f"{im.image_id}: dataset {im.true_class}, model {im.predicted}{hit}")
        self.metrics.setRowCount(len(im.rows))
        for r, row in enumerate(im.rows):
            cells = [row["annotator"], row["reference"], *(f"{row[m]:.3f}" for m in METRICS)]
            for c, text in enumerate(cells):
                self.metrics.setItem(r, c, QtWidgets.QTableWidgetItem(str(text)))

    # -- export ------------------------------------------------------------------------------
    def export_png(self, path: str | Path) -> Path:
        """Write the current view (image resolution) as PNG."""
        from PIL import Image

        if self.rendered is None:
            raise RuntimeError("nothing to export: no image is shown")
        p = Path(path)
        Image.fromarray(self.rendered).save(p)
        self.status_label.setText(f"exported {p}")
        return p

    def _export_dialog(self) -> None:
        im = self.current()
        if im is None:
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export view", f"{im.image_id}_view.png", "PNG (*.png)"
        )
        if path:
            self.export_png(path)

    def closeEvent(self, event: Any) -> None:
        if self._thread is not None and self._thread.isRunning():
            self._thread.wait(60_000)
        super().closeEvent(event)


def run_viewer(
    project: str | None,
    *,
    store: str | None = None,
    model: str | None = None,
    cache: str | None = None,
    analysis: AnalysisSettings | None = None,
    screenshot: str | None = None,
) -> int:
    """Open the viewer on a project (``--screenshot PNG``: save the window once loaded, exit)."""
    paths = ProjectPaths.resolve(project, store=store, model=model, cache=cache)
    from gazelab.app.qt import application

    app = application()
    win = ViewerWindow(paths, analysis, show_errors=not screenshot)
    win.show()
    if not screenshot:
        return int(app.exec())
    # --screenshot: a local event loop, so an application shared with others is not quit
    loop = QtCore.QEventLoop()

    def shoot() -> None:
        if win.busy() or (win.comp is None and win.error is None):
            QtCore.QTimer.singleShot(200, shoot)
            return
        win.grab().save(screenshot)
        loop.quit()

    QtCore.QTimer.singleShot(200, shoot)
    loop.exec()
    win.close()
    if win.error is not None:
        from gazelab.analysis.compare import AnalysisError

        raise AnalysisError(win.error)  # the CLI prints it as one line, exit 2
    return 0
