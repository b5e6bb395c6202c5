"""``gazelab import`` at study scale, then ``gazelab compare`` on an imported study.

Writes one study — P participants × I images × S seconds each at R Hz (default 20 × 120
× 3 s × 300 Hz ≈ 2.2 million samples) — in each format (EyeLink ASC, one binocular file
per participant; one Tobii Studio TSV holding every participant; Gazepoint CSVs; plain
CSVs), the images as 400 × 600 px faces in a ``folder:`` set (the rectangle the EyeLink
and Tobii files place them in), imports each into a fresh store with ``gazelab import``
in a child process, and exports and re-imports the CSV store (``bids``). Prints per
format: samples, wall time, samples/s, peak resident memory and CPU time (user +
system: what other processes' load changes least) of the child, and the ratio
of the import time to a baseline measured in the same run: reading the same files line
by line and splitting every line (what any importer must at least do).

Then ``gazelab compare --human-pairs others`` on the imported EyeLink store (``--compare
FORMAT``): every participant against the pooled maps of all the others (``--human-pairs``
sets it: ``all`` scores every ordered pair, A(A-1) per image) and against a small CNN
(trained 8 batches here, not timed), with an empty saliency cache (cold) and again (warm),
each in a child process;
its ratio is to reading every session's samples from the store once. A compare past
``--compare-max-s`` / ``--compare-max-mb`` is stopped (the machine is shared). Then the
same compare on a second study of the same participants and fewer images
(``--also-images``, default 24, imported in the same format): its peak memory should be
no higher than the first's (the baselines score at most 200 reference maps, so fewer
images have more references each).

Goals (issue): ≤ 60 s and ≤ 1 GB for the full study on the 2-core machine, for each
import and for the compare.

    python benchmarks/bench_import.py                      # the full study
    python benchmarks/bench_import.py --participants 2 --images 12   # a tenth of it
    python benchmarks/bench_import.py --formats bids --compare none  # one format
    python benchmarks/bench_import.py --formats eyelink     # the import the compare uses
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np


def _gaze(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixations of ~250 ms around the face's centre, small noise: px on 1280×1024."""
    k = max(1, n // 75)
    cx = np.repeat(rng.normal(640, 80, k), 75)[:n]
    cy = np.repeat(rng.normal(512, 100, k), 75)[:n]
    cx = np.pad(cx, (0, n - cx.size), mode="edge")
    cy = np.pad(cy, (0, n - cy.size), mode="edge")
    return cx + rng.normal(0, 2, n), cy + rng.normal(0, 2, n)


def write_study(
    out: Path, p: int, images: int, seconds: float, rate: int, ids: list[str] | None = None
) -> dict[str, list[Path]]:
    """The study in every format; ``ids`` names the images (default ``faceNNN.png``)."""
    rng = np.random.default_rng(0)
    per_image = int(seconds * rate)
    step = 1000.0 / rate
    files: dict[str, list[Path]] = {"eyelink": [], "tobii": [], "gazepoint": [], "csv": []}
    tobii = out / "tobii.tsv"
    with open(tobii, "w") as tf:
        tf.write("ParticipantName\tRecordingTimestamp\tMediaName\tMediaPosX (ADCSpx)\t"
                 "MediaPosY (ADCSpx)\tMediaWidth\tMediaHeight\tGazePointLeftX (ADCSpx)\t"
                 "GazePointLeftY (ADCSpx)\tValidityLeft\tGazePointRightX (ADCSpx)\t"
                 "GazePointRightY (ADCSpx)\tValidityRight\n")  # fmt: skip
        for who in range(p):
            name = f"P{who + 1:02d}"
            asc, gp, cs = out / f"{name}.asc", out / f"{name}_all_gaze.csv", out / f"{name}.csv"
            with open(asc, "w") as fa, open(gp, "w") as fg, open(cs, "w") as fc:
                fa.write("MSG\t1 DISPLAY_COORDS 0 0 1279 1023\n"
                         f"SAMPLES\tGAZE\tLEFT\tRIGHT\tRATE\t{rate}.00\tTRACKING\tCR\n")  # fmt: skip
                fg.write("CNT,TIME,FPOGX,FPOGY,FPOGS,FPOGD,FPOGID,FPOGV,BPOGX,BPOGY,BPOGV,"
                         "LPOGX,LPOGY,LPOGV,RPOGX,RPOGY,RPOGV,MEDIA_NAME,USER\n")  # fmt: skip
                fc.write("time,x,y,image\n")
                t0 = 10.0
                for img in range(images):
                    x, y = _gaze(rng, per_image)
                    t = t0 + np.arange(per_image) * step
                    image = ids[img] if ids else f"face{img:03d}.png"
                    fa.write(f"MSG\t{t[0]:.0f} TRIALID {img}\n"
                             f"MSG\t{t[0]:.0f} !V IMGLOAD CENTER {image} 640 512 400 600\n")  # fmt: skip
                    fa.writelines(
                        f"{tt:.0f}\t{a:.1f}\t{b:.1f}\t900.0\t{a + 3:.1f}\t{b + 1:.1f}\t900.0\t.....\n"
                        for tt, a, b in zip(t, x, y, strict=True)
                    )
                    fa.write(f"MSG\t{t[-1]:.0f} TRIAL_RESULT 0\n")
                    fg.writelines(
                        f"{i},{tt / 1000:.5f},{a / 1280:.5f},{b / 1024:.5f},0,0,{i // 75},1,"
                        f"{a / 1280:.5f},{b / 1024:.5f},1,{a / 1280:.5f},{b / 1024:.5f},1,"
                        f"{(a + 3) / 1280:.5f},{(b + 1) / 1024:.5f},1,{image},\n"
                        for i, (tt, a, b) in enumerate(zip(t, x, y, strict=True))
                    )
                    fc.writelines(f"{tt:.3f},{a:.2f},{b:.2f},{image}\n"
                                  for tt, a, b in zip(t, x, y, strict=True))  # fmt: skip
                    tf.writelines(
                        f"{name}\t{tt:.0f}\t{image}\t440\t212\t400\t600\t{a:.1f}\t{b:.1f}\t0\t"
                        f"{a + 3:.1f}\t{b + 1:.1f}\t0\n"
                        for tt, a, b in zip(t, x, y, strict=True)
                    )
                    t0 = float(t[-1]) + 1000.0
            files["eyelink"].append(asc)
            files["gazepoint"].append(gp)
            files["csv"].append(cs)
    files["tobii"].append(tobii)
    return files


def baseline_s(paths: list[Path]) -> float:
    """Reading the files line by line and splitting each line."""
    t = time.perf_counter()
    n = 0
    for path in paths:
        with open(path, "rb") as fh:
            for line in fh:
                n += len(line.split())
    return time.perf_counter() - t


class Child(NamedTuple):
    """A child process's wall time (s; ``inf`` when stopped), peak resident memory (MB),
    CPU time (user + system, s: what the load of other processes changes least) and
    its stderr (or where it was stopped)."""

    wall: float
    peak_mb: float
    cpu_s: float
    note: str


def run_child(argv: list[str], max_s: float = math.inf, max_mb: float = math.inf) -> Child:
    """``gazelab ARGV`` in a child process (see :func:`run_child_py` for the limits)."""
    return run_child_py(["-m", "gazelab.app.cli", *argv], max_s, max_mb)


def run_child_py(argv: list[str], max_s: float = math.inf, max_mb: float = math.inf) -> Child:
    """Wall seconds, peak RSS (MB) and CPU seconds of ``python ARGV`` in a child; its output
    goes to temporary files (a pipe nobody reads would stop it when full).

    A child past ``max_s`` seconds or ``max_mb`` MB resident is stopped (the machine is
    shared): the wall time is then ``inf`` and the message says where it was stopped."""
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as errf:
        proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=errf, text=True)
        stopped = ""
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = _rss_mb(proc.pid)
            if time.perf_counter() - t > max_s or rss > max_mb:
                stopped = f"stopped at {time.perf_counter() - t:.0f} s, {rss:.0f} MB resident"
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)  # its peak memory and CPU time
                break
            time.sleep(0.2)
        wall = time.perf_counter() - t
        errf.seek(0)
        err = errf.read()
    cpu = usage.ru_utime + usage.ru_stime
    if stopped:
        last = [x.strip() for x in err.replace("\r", "\n").splitlines() if x.strip()]
        stopped += f"; its last progress: {last[-1][:120]}" if last else ""
        return Child(math.inf, usage.ru_maxrss / 1024.0, cpu, stopped)
    if status != 0:
        raise SystemExit(f"gazelab {' '.join(argv[:2])} failed: {err.strip()[-2000:]}")
    return Child(wall, usage.ru_maxrss / 1024.0, cpu, err)


def _rss_mb(pid: int) -> float:
    """Resident memory (MB) of process ``pid`` now (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def write_faces(folder: Path, n: int) -> list[str]:
    """``n`` synthetic faces as 400 × 600 px portrait PNGs in class folders (a ``folder:``
    image set, the rectangle the EyeLink and Tobii files place them in); their ids."""
    from PIL import Image

    from gazelab import CLASSES
    from gazelab.models.synthetic import synthetic_faces

    faces = synthetic_faces(n, size=128, seed=0)
    ids = []
    for i in range(n):
        iid = f"{CLASSES[int(faces.labels[i])]}/face{i:03d}.png"
        (folder / iid).parent.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(faces.images[i]).resize((400, 600), Image.Resampling.BILINEAR)
        img.save(folder / iid, compress_level=1)
        ids.append(iid)
    return ids


def make_model(path: Path, steps: int = 8) -> None:
    """A small CNN (64 × 64 px grey input) trained ``steps`` batches on other synthetic
    faces, saved to ``path``; run in a child so this process stays without TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.fileio import save_model
    from gazelab.models.architectures import build_model, to_model_input
    from gazelab.models.synthetic import synthetic_faces

    tf.keras.utils.set_random_seed(0)
    train = synthetic_faces(32 * steps, size=128, seed=1000)
    model = build_model("small_cnn", (64, 64, 1), len(CLASSES))
    model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    x = to_model_input(train.images, (64, 64, 1))
    model.fit(x, train.labels, batch_size=32, epochs=1, verbose=0)
    save_model(model, path)


GOAL_S, GOAL_MB = 60.0, 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--seconds", type=float, default=3.0, help="per image")
    ap.add_argument("--rate", type=int, default=300)
    ap.add_argument("--formats", default="eyelink,tobii,gazepoint,csv,bids")
    ap.add_argument("--compare", default="eyelink",
                    help="the imported store `gazelab compare` is timed on ('none': no compare)")  # fmt: skip
    ap.add_argument("--human-pairs", default="others", choices=("all", "others"),
                    help="compare's pairing of participants (default: others)")  # fmt: skip
    ap.add_argument("--compare-max-s", type=float, default=300.0,
                    help="stop a compare running longer (s; the machine is shared)")  # fmt: skip
    ap.add_argument("--compare-max-mb", type=float, default=4096.0,
                    help="stop a compare holding more memory (MB resident)")  # fmt: skip
    ap.add_argument("--also-images", type=int, default=24,
                    help="compare a second study of this many images too (0: not)")  # fmt: skip
    ap.add_argument("--make-model", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_model:
        make_model(args.make_model)
        return
    n = args.participants * args.images * int(args.seconds * args.rate)
    print(f"study: {args.participants} participants x {args.images} images x "
          f"{args.seconds:g} s at {args.rate} Hz = {n:,} samples per format")  # fmt: skip
    print(f"load average at the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"({os.cpu_count()} cores)")  # fmt: skip
    goal = f"goal <= {GOAL_S:g} s, <= {GOAL_MB:g} MB"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ids = write_faces(out / "faces", args.images)
        files = write_study(out, args.participants, args.images, args.seconds, args.rate, ids)
        os.sync()  # the study's files written back before the timed imports, not during them
        print(f"{'format':<10} {'samples':>10} {'import s':>9} {'samples/s':>10} "
              f"{'peak MB':>8} {'CPU s':>6} {'read s':>7} {'ratio':>6}  {goal}")  # fmt: skip

        def importer(
            out: Path, files: dict[str, list[Path]]
        ) -> Callable[[str], tuple[Child, float]]:
            common = ["--resolution", "1280x1024", "--screen-mm", "376", "301",
                      "--images", f"folder:{out / 'faces'}"]  # fmt: skip

            def imported(fmt: str) -> tuple[Child, float]:
                store = out / f"{fmt}.sqlite"
                if fmt == "bids":
                    if not (out / "csv.sqlite").exists():
                        imported("csv")
                    run_child(["export", "--store", str(out / "csv.sqlite"),
                               "--out", str(out / "e")])  # fmt: skip
                    paths = sorted((out / "e").rglob("*_gaze.tsv.gz"))
                    argv = ["import", "bids", str(out / "e"), "--store", str(store)]
                else:
                    paths = files[fmt]
                    argv = ["import", fmt, *map(str, paths), "--store", str(store), *common]
                    if fmt == "csv":
                        argv += ["--image", "image"]
                child = run_child(argv)
                base = baseline_s(paths) if fmt != "bids" else float("nan")
                return child, base

            return imported

        imported = importer(out, files)

        for fmt in args.formats.split(","):
            (wall, peak, cpu, _), base = imported(fmt)
            met = "met" if wall <= GOAL_S and peak <= GOAL_MB else "NOT met"
            print(f"{fmt:<10} {n:>10,} {wall:>9.1f} {n / wall:>10,.0f} {peak:>8.0f} {cpu:>6.1f} "
                  f"{base:>7.2f} {wall / base:>6.1f}  {met}")  # fmt: skip
        if args.compare != "none":
            compare_line(out, args.compare, n, args.images, args.participants, imported,
                         args.compare_max_s, args.compare_max_mb, args.human_pairs)  # fmt: skip
        if args.compare != "none" and 0 < args.also_images != args.images:
            # the same participants on fewer images: more baseline references an image
            few = out / f"images{args.also_images}"
            few.mkdir()
            few_ids = write_faces(few / "faces", args.also_images)
            few_files = write_study(few, args.participants, args.also_images, args.seconds,
                                    args.rate, few_ids)  # fmt: skip
            n_few = args.participants * args.also_images * int(args.seconds * args.rate)
            compare_line(few, args.compare, n_few, args.also_images, args.participants,
                         importer(few, few_files), args.compare_max_s, args.compare_max_mb,
                         args.human_pairs)  # fmt: skip
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def compare_line(out: Path, fmt: str, n: int, images: int, participants: int,
                 imported: object, max_s: float, max_mb: float,
                 human_pairs: str = "others") -> None:  # fmt: skip
    """``gazelab compare --human-pairs HUMAN_PAIRS`` on the imported ``fmt`` store (every
    participant vs the pooled others, or vs every other with ``all``, and vs a small CNN),
    cold (empty saliency cache) then warm, each in a child process.

    The ratio is the compare time over the time of reading the store's samples once
    (``SessionStore.samples`` of every session, in this process: what any compare of
    the imported gaze must at least do). A run past ``max_s`` or ``max_mb`` is stopped."""
    store = out / f"{fmt}.sqlite"
    if not store.exists():
        imported(fmt)  # type: ignore[operator]
    t = time.perf_counter()
    run_child_py([str(Path(__file__).resolve()), "--make-model", str(out / "model.keras")])
    print(f"model: small_cnn trained 8 steps of 32 faces ({time.perf_counter() - t:.1f} s, "
          "not timed below)")  # fmt: skip
    from gazelab.annotation.store import SessionStore

    t = time.perf_counter()
    with SessionStore(store) as st:
        for rec in st.sessions():
            st.samples(rec.id)
    read = time.perf_counter() - t
    argv = ["compare", "--store", str(store), "--model", str(out / "model.keras"),
            "--cache", str(out / "cache"), "--report", str(out / "report"),
            "--human-pairs", human_pairs]  # fmt: skip
    for name in ("cold", "warm"):
        load = os.getloadavg()[0]
        wall, peak, cpu, note = run_child(argv, max_s=max_s, max_mb=max_mb)
        met = "met" if wall <= GOAL_S and peak <= GOAL_MB else "NOT met"
        took = (
            f"{wall:.1f} s" if math.isfinite(wall) else f"> {max_s:g} s or > {max_mb:g} MB ({note})"
        )
        print(f"compare --human-pairs {human_pairs} {fmt} store ({participants} x {images} "
              f"images, {n:,} samples), {name}: "
              f"{took}, peak {peak:.0f} MB, CPU {cpu:.1f} s; reading the samples {read:.1f} s, "
              f"ratio {wall / read:.1f}; goal <= {GOAL_S:g} s, <= {GOAL_MB:g} MB: {met}")  # fmt: skip
        print(f"GOAL compare {name} ({participants} x {images}, --human-pairs {human_pairs}): "
              f"wall {took} / {GOAL_S:g} s = ratio {wall / GOAL_S:.2f}; peak {peak:.0f} / "
              f"{GOAL_MB:g} MB = ratio {peak / GOAL_MB:.2f}; CPU {cpu:.1f} s on "
              f"{os.cpu_count()} cores; load average {load:.2f} -> {os.getloadavg()[0]:.2f}: "
              f"{met}")  # fmt: skip
        if not math.isfinite(wall):
            break  # a stopped cold run leaves no cache for a warm one


if __name__ == "__main__":
    main()
