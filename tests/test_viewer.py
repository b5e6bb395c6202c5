"""The overlay viewer driven for real (offscreen): open a project, filter, toggle layers,
export PNGs and check their pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gazelab import CLASSES
from gazelab.analysis.compare import ProjectPaths
from gazelab.annotation.session import open_image_source
from gazelab.annotation.store import SessionStore
from gazelab.settings import AnalysisSettings
from gazelab.tests.gaze_project import write_gaze_session

pytestmark = [pytest.mark.gui, pytest.mark.tf]
SOURCE = "synthetic:4:11:96"
SHOTS = Path("test-output/viewer")


@pytest.fixture(scope="module")
def project(tmp_path_factory):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab.models.architectures import build_model

    root = tmp_path_factory.mktemp("project")
    src = open_image_source(SOURCE)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    wrong = dict(truth)
    wrong[src.ids[2]] = CLASSES[(CLASSES.index(truth[src.ids[2]]) + 3) % len(CLASSES)]
    with SessionStore(root / "project.sqlite", create=True) as store:
        write_gaze_session(store, "A", SOURCE, {i: [(20.0, 20.0), (70.0, 30.0)] for i in src.ids},
                           truth)  # fmt: skip
        write_gaze_session(store, "B", SOURCE, {i: [(48.0, 80.0)] for i in src.ids}, wrong)
    tf.keras.utils.set_random_seed(1)
    build_model("small_cnn", (32, 32, 1), len(CLASSES)).save(root / "model.keras")
    return root, src, truth


def _wait_loaded(qtbot, win) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: win.comp is not None or win.error is not None, timeout=120_000)
    assert win.error is None, win.error


def test_viewer_layers_filters_and_export(qtbot, project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.viewer import ViewerWindow

    root, src, truth = project
    SHOTS.mkdir(parents=True, exist_ok=True)
    win = ViewerWindow(ProjectPaths.resolve(root), AnalysisSettings(analyzer="gradient"))
    qtbot.addWidget(win)
    win.show()
    _wait_loaded(qtbot, win)
    assert win.progress.value() == win.progress.maximum()
    assert win.images.count() == 4
    assert win.metrics.rowCount() == 4  # A vs model, A vs B, B vs model, B vs A
    win.grab().save(str(SHOTS / "viewer_all_layers.png"))

    im = win.current()
    assert im is not None
    grey = np.repeat(im.image[..., None], 3, axis=2)

    # only the image: the export is the image itself
    for box in (win.show_model, win.show_contours, *win.human_boxes.values()):
        box.setChecked(False)
    only = np.asarray(Image.open(win.export_png(tmp_path / "image_only.png")))
    assert np.array_equal(only, grey)

    # annotator A's heatmap: red-tinted at A's fixation, untouched far from every fixation
    win.human_boxes["A"].setChecked(True)
    a = np.asarray(Image.open(win.export_png(tmp_path / "a.png"))).astype(int)
    r, g, b = a[20, 20]
    assert r > g + 40 and r > b + 40
    assert np.array_equal(a[90, 90], grey[90, 90])  # > 2 kernel radii from all fixations
    assert np.array_equal(a[80, 48], grey[80, 48])  # B's fixation: B's layer is off

    # contours on: A's outline drawn in A's colour at the edge of the support
    win.show_contours.setChecked(True)
    c = np.asarray(Image.open(win.export_png(tmp_path / "contour.png")))
    heat = im.humans["A"].heatmap
    edge = (heat > 0) & ~np.roll(heat > 0, 1, axis=1)
    ys, xs = np.nonzero(edge)
    assert len(ys) and (c[ys[0], xs[0]] == (255, 40, 0)).all()

    # model layer on, opacity 100: green at the model's top points
    win.show_contours.setChecked(False)
    win.human_boxes["A"].setChecked(False)
    win.show_model.setChecked(True)
    win.model_opacity.setValue(100)
    m = np.asarray(Image.open(win.export_png(tmp_path / "model.png"))).astype(int)
    heat_m = im.model_heatmap
    assert heat_m is not None
    y, x = np.unravel_index(np.argmax(heat_m), heat_m.shape)
    assert m[y, x, 1] > m[y, x, 0] + 60
    win.grab().save(str(SHOTS / "viewer_model_only.png"))

    # filters: by class, by disagreement (only the image B labelled wrongly)
    cls = truth[src.ids[1]]
    win.class_filter.setCurrentText(cls)
    assert win.images.count() == sum(1 for t in truth.values() if t == cls)
    win.class_filter.setCurrentText("(all)")
    win.disagreement.setChecked(True)
    assert win.images.count() == 1 and win.current().image_id == src.ids[2]  # type: ignore[union-attr]
    win.disagreement.setChecked(False)
    for box in win.human_boxes.values():
        box.setChecked(True)
    win.annotator_filter.setCurrentText("B")
    assert win.current_layers().humans == {"A": False, "B": True}
    win.grab().save(str(SHOTS / "viewer_filtered.png"))
    win.close()


def test_viewer_reports_a_missing_model(qtbot, project, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PySide6 import QtWidgets

    from gazelab.app.viewer import ViewerWindow

    root, _, _ = project
    shown: list[str] = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a: shown.append(a[2]))
    paths = ProjectPaths(root / "project.sqlite", None, None)
    win = ViewerWindow(paths, AnalysisSettings(analyzer="gradient"))
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.error is not None, timeout=60_000)
    assert "no model" in win.error and shown  # type: ignore[operator]
