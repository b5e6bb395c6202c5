"""The overlay viewer's worker thread: opens the project and computes what the window
asks for (an image's view, the summary, an image's layout baselines, the model layer), one
request at a time, the newest image request first, off the GUI thread.

Each result goes back to the window as a Qt signal; a failure is sent as text (one
image's problem is shown in the status line, never raised in the GUI thread).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from gazelab.analysis.aoi import AOI
from gazelab.app.viewer_project import (
    ImageView,
    ModelLayer,
    ViewerProject,
    mean_of_counts,
    model_layer,
)
from gazelab.project import ProjectPaths
from gazelab.settings import AnalysisSettings, QualitySettings

STEP_LOAD = "model load"
"""Reading the classifier file (``load_classifier``)."""
STEP_GAZE = "gaze cache: fixations for the model's n"
"""The survey of every trial's fixation points (computed or read from the gaze cache)."""
STEP_SALIENCY = "saliency cache"
"""The model layer: the model's hash and its saliency cache (``model_layer``)."""


def model_step_error(step: str, model: str | Path, exc: BaseException) -> str:
    """The status line of a failure while the model layer is prepared, naming the step
    that failed first (a full gaze cache is not a broken model file):
    ``"<step> failed (model <file name>): <ExcName>: <message>"``."""
    return f"{step} failed (model {Path(model).name}): {type(exc).__name__}: {exc}"


class ProjectWorker(QtCore.QThread):
    """Opens the project and computes what the window asks for, one request at a time
    (the newest image request wins), off the GUI thread."""

    opened = QtCore.Signal(object)  # list[ImageEntry], annotators
    classes = QtCore.Signal(object)  # image id -> class
    quality = QtCore.Signal(object)  # data quality rows per session
    image_ready = QtCore.Signal(str, object)  # image id, ImageView
    image_failed = QtCore.Signal(str, str)
    model_ready = QtCore.Signal(object)  # ModelLayer
    summary_ready = QtCore.Signal(object)  # (Comparison, aoi rows)
    baselines_ready = QtCore.Signal(str, object)  # image id, baseline rows or an error text
    progressed = QtCore.Signal(str, int, int)
    failed = QtCore.Signal(str)

    def __init__(self, paths: ProjectPaths, analysis: AnalysisSettings,
                 aois: dict[str, list[AOI]] | None = None,
                 quality_limits: QualitySettings | None = None) -> None:  # fmt: skip
        super().__init__()
        self.paths = paths
        self.analysis = analysis
        self.aois = aois
        self.quality_limits = quality_limits  # [quality]: the trials compare leaves out
        self.model: ModelLayer | None = None
        self._wanted: str | None = None
        self._summary = False
        self._baselines: str | None = None
        self._drawn: dict[str, list[AOI]] = {}
        self._lock = threading.Lock()
        self._wake: queue.Queue[None] = queue.Queue()
        self._stop = False

    def request(self, image_id: str) -> None:
        with self._lock:
            self._wanted = image_id
        self._wake.put(None)

    def request_summary(self) -> None:
        with self._lock:
            self._summary = True
        self._wake.put(None)

    def request_baselines(self, image_id: str) -> None:
        """Compute the layout baselines of an image (after any image asked for)."""
        with self._lock:
            self._baselines = image_id
        self._wake.put(None)

    def set_drawn(self, image_id: str, aois: list[AOI]) -> None:
        with self._lock:
            self._drawn[image_id] = list(aois)
        self._wake.put(None)

    def stop(self) -> None:
        self._stop = True
        self._wake.put(None)

    def _take(self) -> tuple[str | None, bool]:
        with self._lock:
            wanted, summary = self._wanted, self._summary
            self._wanted, self._summary = None, False
        return wanted, summary

    def run(self) -> None:
        try:
            project = ViewerProject(
                self.paths.store,
                self.analysis,
                cache_dir=self.paths.cache,
                aois=self.aois,
                quality=self.quality_limits,
            )
        except Exception as exc:  # shown in the window; nothing to lose here
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        progress = self.progressed.emit
        with project:
            self.opened.emit((project.entries, project.annotators))
            classes_known = model_failed = False
            loaded: Any = None
            counts: list[int] = []
            done = 0
            last: tuple[str, ImageView, ModelLayer | None] | None = None
            while not self._stop:
                with self._lock:
                    project.drawn_aois.update(self._drawn)
                wanted, summary = self._take()
                if wanted is not None:
                    try:
                        shown = project.view(wanted, self.model)
                        self.image_ready.emit(wanted, shown)
                        last = (wanted, shown, self.model)
                    except Exception as exc:  # one image's problem, shown in the status line
                        self.image_failed.emit(wanted, f"{type(exc).__name__}: {exc}")
                    continue
                if summary:
                    try:
                        self.summary_ready.emit(
                            project.comparison(self.model, progress, lambda: self._stop)
                        )
                    except Exception as exc:
                        self.image_failed.emit("", f"summary: {type(exc).__name__}: {exc}")
                    continue
                if not classes_known:
                    classes_known = True
                    try:
                        self.classes.emit(project.load_classes())
                        self.quality.emit(project.quality_rows())
                    except Exception as exc:
                        self.failed.emit(f"{type(exc).__name__}: {exc}")
                    continue
                with self._lock:
                    base_id, self._baselines = self._baselines, None
                if base_id is not None:  # only asked for while the baselines tab is shown
                    try:
                        if last is None or last[0] != base_id or last[2] is not self.model:
                            last = (base_id, project.view(base_id, self.model), self.model)
                        rows: object = project.baselines(last[1], self.model, progress=progress)
                    except Exception as exc:  # shown in the baselines tab
                        rows = f"{type(exc).__name__}: {exc}"
                    self.baselines_ready.emit(base_id, rows)
                    continue
                if self.paths.model is not None and self.model is None and not model_failed:
                    # one step at a time (load, then the n survey in chunks), so images
                    # asked for meanwhile are shown without waiting for the survey
                    step = STEP_LOAD
                    try:
                        if loaded is None:
                            from gazelab.models.architectures import load_classifier

                            progress("loading model", 0, 1)
                            loaded = load_classifier(self.paths.model)
                        elif done < len(project.entries):
                            chunk = project.entries[done : done + 50]
                            step = f"{STEP_GAZE} ({chunk[0].image_id}…{chunk[-1].image_id})"
                            counts += project.point_counts(chunk)
                            done = min(done + 50, len(project.entries))
                            progress("fixations (for the model's n)", done, len(project.entries))
                        else:
                            step = f"{STEP_SALIENCY} ({self.paths.cache})"
                            self.model = model_layer(loaded, mean_of_counts(counts),
                                                     self.paths.cache)  # fmt: skip
                            self.model_ready.emit(self.model)
                    except Exception as exc:
                        model_failed = True
                        self.failed.emit(model_step_error(step, self.paths.model, exc))
                    continue
                self._wake.get()


__all__ = ["ProjectWorker", "model_step_error"]
