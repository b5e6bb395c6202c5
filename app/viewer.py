"""``gazelab view``: the overlay viewer (PySide6 + pyqtgraph), a thin view over
:class:`gazelab.app.viewer_project.ViewerProject`.

Opening reads only the store's index of images; each image's fixations, heatmaps,
scanpaths, AOI statistics and (with a model) relevance are computed when it is shown,
in a worker thread, and cached on disk. Without a model the viewer shows the human
layers; the model layers appear when a model is given (``--model``, or the project's
``model.keras``).

Layers: the image, each annotator's heatmap, the model heatmap (each with an
opacity), contours, raw fixations, scanpaths (numbered fixations, radius ∝ duration,
saccade lines) with a replay of the trial (time slider, play/pause) and areas of
interest (from the image set's diagnostic regions, an AOI file, or drawn here and
saved). A colour legend is drawn under the image, in the window and in exported PNGs.
Tabs: this image's metrics and AOI statistics; summary tables over all images (the
paper's Table 1 per annotator and per class, AOI means), exportable as CSV.

The picture is drawn by :mod:`gazelab.analysis.render` (pure numpy: :func:`compose`,
:func:`render_view`); the work runs in :class:`~gazelab.app.viewer_worker.ProjectWorker`;
this module is the window and ``gazelab view``'s entry point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6 import QtCore, QtWidgets

from gazelab import CLASSES
from gazelab.analysis.aoi import AOI, aoi_means, write_aoi_file
from gazelab.analysis.compare import Comparison, ImageAnalysis
from gazelab.analysis.render import (
    AOI_COLOUR,
    DISPLAY_PX,
    SCANPATH_MAX_RADIUS,
    Layers,
    annotator_colour,
    compose,
    display_scale,
    legend_entries,
    render_view,
    replay_end_ms,
)
from gazelab.app.viewer_project import (
    ImageEntry,
    ImageView,
    ModelLayer,
    report_layout_sentence,
)
from gazelab.app.viewer_tables import ViewerTables
from gazelab.app.viewer_widgets import (
    QUALITY_COLUMNS,
    picture_split,
    picture_width,
    split_sizes,
    window_size,
)
from gazelab.app.viewer_widgets import scrolled as _scrolled
from gazelab.app.viewer_worker import ProjectWorker
from gazelab.project import ProjectPaths
from gazelab.settings import AnalysisSettings, QualitySettings

ALL = "(all)"


class ViewerWindow(ViewerTables, QtWidgets.QMainWindow):
    """Browse a project's images with human (and model) gaze layers and their statistics."""

    def __init__(
        self,
        paths: ProjectPaths | None = None,
        analysis: AnalysisSettings | None = None,
        comparison: Comparison | None = None,
        *,
        show_errors: bool = True,
        aois: dict[str, list[AOI]] | None = None,
        quality: QualitySettings | None = None,
    ) -> None:
        super().__init__()
        import pyqtgraph as pg

        self.show_errors = show_errors
        pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
        self.setWindowTitle("gazelab — gaze vs saliency")
        self.entries: list[ImageEntry] = []
        self.annotators: list[str] = []
        self.visible: list[ImageEntry] = []
        self.views: dict[str, ImageView] = {}
        self.baselines: dict[str, list[dict[str, Any]] | str] = {}  # rows, or why none
        self.set_sentence = ""  # the compare report's layout sentence, when there is one
        self._baselines_asked: set[str] = set()
        self.model: ModelLayer | None = None
        self.expects_model = False
        self.rendered: NDArray[np.uint8] | None = None  # heat layers, image resolution
        self.shown: NDArray[np.uint8] | None = None  # what the window shows (with legend)
        self.scale = 1
        self.error: str | None = None
        self.summary: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
        self.drawing: list[tuple[float, float]] | None = None
        self.drawn: dict[str, list[AOI]] = {}
        self.classes_known = False
        self.failed_images: dict[str, str] = {}  # image id -> why it cannot be shown
        self._worker: ProjectWorker | None = None
        self._pending: str | None = None

        # left: filters and image list
        self.class_filter = QtWidgets.QComboBox()
        self.class_filter.addItems([ALL, *CLASSES])
        self.annotator_filter = QtWidgets.QComboBox()
        self.annotator_filter.addItem(ALL)
        self.disagreement = QtWidgets.QCheckBox("label disagreement only")
        self.images = QtWidgets.QListWidget()
        self.images.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        self.images.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.images.setUniformItemSizes(True)  # 1 000 rows lay out at once
        left = QtWidgets.QWidget()
        lf = QtWidgets.QFormLayout(left)
        lf.addRow("class", self.class_filter)
        lf.addRow("annotator", self.annotator_filter)
        lf.addRow(self.disagreement)
        lf.addRow(self.images)

        # centre: the picture, the replay bar, the tables
        self.plot = pg.GraphicsLayoutWidget()
        self.view = self.plot.addViewBox(lockAspect=True, invertY=True)
        self.item = pg.ImageItem()
        self.view.addItem(self.item)
        # the corners of the AOI being drawn, as they are clicked (white, outlined in black)
        self.corners = pg.PlotDataItem(pen=pg.mkPen(AOI_COLOUR, width=2), symbol="o",
                                       symbolSize=9, symbolBrush=AOI_COLOUR,
                                       symbolPen=pg.mkPen((0, 0, 0), width=1.5))  # fmt: skip
        self.corners.setZValue(10)
        self.view.addItem(self.corners)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.caption = QtWidgets.QLabel("")
        self.caption.setWordWrap(True)
        self.play = QtWidgets.QPushButton("▶ play")
        self.play.setCheckable(True)
        self.play.toggled.connect(self._play_toggled)
        self.replay = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.replay.setRange(0, 0)
        self.replay.valueChanged.connect(self._layers_changed)
        self.replay_label = QtWidgets.QLabel("whole trial")
        # as wide as its widest text: the slider keeps its length when the replay starts
        widest = max(("whole trial", "99999 / 99999 ms"),
                     key=self.replay_label.fontMetrics().horizontalAdvance)  # fmt: skip
        self.replay_label.setMinimumWidth(
            self.replay_label.fontMetrics().horizontalAdvance(widest) + 6
        )
        self.replay_label.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        )
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(40)
        self.timer.timeout.connect(self._tick)
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("replay"))
        bar.addWidget(self.play)
        bar.addWidget(self.replay, 1)
        bar.addWidget(self.replay_label)

        self.tabs = self._build_tables()

        # right: layers
        self.show_image = QtWidgets.QCheckBox("image")
        self.show_model = QtWidgets.QCheckBox("model heatmap")
        self.show_contours = QtWidgets.QCheckBox("contours")
        self.show_fixations = QtWidgets.QCheckBox("raw fixations")
        self.show_scanpath = QtWidgets.QCheckBox("scanpath (number, radius ∝ duration)")
        self.show_aois = QtWidgets.QCheckBox("areas of interest")
        for box, on in ((self.show_image, True), (self.show_model, True),
                        (self.show_contours, True), (self.show_fixations, False),
                        (self.show_scanpath, False), (self.show_aois, False)):  # fmt: skip
            box.setChecked(on)
            box.toggled.connect(self._layers_changed)
        self.show_model.setEnabled(False)
        self.model_note = QtWidgets.QLabel("no model: open with --model M.keras for model layers")
        self.model_note.setWordWrap(True)
        self.human_boxes: dict[str, QtWidgets.QCheckBox] = {}
        self.human_layer_box = QtWidgets.QVBoxLayout()
        self.human_opacity = self._slider(60)
        self.model_opacity = self._slider(60)
        self.draw_button = QtWidgets.QPushButton("Draw AOI (click corners)")
        self.draw_button.setCheckable(True)
        self.draw_button.toggled.connect(self._draw_toggled)
        self.save_aois_button = QtWidgets.QPushButton("Save AOIs…")
        self.save_aois_button.clicked.connect(self._save_aois_dialog)
        self.export_button = QtWidgets.QPushButton("Export PNG…")
        self.export_button.clicked.connect(self._export_dialog)
        right = self.layers_panel = QtWidgets.QWidget()
        right.setMinimumWidth(240)
        rl = QtWidgets.QVBoxLayout(right)
        rl.addWidget(QtWidgets.QLabel("<b>Layers</b>"))
        rl.addWidget(self.show_image)
        rl.addLayout(self.human_layer_box)
        rl.addWidget(self.show_model)
        rl.addWidget(self.model_note)
        for w in (self.show_contours, self.show_fixations, self.show_scanpath, self.show_aois):
            rl.addWidget(w)
        # compact: each opacity beside its slider, the two file buttons on one row, so the
        # whole panel (Export PNG included) shows without scrolling on a 1366x768 screen
        opacities = QtWidgets.QFormLayout()
        opacities.addRow("human opacity", self.human_opacity)
        opacities.addRow("model opacity", self.model_opacity)
        rl.addLayout(opacities)
        rl.addWidget(self.draw_button)
        files = QtWidgets.QHBoxLayout()
        files.addWidget(self.save_aois_button)
        files.addWidget(self.export_button)
        rl.addLayout(files)
        rl.addStretch(1)

        top = QtWidgets.QWidget()  # the picture, its caption and the replay bar
        tl = QtWidgets.QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.plot, 1)
        tl.addWidget(self.caption)
        tl.addLayout(bar)
        side = self.side = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.layers_area = _scrolled(right)
        side.addWidget(self.layers_area)  # the layers, then the tables under them
        side.addWidget(self.tabs)
        side.setStretchFactor(1, 1)
        split = self.split = QtWidgets.QSplitter()
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(top)
        split.addWidget(side)
        split.setStretchFactor(1, 1)
        self.setCentralWidget(split)
        self.progress = QtWidgets.QProgressBar()
        self.status_label = QtWidgets.QLabel("")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)

        self.class_filter.currentIndexChanged.connect(self._refilter)
        self.annotator_filter.currentIndexChanged.connect(self._refilter)
        self.disagreement.toggled.connect(self._refilter)
        self.images.currentRowChanged.connect(lambda _row: self._show_current())
        self._fit_pending = False  # the picture column is cut to the picture once it is shown
        self._fitted: tuple[tuple[str, bool], tuple[int, ...], list[int]] | None = None
        self._fit_timer = QtCore.QTimer(self)  # the window's own: it goes with the window
        self._fit_timer.setSingleShot(True)
        self._fit_timer.timeout.connect(self._fit_picture)
        self.plot.installEventFilter(self)
        self.fit_to_screen()
        self.project_dir = Path.cwd()  # where file dialogs open: the project's folder
        if paths is not None:
            self.project_dir = Path(paths.store).resolve().parent

        self.comparison: Comparison | None = None
        if comparison is not None:
            self.set_comparison(comparison)
        elif paths is not None:
            self.open_project(paths, analysis or AnalysisSettings(), aois, quality)

    def fit_to_screen(self, available: tuple[int, int] | None = None) -> None:
        """Size the window to the screen's free area (or ``available``) and give the
        picture at least half of its width."""
        if available is None:
            screen = self.screen() or QtWidgets.QApplication.primaryScreen()
            geo = screen.availableGeometry() if screen is not None else None
            available = (geo.width(), geo.height()) if geo is not None else (1400, 900)
            if geo is not None:
                self.move(geo.topLeft())
        w, h = window_size(available)
        self.resize(w, h)
        self.split.setSizes(split_sizes(w))
        self._fit_side(h)
        self._fit_pending = True
        self._fit_picture()

    def _fit_side(self, height: int | None = None) -> None:
        """The side column's split: the whole layers panel (its words wrapped to the column's
        width) when it takes at most 55 % of the height (it scrolls beyond), the tables the
        rest."""
        if height is None:  # the column's own height once laid out, else the window's
            height = self.side.height() if self.side.height() > 100 else self.height()
        panel = self.layers_panel
        width = self.layers_area.viewport().width()
        layout = panel.layout()
        need = panel.sizeHint().height()
        if width > 100 and layout is not None and layout.hasHeightForWidth():
            need = max(need, layout.totalHeightForWidth(width))
        slack = self.layers_panel.fontMetrics().height()  # a line more wrapped than guessed
        top = min(need + 2 * self.layers_area.frameWidth() + slack, int(height * 0.55))
        self.side.setSizes([top, max(120, height - top)])

    def _fit_picture(self) -> None:
        """Cut the picture column to what the picture uses at the window's height (it is
        drawn whole, aspect kept: a wider column only adds black bars) and give the rest to
        the side column's layers and tables; the picture never gets less than
        :func:`split_sizes` gave it when it can use that.

        Done once the first picture is shown after :meth:`fit_to_screen`, and again when
        another image or the model's layer changes the picture's shape, unless the splitter
        was moved by hand since (not when a layer is toggled: the columns would jump)."""
        if self.shown is None or not self.plot.isVisible():
            return
        e = self.current_entry()
        key = (e.image_id if e is not None else "", self.model is not None)
        if not self._fit_pending:
            if self._fitted is None or self.split.sizes() != self._fitted[2]:
                return  # never fitted, or the splitter was moved by hand
            if key == self._fitted[0] or self.shown.shape[:2] == self._fitted[1]:
                return
        box = self.view.sceneBoundingRect()
        if box.height() < 50 or self.plot.width() < 50:
            return  # not laid out yet: the plot's resize event comes back here
        self._fit_pending = False
        need = picture_width(self.shown.shape, (box.height(), box.width()),
                             self.plot.width() - box.width())  # fmt: skip
        sizes = self.split.sizes()
        most = split_sizes(sum(sizes))[1]  # what the picture got before it was known
        self.split.setSizes(picture_split(sizes, need, most))
        self._fitted = (key, self.shown.shape[:2], self.split.sizes())
        self._fit_side()

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if watched is self.plot and event.type() == QtCore.QEvent.Type.Resize:
            self._fit_timer.start(0)  # after pyqtgraph's own layout
        return super().eventFilter(watched, event)

    def _slider(self, value: int) -> QtWidgets.QSlider:
        s = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        s.setRange(0, 100)
        s.setValue(value)
        s.valueChanged.connect(self._layers_changed)
        return s

    # -- project ----------------------------------------------------------------------------
    def open_project(self, paths: ProjectPaths, analysis: AnalysisSettings,
                     aois: dict[str, list[AOI]] | None = None,
                     quality: QualitySettings | None = None) -> None:  # fmt: skip
        self.expects_model = paths.model is not None
        self.status_label.setText(f"opening {paths.store} …")
        self.progress.setRange(0, 0)
        w = self._worker = ProjectWorker(paths, analysis, aois, quality)
        w.opened.connect(self._on_opened)
        w.classes.connect(self._on_classes)
        w.quality.connect(self._on_quality)
        w.image_ready.connect(self._on_image)
        w.image_failed.connect(self._on_image_failed)
        w.model_ready.connect(self._on_model)
        w.summary_ready.connect(self._on_summary)
        w.baselines_ready.connect(self._on_baselines)
        self.set_sentence = report_layout_sentence(paths.store)
        w.progressed.connect(self._on_progress)
        w.failed.connect(self._on_failed)
        w.start()

    def set_comparison(self, comp: Comparison) -> None:
        """Show a finished :func:`~gazelab.analysis.compare.analyse_project` result."""
        from gazelab.app.viewer_project import TrialRef

        self.comparison = comp
        self.classes_known = True
        entries = []
        for im in comp.images:
            refs = [
                TrialRef(g.session_id, -1, a, g.label, im.image_id) for a, g in im.humans.items()
            ]
            entries.append(ImageEntry(im.image_id, "", refs, im.true_class))
            self.views[im.image_id] = ImageView(im, {}, [])
        if comp.images and comp.images[0].model_heatmap is not None:
            self.model = ModelLayer(None, comp.model_name, comp.model_hash, comp.n_points,
                                    comp.mean_points)  # fmt: skip
            self.show_model.setEnabled(True)
        self._on_opened((entries, list(comp.annotators)))

    def busy(self) -> bool:
        """Still working towards a settled view (opening, the model, the current image)."""
        return not self.settled()

    def settled(self) -> bool:
        """The project is open, the model (if any) loaded and the current image shown."""
        if self.error is not None:
            return True
        if not self.entries:
            return False
        if not self.classes_known or (self.expects_model and self.model is None):
            return False
        im = self.current_entry()
        if im is not None and im.image_id in self.failed_images:
            return True
        return im is None or (im.image_id in self.views and self._pending is None)

    def _on_opened(self, payload: tuple[list[ImageEntry], list[str]]) -> None:
        self.entries, self.annotators = payload
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self._status()
        self.annotator_filter.blockSignals(True)
        self.annotator_filter.clear()
        self.annotator_filter.addItems([ALL, *self.annotators])
        self.annotator_filter.blockSignals(False)
        for box in self.human_boxes.values():
            self.human_layer_box.removeWidget(box)
            box.deleteLater()
        self.human_boxes = {}
        for a in self.annotators:
            box = QtWidgets.QCheckBox(f"heatmap {a}")
            r, g, b = annotator_colour(self.annotators, a)
            box.setStyleSheet(f"QCheckBox {{ color: rgb({r}, {g}, {b}); font-weight: bold; }}")
            box.setChecked(True)
            box.toggled.connect(self._layers_changed)
            self.human_layer_box.addWidget(box)
            self.human_boxes[a] = box
        self._fit_side()  # a check box per annotator: the layers panel grew
        self._refilter()

    def _status(self) -> None:
        model = (
            f"model {self.model.name}, n = {self.model.n_points}"
            if self.model
            else ("loading the model …" if self.expects_model else "no model")
        )
        self.status_label.setText(
            f"{len(self.entries)} images, {len(self.annotators)} annotators; {model}"
        )

    def _on_classes(self, classes: dict[str, str | None]) -> None:
        self.classes_known = True
        for e in self.entries:
            e.true_class = classes.get(e.image_id, e.true_class)
        self._refilter(keep=True)

    def _on_model(self, layer: ModelLayer) -> None:
        self.model = layer
        self.show_model.setEnabled(True)
        self.model_note.setText(f"model {layer.name}: heatmap of the n = {layer.n_points} "
                                f"most relevant pixels")  # fmt: skip
        self.views.clear()  # computed without the model
        self.baselines.clear()
        self._baselines_asked.clear()
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self._status()
        self._show_current()

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

    def _on_image(self, image_id: str, view: ImageView) -> None:
        drawn = self.drawn.get(image_id)
        if drawn is not None and [a.name for a in view.aois] != [a.name for a in drawn]:
            return  # computed before the last AOI was drawn: the view with it is on its way
        self.views[image_id] = view
        if self._pending == image_id:
            self._pending = None
        if len(self.views) > 64:  # keep memory bounded on big projects
            for k in list(self.views)[:16]:
                if k != image_id:
                    self.views.pop(k)
        cur = self.current_entry()
        if cur is not None and cur.image_id == image_id:
            self._view_arrived(view)

    def _on_image_failed(self, image_id: str, message: str) -> None:
        if self._pending == image_id:
            self._pending = None
        if image_id:
            self.failed_images[image_id] = message
            cur = self.current_entry()
            if cur is not None and cur.image_id == image_id:
                self._clear(f"{image_id} cannot be shown: {message}")
        else:
            self.summary_button.setEnabled(True)
        self.status_label.setText(f"{image_id or 'error'}: {message}")

    # -- view state -------------------------------------------------------------------------
    def _refilter(self, *_: Any, keep: bool = False) -> None:
        cls = self.class_filter.currentText()
        who = self.annotator_filter.currentText()
        only_disagree = self.disagreement.isChecked()
        current = self.current_entry()
        self.visible = [
            e
            for e in self.entries
            if (cls == ALL or e.true_class == cls)
            and (who == ALL or who in e.labels)
            and (not only_disagree or e.disagreement)
        ]
        self.images.blockSignals(True)
        self.images.clear()
        self.images.addItems([self._list_text(e) for e in self.visible])
        if self.visible:  # wide enough for the longest entry (bounded), never elided
            metrics = self.images.fontMetrics()
            longest = max((self._list_text(e) for e in self.visible), key=len)
            widest = min(max(metrics.horizontalAdvance(longest) + 40, 280), 560)
            if self.images.minimumWidth() < widest:
                self.images.setMinimumWidth(widest)
                sizes = self.split.sizes()
                extra = widest + 20 - sizes[0]
                if extra > 0:  # take the room from the side column: the picture keeps half
                    self.split.setSizes([sizes[0] + extra, sizes[1], max(200, sizes[2] - extra)])
        row = 0
        if keep and current is not None and current in self.visible:
            row = self.visible.index(current)
        if self.visible:
            self.images.setCurrentRow(row)
        self.images.blockSignals(False)
        self._show_current()

    @staticmethod
    def _list_text(e: ImageEntry) -> str:
        labels = ", ".join(f"{a}: {lab or '–'}" for a, lab in e.labels.items())
        return f"{e.image_id}  [{e.true_class or '?'}]  {labels}"

    def _layers_changed(self, *_: Any) -> None:
        self._render()

    def current_layers(self) -> Layers:
        """The layers as the check boxes and sliders set them (the annotator filter shows
        only that annotator's layers)."""
        who = self.annotator_filter.currentText()
        view = self.current_view()
        end = replay_end_ms(view) if view is not None else 0.0
        t = float(self.replay.value())
        return Layers(
            image=self.show_image.isChecked(),
            humans={a: box.isChecked() and who in (ALL, a) for a, box in self.human_boxes.items()},
            model=self.show_model.isChecked(),
            contours=self.show_contours.isChecked(),
            fixations=self.show_fixations.isChecked(),
            human_opacity=self.human_opacity.value() / 100,
            model_opacity=self.model_opacity.value() / 100,
            scanpath=self.show_scanpath.isChecked(),
            aois=self.show_aois.isChecked(),
            replay_ms=math.inf if t >= math.floor(end) else t,
        )

    def current_entry(self) -> ImageEntry | None:
        row = self.images.currentRow()
        return self.visible[row] if 0 <= row < len(self.visible) else None

    def current_view(self) -> ImageView | None:
        e = self.current_entry()
        return None if e is None else self.views.get(e.image_id)

    def current(self) -> ImageAnalysis | None:
        """The analysis of the image shown (None while it is being computed)."""
        v = self.current_view()
        return None if v is None else v.analysis

    def _show_current(self) -> None:
        if self.drawing:  # corners clicked on the image shown before: start again
            self.drawing = []
            self.corners.setData([], [])
        e = self.current_entry()
        if e is None:
            self._clear("no image matches the filters" if self.entries else "")
            return
        view = self.views.get(e.image_id)
        if view is not None:
            self._view_arrived(view)
            return
        self._clear(f"{e.image_id}: computing fixations and heatmaps …")
        if self._worker is not None:
            self._pending = e.image_id
            self._worker.request(e.image_id)

    def _view_arrived(self, view: ImageView) -> None:
        end = int(math.ceil(replay_end_ms(view)))
        self.replay.blockSignals(True)
        self.replay.setRange(0, end)
        self.replay.setValue(end)
        self.replay.blockSignals(False)
        self._render()

    def _clear(self, caption: str) -> None:
        self.rendered = self.shown = None
        self.item.clear()
        self.caption.setText(caption)
        self._clear_tables()

    def _render(self) -> None:
        view = self.current_view()
        if view is None:
            return
        im = view.analysis
        layers = self.current_layers()
        self.scale = display_scale(im.image.shape)
        self.rendered = compose(im, self.annotators, layers)
        self.shown = render_view(view, self.annotators, layers, self.scale)
        self.item.setImage(self.shown, levels=(0, 255))
        self.view.autoRange(padding=0.0, items=[self.item])
        self._fit_picture()
        end = replay_end_ms(view)
        self.replay_label.setText(
            "whole trial" if not math.isfinite(layers.replay_ms)
            else f"{layers.replay_ms:6.0f} / {end:.0f} ms"
        )  # fmt: skip
        self.caption.setText(self._caption(im))
        self._fill_image_tables(view, layers)

    def _caption(self, im: ImageAnalysis) -> str:
        labels = "; ".join(f"{a} said {g.label or '–'}" for a, g in im.humans.items())
        text = f"<b>{im.image_id}</b>: dataset class {im.true_class or 'unknown'}; {labels}"
        if not im.humans:
            text += "no gaze recorded on this image"
        if im.predicted:
            text += f"; model predicts {im.predicted}"
        if im.model_hit is not None:
            where = "inside" if im.model_hit else "outside"
            text += f"; the model's most relevant pixel is {where} a diagnostic region"
        return text

    # -- replay -----------------------------------------------------------------------------
    def set_replay_ms(self, t_ms: float) -> None:
        """Show the scanpaths as they were ``t_ms`` after the image onset."""
        self.replay.setValue(int(round(t_ms)))

    def _play_toggled(self, on: bool) -> None:
        self.play.setText("❚❚ pause" if on else "▶ play")
        if on:
            if self.replay.value() >= self.replay.maximum():
                self.replay.setValue(0)
            self.show_scanpath.setChecked(True)
            self.timer.start()
        else:
            self.timer.stop()

    def _tick(self) -> None:
        t = self.replay.value() + self.timer.interval()
        if t >= self.replay.maximum():
            self.replay.setValue(self.replay.maximum())
            self.play.setChecked(False)
        else:
            self.replay.setValue(t)

    # -- AOIs drawn here --------------------------------------------------------------------
    def _draw_toggled(self, on: bool) -> None:
        if on:
            self.drawing = []
            self.draw_button.setText("Finish AOI")
            self.status_label.setText("click the AOI's corners on the image, then Finish AOI")
            return
        pts, self.drawing = self.drawing or [], None
        self.corners.setData([], [])
        self.draw_button.setText("Draw AOI (click corners)")
        if len(pts) < 3:
            self.status_label.setText(f"no AOI added: {len(pts)} corners clicked, 3 or more "
                                      "make one")  # fmt: skip
        if len(pts) >= 3:
            name, ok = QtWidgets.QInputDialog.getText(self, "AOI name", "name of the new AOI")
            if ok and name.strip():
                self.add_aoi(AOI.polygon(name.strip(), pts))

    def _clicked(self, event: Any) -> None:
        if self.drawing is None or self.current_view() is None:
            return
        p = self.view.mapSceneToView(event.scenePos())
        self.add_corner(p.x() / self.scale, p.y() / self.scale)

    def add_corner(self, x: float, y: float) -> None:
        """A corner of the AOI being drawn, in image px: drawn on the picture at once (the
        clicks used to leave no mark until the AOI was finished)."""
        if self.drawing is None:
            return
        self.drawing.append((x, y))
        xs = [px * self.scale for px, _ in self.drawing]
        ys = [py * self.scale for _, py in self.drawing]
        self.corners.setData(xs, ys)
        self.status_label.setText(f"AOI corner {len(self.drawing)} at ({x:.0f}, {y:.0f}) px"
                                  "; Finish AOI closes it")  # fmt: skip

    def add_aoi(self, aoi: AOI) -> None:
        """Add an AOI to the current image (replacing one of the same name); its statistics
        are recomputed and it is saved with "Save AOIs…"."""
        view = self.current_view()
        if view is None:
            return
        iid = view.analysis.image_id
        kept = [a for a in (self.drawn.get(iid) or view.aois) if a.name != aoi.name]
        self.drawn[iid] = [*kept, aoi]
        self.status_label.setText(f"AOI {aoi.name} added to {iid}; Save AOIs… writes the "
                                  "AOIs drawn as a file that --aois reads")  # fmt: skip
        self.show_aois.setChecked(True)
        if self._worker is not None:
            self._worker.set_drawn(iid, self.drawn[iid])
            self.views.pop(iid, None)
            self._show_current()

    def save_aois(self, path: str | Path) -> Path:
        """Write the AOIs drawn in this session (by image id) as JSON (``--aois`` reads it)."""
        p = write_aoi_file(path, self.drawn)
        self.status_label.setText(f"saved AOIs of {len(self.drawn)} images to {p}")
        return p

    def _save_aois_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save AOIs", str(self.project_dir / "aois.json"), "JSON (*.json)"
        )
        if path:
            self._attempt("save the AOIs", path, lambda: self.save_aois(path))

    # -- export ------------------------------------------------------------------------------
    def export_png(self, path: str | Path, scale: int = 1) -> Path:
        """Write the current view as PNG: image resolution times ``scale``, with every shown
        layer and the colour legend below the image."""
        from PIL import Image

        view = self.current_view()
        if view is None:
            raise RuntimeError("nothing to export: no image is shown")
        from gazelab.fileio import atomic_path

        p = Path(path)
        picture = Image.fromarray(render_view(view, self.annotators, self.current_layers(), scale))
        with atomic_path(p, keep_suffix=True) as tmp:  # the format follows the suffix
            picture.save(tmp)
        self.status_label.setText(f"exported {p}")
        return p

    def _export_dialog(self) -> None:
        view = self.current_view()
        if view is None:
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export view", str(self.project_dir / f"{view.analysis.image_id}_view.png"),
            "PNG (*.png)",
        )  # fmt: skip
        if path:
            self._attempt("export the PNG", path, lambda: self.export_png(path, self.scale))

    def _attempt(self, what: str, path: str | Path, action: Callable[[], object]) -> bool:
        """Run a file action from a dialog; a failure (a folder that does not exist, no
        permission, a full disk) is said in the window, not as a traceback on stderr."""
        try:
            action()
        except (OSError, ValueError, RuntimeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            folder = Path(path).parent
            hint = "" if folder.is_dir() else f"; the folder {folder} does not exist"
            message = f"could not {what} to {path}: {why}{hint}"
            self.status_label.setText(message)
            if self.show_errors:
                QtWidgets.QMessageBox.warning(self, "gazelab view", message)
            return False
        return True

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        QtCore.QTimer.singleShot(0, self, self._fit_side)  # its words wrap at their width now

    def closeEvent(self, event: Any) -> None:
        self.timer.stop()
        if self._worker is not None and self._worker.isRunning():
            self._worker.stop()
            self._worker.wait(60_000)
        super().closeEvent(event)


def check_project_files(paths: ProjectPaths) -> None:
    """Refuse, before a window opens, a store that is not a gazelab store and a model file
    that is not a safe ``.keras`` model (both checked without TensorFlow): the command
    line says what is wrong, in one line, as ``compare`` does."""
    from gazelab.annotation.store import SessionStore
    from gazelab.models.architectures import read_model_config

    SessionStore(paths.store).close()
    if paths.model is not None:
        read_model_config(paths.model)
    if paths.cache is not None:
        check_cache_folders(paths.cache)


def check_cache_folders(cache: Path) -> None:
    """Refuse, before a window opens, a saliency cache folder (or the gaze cache beside it)
    that cannot be made or written: the window said it as a model error, naming the model
    file ("model M.keras: FileNotFoundError: ... '/proc/gaze-cache'")."""
    import os

    from gazelab.analysis.compare import AnalysisError

    for folder in (Path(cache), Path(cache).parent / "gaze-cache"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            writable = os.access(folder, os.W_OK)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise AnalysisError(f"the cache folder {folder} cannot be made ({why}); give"
                                " --cache a folder you can write") from None  # fmt: skip
        if not writable:
            raise AnalysisError(f"the cache folder {folder} is not writable; give --cache a"
                                " folder you can write")  # fmt: skip


def run_viewer(
    project: str | None,
    *,
    store: str | None = None,
    model: str | None = None,
    cache: str | None = None,
    analysis: AnalysisSettings | None = None,
    screenshot: str | None = None,
    aois: str | None = None,
    quality: QualitySettings | None = None,
) -> int:
    """Open the viewer on a project (``--screenshot PNG``: save the window once loaded, exit;
    ``aois``: an AOI file, JSON or CSV by image id; ``quality``: the ``[quality]`` limits,
    whose excluded trials the viewer leaves out as compare does)."""
    from gazelab.analysis.aoi import read_aoi_file

    paths = ProjectPaths.resolve(project, store=store, model=model, cache=cache)
    aoi_map = read_aoi_file(aois) if aois else None
    check_project_files(paths)
    from gazelab.app.qt import application

    app = application()
    win = ViewerWindow(paths, analysis, show_errors=not screenshot, aois=aoi_map, quality=quality)
    win.show()
    if not screenshot:
        return int(app.exec())
    # --screenshot: a local event loop, so an application shared with others is not quit
    loop = QtCore.QEventLoop()

    def shoot() -> None:
        if not win.settled():
            QtCore.QTimer.singleShot(200, shoot)
            return
        from gazelab.fileio import atomic_path

        with atomic_path(screenshot, keep_suffix=True) as tmp:
            win.grab().save(str(tmp))
        loop.quit()

    QtCore.QTimer.singleShot(200, shoot)
    loop.exec()
    win.close()
    cur = win.current_entry()
    failed = win.failed_images.get(cur.image_id) if cur is not None else None
    if win.error is not None or failed is not None:
        from gazelab.analysis.compare import AnalysisError

        # the CLI prints it as one line, exit 2
        raise AnalysisError(win.error or f"image {cur.image_id if cur else ''}: {failed}")
    return 0


__all__ = [
    "AOI_COLOUR",
    "DISPLAY_PX",
    "QUALITY_COLUMNS",
    "SCANPATH_MAX_RADIUS",
    "Layers",
    "ProjectWorker",
    "ViewerWindow",
    "aoi_means",
    "annotator_colour",
    "check_cache_folders",
    "check_project_files",
    "compose",
    "display_scale",
    "legend_entries",
    "render_view",
    "replay_end_ms",
    "run_viewer",
    "split_sizes",
    "window_size",
]
