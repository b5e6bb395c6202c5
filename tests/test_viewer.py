"""The overlay viewer driven for real (offscreen): open a project, filter, toggle layers,
replay scanpaths, add AOIs, export PNGs and tables, and check their pixels and numbers.

The project: 4 synthetic faces (96 px); annotator A fixates (20, 20) then (70, 30),
annotator B fixates (48, 80), each fixation 18 samples at 60 Hz (283.3 ms), the second
of A's starting 350 ms after the first (tests/gaze_project.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gazelab import CLASSES
from gazelab.analysis.aoi import AOI, read_aoi_file
from gazelab.analysis.report import HUMAN_COLOURS, MODEL_COLOUR
from gazelab.annotation.store import SessionStore
from gazelab.models.datasets.registry import open_image_set
from gazelab.project import ProjectPaths
from gazelab.settings import AnalysisSettings
from gazelab.tests.gaze_project import write_gaze_session

pytestmark = [pytest.mark.gui]
SOURCE = "synthetic:4:11:96"
SHOTS = Path("test-output/viewer")
FIX_MS = 17 * 1000 / 60  # 18 samples at 60 Hz: first to last sample
A_RED, B_BLUE = HUMAN_COLOURS[0], HUMAN_COLOURS[1]


@pytest.fixture(scope="module")
def gaze_root(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("project")
    src = open_image_set(SOURCE)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    wrong = dict(truth)
    wrong[src.ids[2]] = CLASSES[(CLASSES.index(truth[src.ids[2]]) + 3) % len(CLASSES)]
    with SessionStore(root / "project.sqlite", create=True) as store:
        write_gaze_session(store, "A", SOURCE, {i: [(20.0, 20.0), (70.0, 30.0)] for i in src.ids},
                           truth)  # fmt: skip
        write_gaze_session(store, "B", SOURCE, {i: [(48.0, 80.0)] for i in src.ids}, wrong)
    return root, src, truth


@pytest.fixture(scope="module")
def project(gaze_root):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab.models.architectures import build_model

    root, src, truth = gaze_root
    tf.keras.utils.set_random_seed(1)
    build_model("small_cnn", (32, 32, 1), len(CLASSES)).save(root / "model.keras")
    return root, src, truth


def _wait_loaded(qtbot, win) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(win.settled, timeout=120_000)
    assert win.error is None, win.error


def _gaze_only_window(qtbot, root, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from PySide6 import QtWidgets

    from gazelab.app.viewer import ViewerWindow

    shown: list[str] = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a: shown.append(a[2]))
    paths = ProjectPaths(root / "project.sqlite", None, tmp_path / "saliency-cache")
    win = ViewerWindow(paths, AnalysisSettings(analyzer="gradient"))
    qtbot.addWidget(win)
    win.show()
    _wait_loaded(qtbot, win)
    assert not shown
    return win


def _has_colour(rgb: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(rgb[..., :3] == np.array(colour), axis=-1).sum())


def _differ(a: np.ndarray, b: np.ndarray) -> int:
    """Pixels that differ between two RGB images of one shape."""
    assert a.shape == b.shape
    return int(np.any(a != b, axis=-1).sum())


@pytest.mark.tf
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

    # only the image: the export is the image itself (no layer, no legend)
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

    # model layer on, opacity 100: green at the model's top points; legend names the model
    win.show_contours.setChecked(False)
    win.human_boxes["A"].setChecked(False)
    win.show_model.setChecked(True)
    win.model_opacity.setValue(100)
    m = np.asarray(Image.open(win.export_png(tmp_path / "model.png"))).astype(int)
    heat_m = im.model_heatmap
    assert heat_m is not None
    y, x = np.unravel_index(np.argmax(heat_m), heat_m.shape)
    assert m[y, x, 1] > m[y, x, 0] + 60
    assert _has_colour(m[96:], MODEL_COLOUR) >= 12 * 12  # the legend swatch under the image
    win.grab().save(str(SHOTS / "viewer_model_only.png"))

    # filters: by class, by disagreement (only the image B labelled wrongly)
    cls = truth[src.ids[1]]
    win.class_filter.setCurrentText(cls)
    assert win.images.count() == sum(1 for t in truth.values() if t == cls)
    win.class_filter.setCurrentText("(all)")
    win.disagreement.setChecked(True)
    assert win.images.count() == 1 and win.current_entry().image_id == src.ids[2]
    win.disagreement.setChecked(False)
    for box in win.human_boxes.values():
        box.setChecked(True)
    win.annotator_filter.setCurrentText("B")
    assert win.current_layers().humans == {"A": False, "B": True}
    qtbot.waitUntil(win.settled, timeout=60_000)
    win.grab().save(str(SHOTS / "viewer_filtered.png"))
    win.close()


@pytest.mark.tf
def test_viewer_summary_tables_equal_the_compare_report(qtbot, project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The lazy viewer's Table 1 (per annotator) equals analyse_project's, number for number."""
    import pandas as pd

    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import analyse_project, summaries
    from gazelab.app.viewer import ViewerWindow
    from gazelab.models.architectures import load_classifier

    root, _, _ = project
    analysis = AnalysisSettings(analyzer="gradient")
    win = ViewerWindow(ProjectPaths.resolve(root), analysis)
    qtbot.addWidget(win)
    win.show()
    _wait_loaded(qtbot, win)
    win.compute_summary()
    qtbot.waitUntil(lambda: win.summary is not None, timeout=120_000)
    assert win.by_annotator.rowCount() == 4  # A and B, each vs model and vs human
    win.grab().save(str(SHOTS / "viewer_summary.png"))
    files = win.export_tables(tmp_path / "tables")
    assert [f.name for f in files] == ["quality.csv", "by_annotator.csv", "by_class.csv",
                                       "aoi.csv"]  # fmt: skip
    quality = pd.read_csv(files[0])
    assert quality["annotator"].tolist() == ["A", "B"] and (quality["trials"] == 4).all()
    got = pd.read_csv(files[1])
    with SessionStore(root / "project.sqlite") as store:
        comp = analyse_project(store, load_classifier(root / "model.keras"), analysis=analysis,
                               cache=SaliencyCache(tmp_path / "c"))  # fmt: skip
    want = pd.DataFrame(summaries(comp)["by_annotator"])
    assert win.model is not None and win.model.n_points == comp.n_points
    for col in ("iou_mean", "spearman_mean", "cosine_distance_mean", "nss_mean"):
        assert np.allclose(got[col].to_numpy(float), want[col].to_numpy(float), equal_nan=True)
    aoi = pd.read_csv(files[3])
    assert len(aoi) and aoi["relevance_share"].between(0, 1).all()  # model given: shares known
    # compare's aoi.csv holds the same rows, number for number
    from gazelab.analysis.aoi import write_aoi_csv

    eager = pd.read_csv(write_aoi_csv(comp, tmp_path))
    assert list(eager.columns) == list(aoi.columns) and len(eager) == len(aoi)
    for col in ("dwell_ms", "fixations", "ttff_ms", "revisits", "relevance_share"):
        assert np.allclose(eager[col].to_numpy(float), aoi[col].to_numpy(float), equal_nan=True)
    win.close()


def test_viewer_without_a_model_shows_the_gaze(qtbot, gaze_root, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No model file: no error box, human heatmaps and human-vs-human metrics, a legend of
    the annotators' colours (window and PNG), model layer disabled, no raw True/False."""
    root, _, _ = gaze_root
    SHOTS.mkdir(parents=True, exist_ok=True)
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    assert win.model is None and not win.show_model.isEnabled()
    assert win.metrics.rowCount() == 2  # A vs B, B vs A
    im = win.current()
    assert im is not None and im.model_heatmap is None and set(im.humans) == {"A", "B"}
    png = np.asarray(Image.open(win.export_png(tmp_path / "gaze.png")))
    assert png.shape[0] > 96  # the legend strip under the 96 px image
    legend = png[96:]
    assert _has_colour(legend, A_RED) >= 12 * 12 and _has_colour(legend, B_BLUE) >= 12 * 12
    assert _has_colour(legend, MODEL_COLOUR) == 0
    win.grab().save(str(SHOTS / "viewer_no_model.png"))
    shot = np.asarray(Image.open(SHOTS / "viewer_no_model.png").convert("RGB"))
    # the window shows the legend too (drawn under the enlarged image): both swatches
    assert _has_colour(shot, A_RED) > 50 and _has_colour(shot, B_BLUE) > 50
    assert "True" not in win.caption.text() and "False" not in win.caption.text()
    # lazy: only the shown image was computed, its two trials cached on disk
    assert list(win.views) == [im.image_id]
    assert len(list((tmp_path / "gaze-cache").glob("*.npz"))) == 2
    # the image list and tables are not elided
    from PySide6 import QtCore

    assert win.images.textElideMode() == QtCore.Qt.TextElideMode.ElideNone
    win.close()


def test_scanpath_layer_numbers_radii_and_replay(qtbot, gaze_root, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gazelab.analysis.overlays import scanpath_overlay, upscale
    from gazelab.app.viewer import SCANPATH_MAX_RADIUS

    root, _, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    for box in (win.show_contours, win.human_boxes["B"]):
        box.setChecked(False)
    win.human_opacity.setValue(0)
    win.show_scanpath.setChecked(True)
    scale = 4
    im, view = win.current(), win.current_view()
    assert im is not None and view is not None
    grey = upscale(np.repeat(im.image[..., None], 3, axis=2), scale)
    full = np.asarray(Image.open(win.export_png(tmp_path / "scanpath.png", scale)))[: 96 * scale]
    Image.fromarray(full).save(SHOTS / "viewer_scanpath.png")

    # numbering order and radii: exactly the reference drawing with numbers 1, 2 at A's
    # fixations in time order and equal radii (equal durations), not with 2, 1
    r_max = SCANPATH_MAX_RADIUS * 96
    pts = np.array([[20.0, 20.0], [70.0, 30.0]])
    ref = scanpath_overlay(grey, pts, np.array([r_max, r_max]), A_RED, numbers=[1, 2], scale=scale)
    swapped = scanpath_overlay(grey, pts, np.array([r_max, r_max]), A_RED, numbers=[2, 1],
                               scale=scale)  # fmt: skip
    assert np.array_equal(full, ref) and not np.array_equal(full, swapped)

    # replay at 100 ms: fixation 1 only, its radius 100 / 283.3 of the full one, the gaze
    # cross (white) at (20, 20); nothing at fixation 2 yet
    win.set_replay_ms(100)
    early = np.asarray(Image.open(win.export_png(tmp_path / "t100.png", scale)))[: 96 * scale]
    Image.fromarray(early).save(SHOTS / "viewer_replay_100ms.png")
    want = scanpath_overlay(grey, pts[:1], np.array([100 * (r_max / FIX_MS)]), A_RED,
                            numbers=[1], scale=scale, gaze_xy=pts[0], samples_xy=pts[:1])  # fmt: skip
    assert _differ(early, want) == 0
    k = 3 * scale  # the cross's half length
    assert (early[20 * scale, 20 * scale + k - 1, :3] == 255).all()
    assert np.array_equal(early[30 * scale, 70 * scale], grey[30 * scale, 70 * scale])

    # replay at 400 ms: fixation 2 has begun 50 ms ago; the gaze is on it
    win.set_replay_ms(400)
    late = np.asarray(Image.open(win.export_png(tmp_path / "t400.png", scale)))[: 96 * scale]
    Image.fromarray(late).save(SHOTS / "viewer_replay_400ms.png")
    assert (late[30 * scale, 70 * scale + k - 1, :3] == 255).all()
    # fixation 2 begins at 350 ms: 18 samples at 60 Hz, then a 50 ms gap (gaze_project.py)
    assert view.scanpaths["A"].onset_ms.tolist() == pytest.approx([0.0, 350.0])
    radii = np.array([r_max, 50 * (r_max / FIX_MS)])
    want = scanpath_overlay(grey, pts, radii, A_RED, numbers=[1, 2], scale=scale,
                            gaze_xy=pts[1], samples_xy=pts)  # fmt: skip
    assert _differ(late, want) == 0

    # play runs the clock forward and stops at the end
    win.set_replay_ms(0)
    win.play.setChecked(True)
    qtbot.waitUntil(lambda: not win.play.isChecked(), timeout=10_000)
    assert win.replay.value() == win.replay.maximum()
    assert math.isinf(win.current_layers().replay_ms)
    win.grab().save(str(SHOTS / "viewer_scanpath_window.png"))
    win.close()


def test_viewer_aoi_drawn_statistics_and_saved(qtbot, gaze_root, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root, _, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    im = win.current()
    assert im is not None
    # the synthetic faces' diagnostic regions are the default AOIs
    view = win.current_view()
    assert view is not None and view.aois
    names = [a.name for a in view.aois]  # named by the feature they cover
    assert set(names) <= {"brows", "eyes", "left eye", "right eye", "nose", "mouth"}, names
    assert "mouth" in names and len(set(names)) == len(names)
    win.add_aoi(AOI.ellipse("upper left", (20, 20), (10, 10)))
    qtbot.waitUntil(lambda: win.current_view() is not None, timeout=60_000)
    rows = {(r["aoi"], r["annotator"]): r for r in win.current_view().aoi_rows}
    a, b = rows[("upper left", "A")], rows[("upper left", "B")]
    assert a["fixations"] == 1 and a["visits"] == 1 and a["revisits"] == 0
    assert a["dwell_ms"] == pytest.approx(FIX_MS) and a["ttff_ms"] == pytest.approx(0.0)
    assert a["dwell_share"] == pytest.approx(0.5)
    assert b["fixations"] == 0 and math.isnan(b["ttff_ms"]) and b["dwell_ms"] == 0
    assert math.isnan(a["relevance_share"])  # no model
    assert win.aoi_table.rowCount() == 2 * len(win.current_view().aois)
    cols = [
        win.aoi_table.horizontalHeaderItem(c).text() for c in range(win.aoi_table.columnCount())
    ]
    shown = {(win.aoi_table.item(r, 0).text(), win.aoi_table.item(r, 1).text()):
             win.aoi_table.item(r, cols.index("dwell_ms")).text()
             for r in range(win.aoi_table.rowCount())}  # fmt: skip
    assert shown[("upper left", "A")] == f"{FIX_MS:.0f}" == "283"  # whole ms, no decimals
    assert win.aoi_table.item(0, cols.index("dwell_share")).text().count(".") == 1
    png = np.asarray(Image.open(win.export_png(SHOTS / "viewer_aoi_export.png", 4)))
    assert (png[20 * 4, 30 * 4, :3] == 255).all()  # the AOI's white outline at x = 30
    win.grab().save(str(SHOTS / "viewer_aoi.png"))
    saved = read_aoi_file(win.save_aois(tmp_path / "aois.json"))
    assert [x.name for x in saved[im.image_id]][-1] == "upper left"
    win.close()


def test_viewer_draws_the_aoi_corners_as_they_are_clicked(
    qtbot, gaze_root, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Drawing an AOI: each clicked corner shows on the picture at once (a click left no
    mark until the AOI was finished), at the corner's place on the enlarged picture; the
    AOI made of them is added with its name, and the status line says so."""
    from PySide6 import QtWidgets

    root, _, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    assert win.scale == 8  # the 96 px faces are shown 8 times enlarged
    win.draw_button.setChecked(True)
    for x, y in ((10.0, 60.0), (40.0, 60.0), (40.0, 90.0)):
        win.add_corner(x, y)
    xs, ys = win.corners.getData()
    assert list(xs) == [80.0, 320.0, 320.0] and list(ys) == [480.0, 480.0, 720.0]
    assert "AOI corner 3 at (40, 90) px" in win.status_label.text()
    # the corners are drawn over the picture, where the picture's pixel (40, 90) is
    corner, pixel = win.corners.mapToScene(320.0, 720.0), win.item.mapToScene(320.0, 720.0)
    assert abs(corner.x() - pixel.x()) < 0.5 and abs(corner.y() - pixel.y()) < 0.5
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", lambda *a: ("chin", True))
    before = win.current_view()
    assert before is not None and "chin" not in [a.name for a in before.aois]
    win.draw_button.setChecked(False)
    assert win.drawing is None and len(win.corners.getData()[0] or []) == 0
    assert "AOI chin added" in win.status_label.text()
    # a view of this image computed before the AOI (asked for earlier, arriving late) is
    # not shown as the view with it (its AOI table had no row of the new AOI)
    win._on_image(before.analysis.image_id, before)
    late = win.views.get(before.analysis.image_id)
    assert late is None or late.aois[-1].name == "chin"
    qtbot.waitUntil(lambda: win.current_view() is not None, timeout=60_000)
    assert win.current_view().aois[-1].name == "chin"
    win.close()


def test_viewer_replay_bar_keeps_its_length(qtbot, gaze_root, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The replay slider is as long mid-trial ("350 / 633 ms") as for the whole trial: its
    label is as wide as its widest text (it grew when the replay started, and the slider
    under the pointer moved)."""
    root, _, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    win.fit_to_screen((1366, 728))
    qtbot.wait(100)
    whole = (win.replay_label.text(), win.replay.width(), win.replay.x())
    assert whole[1] >= 300  # under a picture column cut to the picture, still a long slider
    win.set_replay_ms(350)
    qtbot.wait(50)
    mid = (win.replay_label.text(), win.replay.width(), win.replay.x())
    assert whole[0] == "whole trial" and mid[0].strip().startswith("350 /")
    assert mid[1:] == whole[1:]
    win.close()


def test_view_refuses_a_cache_folder_it_cannot_make(gaze_root, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """--cache where no folder can be made: one line before any window (the window opened
    and blamed the model file: "model M.keras: FileNotFoundError: ... gaze-cache")."""
    from gazelab.app.cli import main

    root, _, _ = gaze_root
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    code = main(["view", "--store", str(root / "project.sqlite"), "--cache", str(a_file / "c")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert f"the cache folder {a_file / 'c'} cannot be made" in err and "--cache" in err
    assert "model" not in err


@pytest.mark.tf
def test_cli_compare_view_and_saliency_with_aois(project, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """compare --aois writes aoi.csv with the hand-placed AOI's statistics; view --aois
    opens on it; saliency --png writes a colour-mapped overlay with a colour bar."""
    import pandas as pd

    from gazelab.app.cli import main

    root, src, _ = project
    aois = tmp_path / "aois.csv"
    aois.write_text("".join(["image_id,name,shape,coords\n"] +
                            [f'{i},upper left,ellipse,"20 20 10 10"\n' for i in src.ids] +
                            ['typo-7,eyes,ellipse,"20 20 10 10"\n']))  # fmt: skip
    report = tmp_path / "report"
    argv = ["compare", "--project", str(root), "--analyzer", "gradient", "--report",
            str(report), "--aois", str(aois)]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    assert "names 1 image(s) this project does not hold (first: typo-7)" in capsys.readouterr().out
    rows = pd.read_csv(report / "aoi.csv")
    assert len(rows) == 2 * len(src.ids)  # one AOI per image, two annotators
    a = rows[rows["annotator"] == "A"]
    assert (a["fixations"] == 1).all() and np.allclose(a["dwell_ms"], FIX_MS)
    assert np.allclose(a["ttff_ms"], 0.0) and (a["revisits"] == 0).all()
    assert (rows[rows["annotator"] == "B"]["fixations"] == 0).all()
    assert rows["relevance_share"].between(0, 1).all()
    shot = tmp_path / "view.png"
    argv = ["view", "--project", str(root), "--analyzer", "gradient", "--aois", str(aois),
            "--screenshot", str(shot)]  # fmt: skip
    assert main(argv) == 0 and shot.stat().st_size > 10_000
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["view", "--project", str(root), "--aois", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    out = tmp_path / "sal"
    argv = ["saliency", "--model", str(root / "model.keras"), "--images", SOURCE,
            "--analyzer", "gradient", "--out", str(out), "--png"]  # fmt: skip
    assert main(argv) == 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 4
    pic = np.asarray(Image.open(pngs[0]))
    assert pic.shape[1] > pic.shape[0] > 96  # enlarged image plus the colour bar on the right
    Image.open(pngs[0]).save(SHOTS / "saliency_png.png")


def test_project_quality_rows_and_lazy_cache(gaze_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Qt-free: data quality per session averages the stored per-trial values; opening
    computes nothing; a shown image's trials are cached and read back identically."""
    import shutil

    from gazelab.app.viewer_project import ViewerProject
    from gazelab.gaze.quality import TrialQuality

    root, src, _ = gaze_root
    store_path = tmp_path / "project.sqlite"
    shutil.copy(root / "project.sqlite", store_path)
    with SessionStore(store_path) as store:
        sid = store.sessions()[0].id
        store.set_trial_quality(sid, [TrialQuality(0, 1.0, 50, 60, 100 / 6, 0.1, 0.2),
                                      TrialQuality(1, 1.0, 60, 60, 0.0, 0.3, float("nan"))])  # fmt: skip
    with ViewerProject(store_path) as p:
        rows = {r["annotator"]: r for r in p.quality_rows()}
        a, b = rows["A"], rows["B"]
        assert a["trials"] == 4 and a["trials_rated"] == 2 and a["validations"] == 0
        assert a["loss_pct"] == pytest.approx(50 / 6) and a["rms_s2s_deg"] == pytest.approx(0.2)
        assert a["std_deg"] == pytest.approx(0.2)  # NaN left out of the mean
        assert b["trials_rated"] == 0 and math.isnan(b["loss_pct"])
        assert not list((tmp_path / "gaze-cache").glob("*.npz"))  # opening computed nothing
        first = p.view(src.ids[0])
        assert len(list((tmp_path / "gaze-cache").glob("*.npz"))) == 2
    with ViewerProject(store_path) as p2:
        again = p2.view(src.ids[0])  # from the cache
    for who in ("A", "B"):
        assert np.array_equal(
            first.analysis.humans[who].heatmap, again.analysis.humans[who].heatmap
        )
        assert np.array_equal(first.scanpaths[who].t_ms, again.scanpaths[who].t_ms)


def test_an_image_that_cannot_be_computed_is_named_not_waited_for(qtbot, gaze_root, tmp_path,
                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    from gazelab.analysis.compare import AnalysisError
    from gazelab.app.viewer_project import ViewerProject

    def broken(self, image_id, model=None):  # type: ignore[no-untyped-def]
        raise AnalysisError(f"image {image_id} is unreadable")

    monkeypatch.setattr(ViewerProject, "view", broken)
    root, src, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)  # settles, no error box
    assert src.ids[0] in win.failed_images and win.current() is None
    assert "cannot be shown" in win.caption.text() and "unreadable" in win.caption.text()
    win.close()


def test_viewer_fits_the_screen_and_gives_the_picture_half(
    qtbot, gaze_root, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """On a 1366x768 and a 1920x1080 screen: the window fills the free area, the picture is
    drawn whole and as tall as its column (half the window when it can use it, no wider than
    it uses), and the side column gets the rest: the whole layers panel (Export PNG
    included) without scrolling, the four tabs without scroll arrows, no check box cut."""
    from gazelab.app.viewer import split_sizes, window_size
    from gazelab.app.viewer_widgets import picture_split, picture_width

    assert window_size((1366, 728)) == (1350, 688)  # a 1366x768 screen less its panel
    for width in (1350, 1904):
        left, centre, right = split_sizes(width)
        assert centre >= width / 2 and left >= 200 and right >= 200
        assert left + centre + right == width
    # a 720x780 picture in a box 600 px tall with 18 px of margins: 554 px (+4 of slack)
    assert picture_width((780, 720, 3), (600.0, 900.0), 18.0) == 576
    assert picture_split([330, 700, 320], 576, 756) == [330, 576, 444]
    assert picture_split([330, 700, 320], 900, 756) == [330, 756, 264]  # never past split_sizes
    root, _, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    sides = {}
    for avail in ((1366, 728), (1920, 1080)):
        win.fit_to_screen(avail)
        qtbot.wait(100)
        assert (win.width(), win.height()) == window_size(avail)
        # the picture: whole, as tall as the box that draws it, and the box no wider than it
        box = win.view.sceneBoundingRect()
        pic = win.item.mapRectToScene(win.item.boundingRect())
        assert box.contains(pic.adjusted(1, 1, -1, -1))
        assert pic.height() >= box.height() - 2
        assert box.width() - pic.width() <= 8  # was 160 px of black at 1366x768
        assert win.plot.height() >= 0.75 * win.height()
        left, centre, side = win.split.sizes()
        sides[avail] = side
        assert centre >= min(win.width() / 2 - 20, pic.width())
        # the side column: the layers panel whole, every control readable, the tabs in a row
        assert win.layers_area.verticalScrollBar().maximum() == 0
        assert not win.export_button.visibleRegion().isEmpty()
        for box_ in (win.show_scanpath, win.show_image, *win.human_boxes.values()):
            assert box_.width() >= box_.sizeHint().width(), box_.text()
        bar = win.tabs.tabBar()
        assert sum(bar.tabRect(i).width() for i in range(bar.count())) <= win.tabs.width()
        win.grab().save(str(SHOTS / f"viewer_{avail[0]}x{avail[1]}.png"))
    assert sides[(1366, 728)] >= 400  # was 314 (260 in a real window)
    assert sides[(1920, 1080)] >= 620  # was 553
    # at 1920x1080 this image's metrics show all but at most one of their 12 columns
    assert win.metrics.horizontalScrollBar().maximum() <= 1  # was 5 columns hidden
    win.close()


def test_viewer_summary_tables_show_their_rows(qtbot, gaze_root, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The summary tab on a 1366x768 screen: each table as tall as its rows (up to 8; the
    tab scrolls), not the quarter of the tab that showed two rows of each whatever their
    number; the tabs' short titles say the rest in their tool tips."""
    root, _, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    win.fit_to_screen((1366, 728))
    win.compute_summary()
    qtbot.waitUntil(lambda: win.summary is not None, timeout=120_000)
    qtbot.wait(50)
    assert win.tabs.currentWidget() is win.summary_tab
    titles = [win.tabs.tabText(i) for i in range(win.tabs.count())]
    assert titles == ["metrics", "baselines", "AOIs", "summary"]
    assert "this image" in win.tabs.tabToolTip(0) and "all images" in win.tabs.tabToolTip(3)
    counts = [t.rowCount() for t in win.summary_tables()]
    assert counts[0] == 2 and counts[3] == 2 and counts[2] >= 4  # A, B; sessions; AOIs x 2
    for t in win.summary_tables():
        shown = min(t.rowCount(), 8)
        rows_px = sum(t.rowHeight(r) for r in range(shown))
        assert t.viewport().height() >= rows_px, (t.rowCount(), t.viewport().height(), rows_px)
        assert t.viewport().height() <= rows_px + t.rowHeight(0) + 4  # no empty room
    # the tab scrolls down, never sideways (each table scrolls sideways itself)
    assert win.summary_tab.horizontalScrollBar().maximum() == 0
    win.grab().save(str(SHOTS / "viewer_summary_1366x768.png"))
    win.close()


def test_viewer_says_in_the_window_when_an_export_fails(
    qtbot, gaze_root, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from PySide6 import QtWidgets

    root, _, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    asked: list[str] = []
    warned: list[str] = []
    missing = tmp_path / "no" / "such" / "folder" / "view.png"

    def save_name(parent, title, start, filters):  # type: ignore[no-untyped-def]
        asked.append(start)
        return str(missing), filters

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", save_name)
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *a: warned.append(a[2]))
    win._export_dialog()  # used to print a traceback on stderr and say nothing
    assert not missing.exists()
    (message,) = warned
    assert str(missing) in message and "does not exist" in message
    assert message == win.status_label.text()
    win._save_aois_dialog()
    assert len(warned) == 2 and "could not save the AOIs" in warned[1]
    # the file dialogs open in the project's folder, not the current directory
    assert [Path(a).parent for a in asked] == [root.resolve(), root.resolve()]
    assert Path(asked[0]).name.endswith("_view.png") and Path(asked[1]).name == "aois.json"
    win.close()


@pytest.mark.slow
@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)])
def test_viewer_on_a_real_screen(gaze_root, tmp_path, size) -> None:  # type: ignore[no-untyped-def]
    """``gazelab view`` in Xvfb + openbox: the whole window, frame included, is on the screen."""
    import subprocess
    import sys
    import time

    from tests.xserver import x_screen

    root, _, _ = gaze_root
    w, h = size
    log = tmp_path / "view.log"
    with x_screen(w, h, tmp_path, f"viewer_{w}x{h}") as x:
        proc = subprocess.Popen([sys.executable, "-m", "gazelab.app.cli", "view", "--store",
                                 str(root / "project.sqlite")], env=x.env, stdout=log.open("w"),
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wid = x.wait_window("gaze vs saliency", proc=proc)
            time.sleep(3.0)  # the first image computed and drawn
            x.shot("window", tmp_path)
            gx, gy, gw, gh = x.geometry(wid)
            assert gx >= 0 and gy >= 0 and gx + gw <= w and gy + gh <= h, (gx, gy, gw, gh)
            assert gw >= w - 40 and gh >= h - 80  # it fills the screen
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.tf
def test_viewer_baselines_tab_equals_analysis_baselines(
    qtbot, gaze_root, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The baselines tab of the image shown: computed in the worker, its numbers those of
    analysis/baselines.py's baseline_rows over every image as the viewer computes them; A
    and B fixate the same spots on every image (one layout), so the shuffled-image score
    equals the observed one (ratio 1, difference 0) and the centre map scores lower."""
    from types import SimpleNamespace

    from gazelab.analysis.baselines import baseline_rows
    from gazelab.analysis.compare import METRICS
    from gazelab.app.viewer_project import BASELINE_COLUMNS, ViewerProject

    root, _, _ = gaze_root
    win = _gaze_only_window(qtbot, root, tmp_path, monkeypatch)
    im = win.current()
    assert im is not None and not win.baselines  # lazy: computed when their tab is shown
    win.tabs.setCurrentWidget(win.baseline_tab)
    qtbot.waitUntil(lambda: im.image_id in win.baselines, timeout=120_000)
    rows = win.baselines[im.image_id]
    assert isinstance(rows, list), rows
    # the oracle: baseline_rows (3 draws, seed 0, leave-one-image-out mean centre) on a
    # comparison of every image's analysis as the viewer computes it
    with ViewerProject(root / "project.sqlite", AnalysisSettings(analyzer="gradient"),
                       cache_dir=tmp_path / "saliency-cache") as p:  # fmt: skip
        images = [p.view(e.image_id).analysis for e in p.entries]
    oracle = [r for r in baseline_rows(SimpleNamespace(images=images), max_images=None)  # type: ignore[arg-type]
              if r["image_id"] == im.image_id]  # fmt: skip
    assert len(oracle) == 4  # per annotator: the centre row, the shuffled row vs the other
    key = {(r["annotator"], r["reference"], r["baseline"]): r for r in oracle}
    assert len(rows) == 4 and {(r["annotator"], r["reference"], r["baseline"]) for r in rows} \
        == set(key)  # fmt: skip
    for r in rows:
        o = key[(r["annotator"], r["reference"], r["baseline"])]
        for m in METRICS:
            assert r[m] == pytest.approx(o[m], rel=1e-9, abs=1e-12, nan_ok=True), (r, m)
        if r["baseline"] == "shuffled":
            assert r["draws"] == 3
            for m in METRICS:  # the same layout on every image: nothing image-specific
                assert r[m] == pytest.approx(r[f"observed_{m}"], abs=1e-9)
                assert r[f"diff_{m}"] == pytest.approx(0.0, abs=1e-9)
            assert r["cc"] / r["observed_cc"] == pytest.approx(1.0, abs=1e-9)
        else:  # A and B look at disjoint spots (IoU 0); the mean of both overlaps each
            assert r["observed_iou"] == 0.0 and r["iou"] > 0.2
            assert r["diff_iou"] == pytest.approx(-r["iou"])
    # the table shows those numbers (3 decimals) for the metric picked: observed, baseline,
    # observed − baseline, observed ÷ baseline
    t = win.baseline_table
    for metric in ("cc", "iou", "kld", "auc_judd"):
        win.baseline_metric.setCurrentText(metric)
        assert t.rowCount() == 4
        col = {t.horizontalHeaderItem(c).text(): c for c in range(t.columnCount())}
        assert list(col) == BASELINE_COLUMNS
        for k in range(t.rowCount()):
            pair, base = t.item(k, col["pair"]).text(), t.item(k, col["baseline"]).text()
            who, versus = pair.split(" vs ")
            shuffled = base.startswith("shuffled")
            o = next(r for r in oracle if r["annotator"] == who
                     and r["baseline"] == ("shuffled" if shuffled else "centre"))  # fmt: skip
            if shuffled:
                assert base == "shuffled" and versus == o["reference"]
            else:  # the centre row stands against the other annotator's observed score
                assert versus == ({"A", "B"} - {who}).pop()
            mine = next(r for r in rows if r["annotator"] == who
                        and r["reference"] == o["reference"])  # fmt: skip
            assert mine["draws"] == (3 if shuffled else 1)
            obs = mine[f"observed_{metric}"]
            want = {"obs": obs, "base": o[metric], "Δ": obs - o[metric],
                    "÷": obs / o[metric] if o[metric] else math.nan}  # fmt: skip
            for c, v in want.items():
                assert t.item(k, col[c]).text() == (f"{v:.3f}" if math.isfinite(v) else "–")
            if shuffled and metric == "cc":
                assert t.item(k, col["÷"]).text() == "1.000"
                assert t.item(k, col["Δ"]).text() in ("0.000", "-0.000")
            if shuffled and metric == "iou":
                assert t.item(k, col["÷"]).text() == "–"  # 0 ÷ 0
        assert f"human-vs-human {metric.upper()}" in win.baseline_note.text()
    win.baseline_metric.setCurrentText("cc")  # the note: other images reach the same score
    import re

    said = re.search(r"CC (-?\d+\.\d+), other images' maps (-?\d+\.\d+)", win.baseline_note.text())
    assert said is not None and said.group(1) == said.group(2) != "0.000"
    # on a 1366x768 screen, the baselines tab in front
    win.fit_to_screen((1366, 728))
    qtbot.wait(50)
    assert win.tabs.tabText(win.tabs.currentIndex()) == "baselines"
    shots = Path("/tmp/gazelab-shots")
    shots.mkdir(parents=True, exist_ok=True)
    win.grab().save(str(shots / "viewer_baselines.png"))
    win.grab().save(str(SHOTS / "viewer_baselines.png"))
    win.close()


def test_viewer_reads_the_compare_reports_layout_sentence(tmp_path) -> None:
    """<project>/report/baselines_summary.csv (as compare writes it) gives the viewer the
    report's own sentence; no report, no sentence."""
    import pandas as pd

    from gazelab.analysis.baselines import baseline_summary, layout_sentence
    from gazelab.app.viewer_project import report_layout_sentence

    store = tmp_path / "project.sqlite"
    assert report_layout_sentence(store) == ""
    rng = np.random.default_rng(3)
    observed, base = [], []
    for k in range(6):
        o, b = 0.3 + 0.05 * rng.random(), 0.25 + 0.05 * rng.random()
        observed.append({"image_id": f"i{k}", "annotator": "A", "kind": "human", "iou": o})
        base.append({"image_id": f"i{k}", "annotator": "A", "versus": "human",
                     "baseline": "shuffled", "iou": b})  # fmt: skip
    summary = baseline_summary(observed, base, metrics=["iou"])
    (tmp_path / "report").mkdir()
    pd.DataFrame(summary).to_csv(tmp_path / "report" / "baselines_summary.csv", index=False)
    said = report_layout_sentence(store)
    assert said == layout_sentence(summary) and "of the human-vs-human IOU" in said


@pytest.mark.parametrize("broken", ["load", "gaze", "saliency"])
def test_model_layer_failure_names_the_step_that_failed(
    qtbot, gaze_root, tmp_path, monkeypatch, broken
) -> None:  # type: ignore[no-untyped-def]
    """A failure while the model layer is prepared names its step (model load, the gaze
    cache's fixation survey for n, the saliency cache), not always the model file."""
    import gazelab.app.viewer_worker as vw
    import gazelab.models.architectures as arch
    from gazelab.app.viewer_project import ViewerProject

    root, src, _ = gaze_root
    model = tmp_path / "m.keras"
    model.write_text("")

    def fail(what):  # type: ignore[no-untyped-def]
        def go(*a, **k):  # type: ignore[no-untyped-def]
            raise OSError(f"{what} broke")

        return go

    fake = object()
    monkeypatch.setattr(
        arch, "load_classifier", fail("load") if broken == "load" else lambda p: fake
    )
    if broken == "gaze":
        monkeypatch.setattr(ViewerProject, "point_counts", fail("gaze"))
    layers: list[tuple[object, float]] = []
    monkeypatch.setattr(vw, "model_layer", fail("saliency") if broken == "saliency"
                        else lambda m, n, c: layers.append((m, n)))  # fmt: skip
    paths = ProjectPaths(root / "project.sqlite", model, tmp_path / "saliency-cache")
    worker = vw.ProjectWorker(paths, AnalysisSettings(analyzer="gradient"))
    errors: list[str] = []
    worker.failed.connect(lambda m: (errors.append(m), worker.stop()))
    worker.run()  # in this thread: stops at the first failure
    assert len(errors) == 1 and not layers
    first, last = src.ids[0], src.ids[-1]
    expected = {
        "load": "model load failed (model m.keras): OSError: load broke",
        "gaze": f"gaze cache: fixations for the model's n ({first}…{last}) failed (model "
        "m.keras): OSError: gaze broke",
        "saliency": f"saliency cache ({tmp_path / 'saliency-cache'}) failed (model m.keras): "
        "OSError: saliency broke",
    }[broken]
    assert errors[0] == expected
