"""``gazelab import`` at study scale: time and peak memory per format.

Writes one study — P participants × I images × S seconds each at R Hz (default 20 × 120
× 3 s × 300 Hz ≈ 2.2 million samples) — in each format (EyeLink ASC, one binocular file
per participant; one Tobii Studio TSV holding every participant; Gazepoint CSVs; plain
CSVs), imports each into a fresh store with ``gazelab import`` in a child process, and
exports and re-imports the CSV store (``bids``). Prints per format: samples, wall time,
samples/s, peak resident memory of the child, and the ratio of the import time to a
baseline measured in the same run: reading the same files line by line and splitting
every line (what any importer must at least do). Goals (issue): ≤ 60 s and ≤ 1 GB for
the full study on the 2-core machine.

    python benchmarks/bench_import.py                      # the full study
    python benchmarks/bench_import.py --participants 2 --images 12   # a tenth of it
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _gaze(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixations of ~250 ms around the face's centre, small noise: px on 1280×1024."""
    k = max(1, n // 75)
    cx = np.repeat(rng.normal(640, 80, k), 75)[:n]
    cy = np.repeat(rng.normal(512, 100, k), 75)[:n]
    cx = np.pad(cx, (0, n - cx.size), mode="edge")
    cy = np.pad(cy, (0, n - cy.size), mode="edge")
    return cx + rng.normal(0, 2, n), cy + rng.normal(0, 2, n)


def write_study(out: Path, p: int, images: int, seconds: float, rate: int) -> dict[str, list[Path]]:
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
                    image = f"face{img:03d}.png"
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


def run_child(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of ``gazelab ARGV`` in a child process."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gazelab.app.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"gazelab {' '.join(argv[:2])} failed: {err.strip()}")
    return wall, usage.ru_maxrss / 1024.0, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--seconds", type=float, default=3.0, help="per image")
    ap.add_argument("--rate", type=int, default=300)
    ap.add_argument("--formats", default="eyelink,tobii,gazepoint,csv,bids")
    args = ap.parse_args()
    n = args.participants * args.images * int(args.seconds * args.rate)
    print(f"study: {args.participants} participants x {args.images} images x "
          f"{args.seconds:g} s at {args.rate} Hz = {n:,} samples per format")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = write_study(out, args.participants, args.images, args.seconds, args.rate)
        print(f"{'format':<10} {'samples':>10} {'import s':>9} {'samples/s':>10} "
              f"{'peak MB':>8} {'read s':>7} {'ratio':>6}")  # fmt: skip
        common = ["--resolution", "1280x1024", "--screen-mm", "376", "301"]
        for fmt in args.formats.split(","):
            store = out / f"{fmt}.sqlite"
            if fmt == "bids":
                run_child(["export", "--store", str(out / "csv.sqlite"), "--out", str(out / "e")])
                paths = sorted((out / "e").rglob("*_gaze.tsv.gz"))
                argv = ["import", "bids", str(out / "e"), "--store", str(store)]
            else:
                paths = files[fmt]
                argv = ["import", fmt, *map(str, paths), "--store", str(store), *common]
                if fmt == "csv":
                    argv += ["--image", "image"]
            wall, peak, _ = run_child(argv)
            base = baseline_s(paths) if fmt != "bids" else float("nan")
            print(f"{fmt:<10} {n:>10,} {wall:>9.1f} {n / wall:>10,.0f} {peak:>8.0f} "
                  f"{base:>7.2f} {wall / base:>6.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
