"""Opening the viewer on a big project (it took 13 s for 8 images; it must open 1 000
images in under 3 s).

Builds, in one run, projects of synthetic faces (``--size`` px) with two annotators
(two hand-placed fixations each, tests/gaze_project.py), and times:

1. the lazy viewer on ``--images`` images: the window until the image list is filled
   (index read from the store), and until it has *settled* (classes known, the first
   image's fixations, heatmaps, scanpaths and AOI statistics shown), no model;
2. the old eager open on ``--small`` images: what the viewer did before, load the
   model and :func:`~gazelab.analysis.compare.analyse_project` every image, and the
   eager gaze-only work (every image's fixations and heatmaps); both extrapolated per
   image to ``--images`` images;
3. the lazy viewer's second open (per-trial gaze from the disk cache).

Images come from a folder of PNGs (``folder:``, decoded per image, like CK+) and from a
``synthetic:`` spec (the generator renders every face when the set is opened, which the
first image waits for; the list does not).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_viewer.py [--images 1000] [--small 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build(root: Path, spec: str) -> Path:
    from gazelab import CLASSES
    from gazelab.annotation.store import SessionStore
    from gazelab.models.datasets.registry import open_image_set
    from gazelab.tests.gaze_project import write_gaze_session

    src = open_image_set(spec)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    h, w = src.image(0).shape[:2]
    a = {iid: [(0.2 * w, 0.2 * h), (0.7 * w, 0.3 * h)] for iid in src.ids}
    b = {iid: [(0.5 * w, 0.8 * h)] for iid in src.ids}
    root.mkdir(parents=True, exist_ok=True)
    with SessionStore(root / "project.sqlite", create=True) as store:
        write_gaze_session(store, "A", spec, a, truth)
        write_gaze_session(store, "B", spec, b, truth)
    return root


def open_window(root: Path) -> tuple[float, float]:
    """Seconds until the list is filled and until the view has settled (no model)."""
    from PySide6 import QtCore

    from gazelab.app.qt import application
    from gazelab.app.viewer import ViewerWindow
    from gazelab.project import ProjectPaths
    from gazelab.settings import AnalysisSettings

    app = application()
    paths = ProjectPaths(root / "project.sqlite", None, root / "saliency-cache")
    t0 = time.perf_counter()
    win = ViewerWindow(paths, AnalysisSettings(analyzer="gradient"), show_errors=False)
    win.show()
    marks: dict[str, float] = {}
    loop = QtCore.QEventLoop()

    def poll() -> None:  # a timer, not a busy loop: the worker thread keeps the GIL
        now = time.perf_counter() - t0
        if "list" not in marks and win.images.count():
            marks["list"] = now
        if win.settled() or now > 300:
            marks["settled"] = now
            loop.quit()
            return
        QtCore.QTimer.singleShot(10, poll)

    QtCore.QTimer.singleShot(0, poll)
    loop.exec()
    app.processEvents()
    if not win.settled():
        raise RuntimeError("the viewer did not settle in 300 s")
    t_list, t_settled = marks.get("list", marks["settled"]), marks["settled"]
    if win.error:
        raise RuntimeError(win.error)
    n = win.images.count()
    assert n == len(win.entries), (n, len(win.entries))
    assert len(win.views) == 1, f"{len(win.views)} images computed on open"
    win.close()
    return t_list, t_settled


def eager(root: Path, n: int) -> dict[str, float]:
    """The old open on a small project: model load + analyse_project; and gaze only."""
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.analysis.compare import analyse_project
    from gazelab.annotation.store import SessionStore
    from gazelab.app.viewer_project import ViewerProject
    from gazelab.models.architectures import build_model, load_classifier
    from gazelab.settings import AnalysisSettings

    tf.keras.utils.set_random_seed(1)
    build_model("small_cnn", (32, 32, 1), len(CLASSES)).save(root / "model.keras")
    t = time.perf_counter()
    model = load_classifier(root / "model.keras")
    t_model = time.perf_counter() - t
    an = AnalysisSettings(analyzer="gradient")
    t = time.perf_counter()
    with SessionStore(root / "project.sqlite") as store:
        comp = analyse_project(store, model, analysis=an)
    t_analyse = time.perf_counter() - t
    assert len(comp.images) == n
    t = time.perf_counter()
    with ViewerProject(root / "project.sqlite", an, cache_dir=root / "eager-cache") as p:
        for e in p.entries:
            p.view(e.image_id)
    t_gaze = time.perf_counter() - t
    return {"model_s": t_model, "analyse_per_image_s": t_analyse / n,
            "gaze_per_image_s": t_gaze / n}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--small", type=int, default=12)
    ap.add_argument("--size", type=int, default=96, help="face size, px")
    ap.add_argument("--sources", default="folder,synthetic")
    args = ap.parse_args()

    from gazelab.models.datasets.registry import open_image_set
    from gazelab.models.synthetic import synthetic_faces, write_folder

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        t = time.perf_counter()
        small_faces = base / "faces-small"
        write_folder(synthetic_faces(args.small, seed=3, size=args.size), small_faces)
        old = eager(build(base / "small", f"folder:{small_faces}"), args.small)
        old_open = old["model_s"] + old["analyse_per_image_s"] * args.images
        old_gaze = old["gaze_per_image_s"] * args.images
        print(f"old eager open on {args.small} images: model {old['model_s']:.2f} s + "
              f"{old['analyse_per_image_s'] * 1000:.1f} ms/image (analyse_project); gaze only "
              f"{old['gaze_per_image_s'] * 1000:.1f} ms/image")  # fmt: skip
        print(f"  extrapolated to {args.images} images: {old_open:.1f} s "
              f"(gaze only {old_gaze:.1f} s)")  # fmt: skip
        for kind in args.sources.split(","):
            if kind == "folder":
                faces = base / "faces"
                write_folder(synthetic_faces(args.images, seed=7, size=args.size), faces)
                spec = f"folder:{faces}"
            else:
                spec = f"synthetic:{args.images}:7:{args.size}"
            root = build(base / kind, spec)
            print(f"[{kind}] built {args.images}-image project in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            open_image_set(spec)
            print(f"[{kind}] opening the image set alone ({spec.split(':')[0]}): "
                  f"{time.perf_counter() - t:.2f} s")  # fmt: skip
            t_list, t_open = open_window(root)
            t_list2, t_open2 = open_window(root)  # per-trial gaze from the disk cache
            verdict = "OK" if t_open < 3.0 else "OVER 3 s"
            print(f"[{kind}] lazy open, {args.images} images: list {t_list:.2f} s, settled "
                  f"{t_open:.2f} s ({verdict}); again from the cache: list {t_list2:.2f} s, "
                  f"settled {t_open2:.2f} s")  # fmt: skip
            print(f"[{kind}] old / new: {old_open / t_open:.0f}x (with model), "
                  f"{old_gaze / t_open:.1f}x (gaze only)")  # fmt: skip
            t = time.perf_counter()


if __name__ == "__main__":
    main()
