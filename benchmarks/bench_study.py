"""A whole study through `compare` (issue 22): 654 images × 2 annotators, cold and warm.

The paper's CK+ scale: 654 images (560×560 px PNGs in a class-folder layout, decoded
like CK+ files), two annotators with 4–8 fixations each per image (60 Hz samples),
a small CNN explained with deep Taylor. Prints the whole `analyse_project` time with
an empty saliency cache (cold) and a full one (warm), each stage (gaze: reading
samples, fixations, heatmaps; saliency; metrics) and the report, and — measured in
the same run on a 60-image study — the per-image cost of each stage, with the ratio
of the 654-image time to 654 × that cost (1.0 = linear in images). Target: warm
≤ 30 s on the 2-core reference machine.

    python benchmarks/bench_study.py [--images 654] [--small 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_study(root: Path, n: int, seed: int = 0) -> Path:
    """PNG folder + store with two annotators' sessions; returns the store path."""
    from PIL import Image

    from gazelab import CLASSES
    from gazelab.annotation.store import SessionStore
    from gazelab.models.synthetic import synthetic_faces
    from tests.gaze_project import write_gaze_session

    faces = synthetic_faces(n, size=64, seed=seed)
    folder = root / "images"
    for i, fid in enumerate(faces.ids):
        d = folder / CLASSES[int(faces.labels[i])]
        d.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(faces.images[i]).resize((560, 560), Image.Resampling.BILINEAR)
        img.save(d / f"{fid.replace('/', '_')}.png", compress_level=1)
    spec = f"folder:{folder}"
    from gazelab.models.datasets.registry import open_image_set

    ids = open_image_set(spec).ids
    store_path = root / "study.sqlite"
    store = SessionStore(store_path, create=True)
    rng = np.random.default_rng(seed)
    for a in ("A1", "A2"):
        fix = {iid: [tuple(p) for p in rng.uniform(120, 440, (int(rng.integers(4, 9)), 2))]
               for iid in ids}  # fmt: skip
        write_gaze_session(store, a, spec, fix, {iid: "happy" for iid in ids})
    store.close()
    return store_path


def timed_compare(store_path: Path, model, cache_dir: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import analyse_project
    from gazelab.analysis.report import summaries, write_report
    from gazelab.annotation.store import SessionStore

    marks: dict[str, list[float]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(stage, []).append(time.perf_counter())

    store = SessionStore(store_path)
    t0 = time.perf_counter()
    comp = analyse_project(
        store, model, cache=SaliencyCache(cache_dir), progress=progress, keep_maps=24
    )  # as gazelab compare
    t1 = time.perf_counter()
    summaries(comp)
    write_report(comp, cache_dir.parent / "report", max_image_figures=8)
    t2 = time.perf_counter()
    store.close()
    out = {"total": t1 - t0, "report": t2 - t1, "images": float(len(comp.images))}
    order = ["gaze", "saliency", "metrics"]
    starts = {s: marks[s][0] for s in order if s in marks}
    ends = {"gaze": starts.get("saliency", starts["metrics"]), "saliency": starts["metrics"],
            "metrics": t1}  # fmt: skip
    out.update({s: ends[s] - starts[s] for s in starts})
    out["gaze"] += starts["gaze"] - t0
    return out


def traced_peak(store_path: Path, model, cache_dir: Path, keep_maps: int | None) -> float:  # type: ignore[no-untyped-def]
    """Peak traced memory (MiB) of one warm compare (NumPy's arrays are traced)."""
    import tracemalloc

    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import analyse_project
    from gazelab.annotation.store import SessionStore

    store = SessionStore(store_path)
    tracemalloc.start()
    comp = analyse_project(store, model, cache=SaliencyCache(cache_dir), keep_maps=keep_maps)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del comp
    store.close()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=654)
    ap.add_argument("--small", type=int, default=60)
    args = ap.parse_args()
    import tensorflow as tf

    from gazelab.models.architectures import build_model

    tf.keras.utils.set_random_seed(0)
    model = build_model("small_cnn", (64, 64, 1), 8)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        small = build_study(root / "small", args.small, seed=1)
        big = build_study(root / "big", args.images, seed=0)
        print(f"set-up (not timed below): {time.perf_counter() - t:.1f} s")
        s_cold = timed_compare(small, model, root / "small" / "cache")
        s_warm = timed_compare(small, model, root / "small" / "cache")
        cold = timed_compare(big, model, root / "big" / "cache")
        warm = timed_compare(big, model, root / "big" / "cache")
        mem_all = traced_peak(small, model, root / "small" / "cache", None)
        mem_none = traced_peak(small, model, root / "small" / "cache", 0)
    n, k = args.images, args.small
    for name, big_r, small_r in (("cold", cold, s_cold), ("warm", warm, s_warm)):
        print(f"{n} images x 2 annotators, {name}: compare {big_r['total']:.1f} s "
              f"(+ report {big_r['report']:.1f} s)")  # fmt: skip
        for stage in ("gaze", "saliency", "metrics"):
            per = small_r.get(stage, 0.0) / k
            ratio = big_r.get(stage, 0.0) / (per * n) if per > 0 else float("nan")
            print(f"  {stage:9s} {big_r.get(stage, 0.0):7.2f} s; per image {per * 1000:7.1f} ms on "
                  f"{k} images; {n} x that = {per * n:6.1f} s; ratio {ratio:.2f}")  # fmt: skip
    per_image = (mem_all - mem_none) / k
    print(f"memory: heatmaps kept for every image cost {per_image:.1f} MiB per image "
          f"(traced peak {mem_all:.0f} MiB vs {mem_none:.0f} MiB keeping none, {k} images); "
          f"for {n} images {mem_none + per_image * n:.0f} MiB, or "
          f"{mem_none + per_image * 24:.0f} MiB keeping the 24 a report draws "
          f"(gazelab compare)")  # fmt: skip
    print(f"goal: warm <= 30 s: {'met' if warm['total'] <= 30 else 'not met'} "
          f"({warm['total']:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
