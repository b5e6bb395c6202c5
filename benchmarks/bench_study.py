"""A whole study through `compare`: 654 images × 2 annotators, cold and warm.

The paper's CK+ scale: 654 images (560×560 px PNGs in a class-folder layout, decoded
like CK+ files), two annotators with 4–8 fixations each per image (60 Hz samples),
a small CNN explained with deep Taylor. Prints the whole `analyse_project` time with
an empty cache (cold: decoded images, relevance maps and every pair's scores computed and
written, each map's sort noted) and a full one (warm: all read back), each stage (gaze: reading samples,
fixations, heatmaps; saliency; metrics; baselines) and the report, and — measured in
the same run on a 60-image study, and on the same 60 images at twice the side (4× the
pixels) — the per-image cost of each stage, with the ratio of the 654-image time to
654 × that cost (1.0 = linear in images) and of the 4×-pixel time to 4 × the 1×
time (1.0 = linear in pixels). The scoring workers run BLAS on one thread each
(threadpoolctl).

The floor: the bytes a warm run must touch at least once (the store, the image files
and the cache read whole, and every map scoring builds written once: images ×
(annotators + 1) × H × W × 8 bytes) over this machine's copy bandwidth, measured in
the same run (``np.copyto`` of 256 MiB, best of 3); the warm time is printed as a
multiple of it. Peak memory: the traced (tracemalloc: Python and NumPy) peak of the
654-image warm compare keeping the 24 maps a report draws. Each compare's process CPU is
printed split into user and system time with its minor page faults (fresh pages the kernel
maps in: what the malloc thresholds of ``analyse_project`` are about).

Goals on the 2-core reference machine: warm ≤ 5 s, cold ≤ 10 s, peak ≤ 300 MiB.

    python benchmarks/bench_study.py [--images 654] [--small 60]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_study(root: Path, n: int, seed: int = 0, side: int = 560) -> Path:
    """PNG folder (``side`` px square images) + store with two annotators' sessions;
    returns the store path."""
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
        img = Image.fromarray(faces.images[i]).resize((side, side), Image.Resampling.BILINEAR)
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
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0, c0 = time.perf_counter(), time.process_time()
    comp = analyse_project(
        store, model, cache=SaliencyCache(cache_dir), progress=progress, keep_maps=24
    )  # as gazelab compare
    t1, c1 = time.perf_counter(), time.process_time()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    summaries(comp)
    write_report(comp, cache_dir.parent / "report", max_image_figures=8)
    t2 = time.perf_counter()
    store.close()
    out = {"total": t1 - t0, "cpu": c1 - c0, "report": t2 - t1, "images": float(len(comp.images)),
           "user": r1.ru_utime - r0.ru_utime, "system": r1.ru_stime - r0.ru_stime,
           "faults": float(r1.ru_minflt - r0.ru_minflt)}  # fmt: skip
    starts = {s: marks[s][0] for s in STAGES if s in marks}
    names = [s for s in STAGES if s in starts]
    for a, b in zip(names, names[1:] + ["end"], strict=True):
        out[a] = (starts[b] if b in starts else t1) - starts[a]
    out["gaze"] += starts["gaze"] - t0
    return out


STAGES = ("gaze", "saliency", "metrics", "baselines")


def copy_bandwidth(mib: int = 256) -> float:
    """Bytes copied per second by ``np.copyto`` of ``mib`` MiB (best of 3)."""
    a = np.ones(mib * 2**20 // 8)
    b = np.empty_like(a)
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return a.nbytes / best


def touched_bytes(root: Path, images: int, annotators: int, side: int) -> int:
    """The bytes a warm compare touches at least once (see the module docstring)."""
    files = sum(
        p.stat().st_size for p in root.rglob("*") if p.is_file() and "report" not in p.parts
    )
    return files + images * (annotators + 1) * side * side * 8


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

    from gazelab.analysis.cache import SaliencyCache
    from gazelab.models.architectures import build_model

    print(f"load average at the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"({os.cpu_count()} cores)")  # fmt: skip
    tf.keras.utils.set_random_seed(0)
    model = build_model("small_cnn", (64, 64, 1), 8)
    n, k = args.images, args.small
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        small = build_study(root / "small", k, seed=1)
        large = build_study(root / "large", k, seed=1, side=1120)
        big = build_study(root / "big", n, seed=0)
        # the set-up's files written back before the timed runs (its ~0.3 GB of dirty pages
        # would otherwise be flushed while the cold compare runs, charged to it)
        os.sync()
        print(f"set-up (not timed below, its files synced): {time.perf_counter() - t:.1f} s")
        s_cold = timed_compare(small, model, root / "small" / "cache")
        s_warm = timed_compare(small, model, root / "small" / "cache")
        l_cold = timed_compare(large, model, root / "large" / "cache")
        l_warm = timed_compare(large, model, root / "large" / "cache")
        cold = timed_compare(big, model, root / "big" / "cache")
        warm = timed_compare(big, model, root / "big" / "cache")
        touched = touched_bytes(root / "big", n, 2, 560)
        derived = SaliencyCache(root / "big" / "cache").size()  # what the cap counts
        bandwidth = copy_bandwidth()
        peak = traced_peak(big, model, root / "big" / "cache", 24)
    for name, big_r, small_r, large_r in (("cold", cold, s_cold, l_cold),
                                          ("warm", warm, s_warm, l_warm)):  # fmt: skip
        print(f"{n} images x 2 annotators, {name}: compare {big_r['total']:.1f} s "
              f"(process CPU {big_r['cpu']:.1f} s on {os.cpu_count()} cores: user "
              f"{big_r['user']:.1f} s, system {big_r['system']:.1f} s, "
              f"{big_r['faults'] / 1e6:.2f} M page faults; + report {big_r['report']:.1f} s)")  # fmt: skip
        for stage in STAGES:
            per = small_r.get(stage, 0.0) / k
            ratio = big_r.get(stage, 0.0) / (per * n) if per > 0 else float("nan")
            px = large_r.get(stage, 0.0) / (4 * small_r.get(stage, 0.0)) if per > 0 else math.nan
            print(f"  {stage:9s} {big_r.get(stage, 0.0):7.2f} s; per image {per * 1000:7.1f} ms on "
                  f"{k} images; {n} x that = {per * n:6.1f} s; ratio {ratio:.2f}; "
                  f"4x pixels: {large_r.get(stage, 0.0):6.2f} s, ratio to 4x {px:.2f}")  # fmt: skip
        px_all = large_r["total"] / (4 * small_r["total"])
        print(f"  linear in pixels: {k} images at 1120 px {large_r['total']:.1f} s vs at 560 px "
              f"{small_r['total']:.1f} s: ratio to 4x {px_all:.2f} (1.0 = linear)")  # fmt: skip
    floor = touched / bandwidth
    print(f"floor: {touched / 2**20:.0f} MiB touched (store, images and cache read, every scored "
          f"map written once) / copy bandwidth {bandwidth / 2**30:.1f} GiB/s = {floor:.3f} s; "
          f"warm is {warm['total'] / floor:.0f}x the floor")  # fmt: skip
    print("BLAS: one thread per scoring worker (threadpoolctl), "
          f"{min(n, os.cpu_count() or 1)} workers")  # fmt: skip
    print(f"cache: prepared sorts, decoded images and pair scores {derived / 2**20:.0f} MiB on disk "
          "(capped by [analysis] cache_max_mb)")  # fmt: skip
    print(f"memory: traced peak of the {n}-image warm compare keeping 24 maps: {peak:.0f} MiB")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for what, got, goal, unit in (("warm", warm["total"], 5.0, "s"), ("cold", cold["total"], 10.0, "s"),
                                  ("peak memory", peak, 300.0, "MiB")):  # fmt: skip
        print(f"goal: {what} <= {goal:g} {unit}: {'met' if got <= goal else 'not met'} "
              f"({got:.1f} {unit}; ratio to the goal {got / goal:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
