"""Fixation detectors against each tracker's own events, and their speed.

1. **Agreement** — for every real recording found (the MIT excerpts in
   ``tests/data/recordings`` and any ``--recordings DIR`` / ``$GAZELAB_RECORDINGS``
   folder: EyeLink ``.asc`` with EFIX events, Tobii exports with the fixation filter's
   columns, Gazepoint ``*_all_gaze.csv``: its exported fixations ``FPOGS``/``FPOGD``, and
   for comparison the ``FPOGV`` flag), each detector's sample-level Cohen's κ of "in a
   fixation" against the tracker's own events (expert coders agree at κ ≈ 0.9;
   Andersson et al. 2017) and its fixation count as a ratio of the tracker's. Goal for
   the default: κ ≥ 0.75 and a count 0.67-1.5× on every real recording. Below, the
   same for EyeLink recordings of ≥ 1000 Hz resampled to 333 and 59 Hz with the
   simulator's remote- and consumer-class noise added (the tracker's events kept) —
   a stand-in where no real 60-300 Hz recording with events is at hand.
2. **Speed** — each detector on a long synthetic 1000 Hz trace against pymovements
   (run in its own virtual environment, ``--pm-python``; same data, same run): I-VT
   is pymovements' Savitzky–Golay ``pos2vel`` + ``ivt`` with the same window, threshold
   and minimum duration, and the events must be identical; I-DT is its ``idt``; the
   filter and the adaptive detector are compared with pymovements' nearest pipelines
   (``pos2vel`` + ``ivt``; ``microsaccades``, its adaptive-threshold detector).

    python benchmarks/bench_fixations.py --recordings /path/to/eyelinker/extdata
    python benchmarks/bench_fixations.py --minutes 2 --no-speed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score

from gazelab.gaze.detectors.adaptive import adaptive_threshold
from gazelab.gaze.fixations import DEFAULT_METHOD, DETECTORS, detect_fixations, savgol_velocity
from gazelab.gaze.recordings import (
    Recording,
    geometry_for,
    in_intervals,
    parse_eyelink_asc,
    parse_gazepoint_csv,
    parse_tobii_tsv,
    parse_tx300_tsv,
)
from gazelab.gaze.trackers.simulator import precision_at, tracker_noise

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "data" / "recordings"
DETECTOR_ORDER = ("idt", "ivt", "ivt_filter", "adaptive")
GOAL_KAPPA = 0.75
GOAL_COUNT = (0.67, 1.5)


# -- recordings -----------------------------------------------------------------------
def find_recordings(dirs: list[Path], gazepoint_screen: tuple[int, int]) -> Iterator[Recording]:
    """Every readable recording with the tracker's fixations, each eye of an EyeLink file."""
    seen: set[str] = set()
    for d in dirs:
        for path in sorted(d.iterdir()) if d.is_dir() else [d]:
            if path.name in seen:
                continue
            seen.add(path.name)
            if path.suffix.lower() == ".asc":
                first = parse_eyelink_asc(path)
                yield first
                text = path.read_text(errors="replace")
                other = "R" if first.eye == "L" else "L"
                if any(ln.startswith("SAMPLES") and ("RIGHT" if other == "R" else "LEFT") in ln
                       for ln in text.splitlines()):  # fmt: skip
                    yield parse_eyelink_asc(path, other)
            elif path.name.endswith("_all_gaze.csv"):
                yield parse_gazepoint_csv(path, gazepoint_screen)  # the exported fixations
                flagged = parse_gazepoint_csv(path, gazepoint_screen, reference="valid")
                yield replace(flagged, source=f"{flagged.source} (FPOGV)")
            elif path.suffix.lower() == ".tsv":
                head = path.read_text(errors="replace").split("\n", 1)[0]
                if "GazeEventType" in head or "Eye movement type" in head:
                    yield parse_tobii_tsv(path)


def label(r: Recording) -> str:
    src, _, tail = r.source.partition("↓")
    name = Path(src).name
    for cut in ("pymovements_", ".asc", ".tsv", ".csv", "_example", "_all_gaze"):
        name = name.replace(cut, "")
    return f"{name} {r.eye}".strip() + (f" ↓{tail}" if tail else "")


def evaluate(r: Recording, method: str, px_per_deg: float) -> tuple[float, float]:
    """(κ, count ratio) of ``method`` against the recording's own fixations."""
    g = geometry_for(r.px_per_deg or px_per_deg, r.screen_px or (1920, 1080))
    fx = detect_fixations(r.samples(), method, g)
    pred = in_intervals(r.t_ms, np.stack([fx["onset_ms"], fx["offset_ms"]], axis=1))
    kappa = float(cohen_kappa_score(r.in_fixation(), pred))
    return kappa, len(fx["onset_ms"]) / max(len(r.fixations), 1)


def degraded(r: Recording, rate_hz: float, kind: str, seed: int) -> Recording:
    """``r`` resampled to about ``rate_hz`` (every k-th sample) plus class ``kind``'s noise."""
    k = max(1, int(round(r.rate_hz / rate_hz)))
    t, x, y, v = r.t_ms[::k], r.x_px[::k], r.y_px[::k], r.valid[::k]
    rate = r.rate_hz / k
    e = tracker_noise(len(t), precision_at(kind, rate), np.random.default_rng(seed))
    ppd = r.px_per_deg or 40.0
    return Recording(t, x + e[:, 0] * ppd, y + e[:, 1] * ppd, v, r.fixations, rate,
                     r.screen_px, r.px_per_deg, r.eye, f"{r.source}↓{rate:.0f}Hz+{kind}")  # fmt: skip


def agreement(recs: list[Recording], px_per_deg: float, title: str) -> dict[str, list[float]]:
    methods = [m for m in DETECTOR_ORDER if m in DETECTORS]
    print(f"\n{title}: sample-level Cohen's κ / fixation count ÷ the tracker's")
    print(f"{'recording':<34}{'Hz':>6}{'fix':>5}  " + "".join(f"{m:>15}" for m in methods))
    kappas: dict[str, list[float]] = {m: [] for m in methods}
    counts: dict[str, list[float]] = {m: [] for m in methods}
    for r in recs:
        cells = []
        for m in methods:
            k, c = evaluate(r, m, px_per_deg)
            kappas[m].append(k)
            counts[m].append(c)
            cells.append(f"{k:6.2f} / {c:4.2f}")
        name = label(r)
        print(
            f"{name:<34}{r.rate_hz:6.0f}{len(r.fixations):5d}  "
            + "".join(f"{c:>15}" for c in cells)
        )
    if recs:
        print(f"{'lowest κ':<45}" + "".join(f"{min(kappas[m]):15.2f}" for m in methods))
        print(f"{'count ratio range':<45}" + "".join(
            f"{min(counts[m]):>9.2f}-{max(counts[m]):.2f}" for m in methods))  # fmt: skip
    return kappas | {f"{m}:count": counts[m] for m in methods}


def noise_notes(recs: list[Recording], px_per_deg: float) -> None:
    """For the Gazepoint recordings: how noisy the raw gaze is within the tracker's own
    fixations, how wide those fixations are, and how well the tracker's two readings of
    its fixations (exported ``FPOGS``/``FPOGD`` vs the ``FPOGV`` flag) agree."""
    by_name = {r.source: r for r in recs}
    rows = [
        (r, by_name.get(f"{r.source} (FPOGV)")) for r in recs if f"{r.source} (FPOGV)" in by_name
    ]
    if not rows:
        return
    print("\nGazepoint recordings at the assumed px/°: raw gaze (BPOG) in the exported fixations")
    print(f"{'recording':<24}{'Hz':>5}{'RMS-S2S °':>11}{'dispersion °':>14}{'between °':>11}"
          f"{'κ FPOGV':>9}{'onset °/s':>11}")  # fmt: skip
    for r, flagged in rows:
        ppd = r.px_per_deg or px_per_deg
        inside = r.in_fixation() & r.valid
        step = inside[1:] & inside[:-1]
        s2s = np.hypot(np.diff(r.x_px), np.diff(r.y_px))[step] / ppd
        disp, centre = [], []
        for a, b in r.fixations:
            m = (r.t_ms >= a) & (r.t_ms <= b) & r.valid
            if m.sum() >= 3:
                x, y = r.x_px[m] / ppd, r.y_px[m] / ppd
                disp.append(np.ptp(x) + np.ptp(y))
                centre.append((np.median(x), np.median(y)))
        between = np.hypot(*np.diff(np.array(centre), axis=0).T)
        k = cohen_kappa_score(r.in_fixation(), flagged.in_fixation())
        v = savgol_velocity(r.t_ms, r.x_px, r.y_px, r.valid, window_ms=20.0, px_per_deg=ppd)
        print(f"{label(r):<24}{r.rate_hz:5.0f}{np.sqrt(np.mean(s2s**2)):11.2f}"
              f"{np.median(disp):14.1f}{np.median(between):11.1f}{k:9.2f}"
              f"{adaptive_threshold(v):11.0f}")  # fmt: skip
    print(
        "(dispersion: median (x range + y range) of a fixation's samples; between: median "
        "distance of consecutive fixations' centres; κ FPOGV: the two readings' agreement)"
    )


I2MC_PX_PER_DEG = 2 * 650 * math.tan(math.radians(0.5)) / (509.174 / 1920)
"""I2MC's TX300 examples: 1920 px over 50.9 cm at 65 cm."""


def plausibility(dirs: list[Path]) -> None:
    """Real recordings without events (Tobii TX300, I2MC's examples): per detector the
    fixation count, median duration and share of valid samples in fixations."""
    files = sorted({p for d in dirs for p in (d.glob("*.tsv") if d.is_dir() else [d])
                    if "LGazePos2dx" in p.read_text(errors="replace").split("\n", 1)[0]})  # fmt: skip
    if not files:
        return
    methods = [m for m in DETECTOR_ORDER if m in DETECTORS]
    g = geometry_for(I2MC_PX_PER_DEG, (1920, 1080))
    print("\nTobii TX300, 300 Hz, no events (I2MC examples): fixations / median ms / % in fixation")
    print(f"{'recording':<34}{'s':>6}  " + "".join(f"{m:>18}" for m in methods))
    for f in files:
        for eye in "LR":
            r = parse_tx300_tsv(f, eye=eye)
            cells = []
            for m in methods:
                fx = detect_fixations(r.samples(), m, g)
                inside = in_intervals(r.t_ms, np.stack([fx["onset_ms"], fx["offset_ms"]], 1))
                med = float(np.median(fx["duration_ms"])) if len(fx["duration_ms"]) else 0.0
                share = 100.0 * (inside & r.valid).sum() / max(int(r.valid.sum()), 1)
                cells.append(f"{len(fx['onset_ms']):3d} / {med:4.0f} / {share:3.0f}%")
            dur = (r.t_ms[-1] - r.t_ms[0]) / 1000.0
            name = f"{f.stem.replace('i2mc_tx300_', '')} {eye}"
            print(f"{name:<34}{dur:6.1f}  " + "".join(f"{c:>18}" for c in cells))


# -- speed -----------------------------------------------------------------------------
def synthetic_trace(minutes: float, rate_hz: float = 1000.0, ppd: float = 40.0, seed: int = 0):
    """A long scanpath in px (fixations 100-600 ms, main-sequence saccades, tower noise);
    every sample valid, so both libraries see the same continuous signal."""
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * rate_hz)
    dt = 1000.0 / rate_hz
    x, y = np.empty(n), np.empty(n)
    pos, k = np.array([20.0, 12.0]), 0
    while k < n:
        m = int(rng.gamma(4.0, 62.5) / dt) + int(80 / dt)
        x[k : k + m], y[k : k + m] = pos
        k += m
        nxt = np.clip(pos + rng.normal(0, 5, 2), 2, 45)
        amp = float(np.hypot(*(nxt - pos)))
        s = max(1, int((21 + 2.2 * amp) / dt))
        f = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, s + 1) / (s + 1))
        seg = slice(k, min(k + s, n))
        x[seg] = (pos[0] + f * (nxt[0] - pos[0]))[: seg.stop - k]
        y[seg] = (pos[1] + f * (nxt[1] - pos[1]))[: seg.stop - k]
        k += s
        pos = nxt
    e = tracker_noise(n, precision_at("tower", rate_hz), rng)
    t = np.arange(n) * dt
    return t, (x + e[:, 0]) * ppd, (y + e[:, 1]) * ppd


PM_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import pymovements as pm
    from pymovements.events import idt, ivt, microsaccades
    from pymovements.transforms.numpy import pos2vel
    d = np.load(sys.argv[1])
    t, deg = d["t"], np.stack([d["x"], d["y"]], axis=1) / float(d["ppd"])
    rate, w = float(d["rate"]), int(d["window"])
    def vel():
        return pos2vel(deg, sampling_rate=rate, method="savitzky_golay",
                       window_length=w, polyorder=2, mode="interp")
    def ivt_run():
        return ivt(vel(), timesteps=t, minimum_duration=float(d["min_fix"]),
                   velocity_threshold=float(d["vthr"]))
    n_idt = int(d["idt_max"])
    def idt_run():
        return idt(deg[:n_idt], timesteps=t[:n_idt], minimum_duration=int(d["min_dur"]),
                   dispersion_threshold=float(d["disp"]))
    def ms_run():
        return microsaccades(vel(), timesteps=t, threshold="engbert2015",
                             threshold_factor=6, minimum_duration=6)
    runs = {"ivt": ivt_run, "idt": idt_run, "microsaccades": ms_run}
    print(json.dumps({"version": pm.__version__}), flush=True)
    for line in sys.stdin:  # one timed run per request, so the caller can interleave
        name = line.strip()
        t0 = time.perf_counter(); ev = runs[name](); sec = time.perf_counter() - t0
        frame = ev.frame
        print(json.dumps({"seconds": sec, "onset": frame["onset"].to_list(),
                          "offset": frame["offset"].to_list()}), flush=True)
    """
)

PAIRS = {"ivt": "ivt", "idt": "idt", "ivt_filter": "ivt", "adaptive": "microsaccades"}
"""pymovements' counterpart of each detector (the same algorithm, or the nearest)."""


def speed(minutes: float, pm_python: str | None, repeat: int, idt_minutes: float) -> None:
    """Time each detector and its pymovements counterpart, interleaved run by run (a
    pymovements worker in its own venv answers one timed run per request), so that a
    busy machine slows both alike; the best of ``repeat`` runs each."""
    ppd, rate = 40.0, 1000.0
    t, x, y = synthetic_trace(minutes, rate, ppd)
    g = geometry_for(ppd, (1920, 1080))
    samples = {"time_ms": t, "x": x, "y": y, "valid": np.ones(len(t), bool)}
    n_idt = int(idt_minutes * 60 * rate)
    part = {m: samples if m != "idt" else {k: v[:n_idt] for k, v in samples.items()}
            for m in DETECTOR_ORDER}  # fmt: skip
    print(f"\nspeed: {minutes:g} min at {rate:g} Hz ({len(t):,} samples), best of {repeat}, "
          "the two libraries interleaved")  # fmt: skip
    worker = None
    with tempfile.TemporaryDirectory() as tmp:
        if pm_python and Path(pm_python).exists():
            data, script = Path(tmp) / "in.npz", Path(tmp) / "pm.py"
            np.savez(data, t=t, x=x, y=y, ppd=ppd, rate=rate, window=21, min_fix=40.0,
                     vthr=30.0, min_dur=100.0, disp=1.0, idt_max=n_idt)  # fmt: skip
            script.write_text(PM_SCRIPT)
            worker = subprocess.Popen([pm_python, str(script), str(data)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert worker.stdin is not None and worker.stdout is not None
            head = worker.stdout.readline()
            if not head:
                print("pymovements worker failed to start; see its error above")
                worker = None
            else:
                print(f"pymovements {json.loads(head)['version']} in {pm_python} (its own venv)")
        else:
            print(f"pymovements: no interpreter at {pm_python!r}; give --pm-python (see docs)")

        def pm_run(name: str) -> dict:
            assert worker is not None and worker.stdin and worker.stdout
            worker.stdin.write(name + "\n")
            worker.stdin.flush()
            return json.loads(worker.stdout.readline())

        ours: dict[str, float] = dict.fromkeys(DETECTOR_ORDER, math.inf)
        theirs: dict[str, float] = dict.fromkeys(set(PAIRS.values()), math.inf)
        tables: dict[str, dict] = {}
        events: dict[str, dict] = {}
        for r in range(repeat):
            for m in DETECTOR_ORDER:
                if m == "idt" and r > 0:
                    continue  # slow in both; once is enough
                t0 = time.perf_counter()
                tables[m] = detect_fixations(part[m], m, g)
                ours[m] = min(ours[m], time.perf_counter() - t0)
                base = PAIRS[m]
                if worker is not None and (m in ("ivt", "idt", "adaptive") or r == 0):
                    out = pm_run(base)
                    theirs[base] = min(theirs[base], out["seconds"])
                    events.setdefault(base, out)
        if worker is not None and worker.stdin:
            worker.stdin.close()
            worker.wait(timeout=60)
    print(f"{'detector':<12}{'gazelab':>10}{'pymovements':>14}{'ahead':>8}  events")
    for m in DETECTOR_ORDER:
        sec, fx, base = ours[m], tables[m], PAIRS[m]
        note = {"ivt_filter": "(vs pos2vel + ivt; merges, fills gaps)",
                "adaptive": "(vs microsaccades, its adaptive threshold)"}.get(m, "")  # fmt: skip
        if base not in events:
            print(f"{m:<12}{sec * 1e3:>8.1f} ms{'—':>14}{'—':>8}  {note}")
            continue
        same = ""
        if m in ("ivt", "idt"):
            a = np.asarray(fx["onset_ms"]), np.asarray(fx["offset_ms"])
            b = np.asarray(events[base]["onset"], float), np.asarray(events[base]["offset"], float)
            ident = len(a[0]) == len(b[0]) and bool(np.array_equal(a[0], b[0])) and bool(
                np.array_equal(a[1], b[1]))  # fmt: skip
            why = (
                ""
                if m != "idt"
                else (
                    " — by definition: pymovements grows a window while"
                    " dispersion < threshold and keeps the sample past it"
                )
            )
            same = (f"identical ({len(a[0])} fixations)" if ident else
                    f"differ: {len(a[0])} vs {len(b[0])} fixations, "
                    f"{len(set(a[0].tolist()) & set(b[0].tolist()))} onsets shared{why}")  # fmt: skip
        size = "" if m != "idt" else f" ({n_idt:,} samples, one run each)"
        print(f"{m:<12}{sec * 1e3:>8.1f} ms{theirs[base] * 1e3:>11.1f} ms"
              f"{theirs[base] / sec:>7.1f}×  {same or note}{size}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recordings", action="append", type=Path, default=[],
                    help="more folders (or files) of recordings with the tracker's events")  # fmt: skip
    ap.add_argument("--px-per-deg", type=float, default=40.0,
                    help="for recordings that do not say (EyeLink files without RES)")  # fmt: skip
    ap.add_argument("--gazepoint-screen", type=int, nargs=2, default=(1920, 1080))
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the speed trace")
    ap.add_argument("--idt-minutes", type=float, default=2.0, help="I-DT's share (both slow)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pm-python", default=os.environ.get("PYMOVEMENTS_PYTHON",
                                                          "/tmp/pmvenv/bin/python"))  # fmt: skip
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    extra = [Path(p) for p in os.environ.get("GAZELAB_RECORDINGS", "").split(os.pathsep) if p]
    dirs = [FIXTURES, *args.recordings, *extra]
    recs = list(find_recordings(dirs, tuple(args.gazepoint_screen)))
    print(f"recordings: {len(recs)} eye-recordings from {', '.join(str(d) for d in dirs)}")
    print(
        f"default detector: {DEFAULT_METHOD!r}; px/deg from each file's RES, else "
        f"{args.px_per_deg:g}"
    )
    real = agreement(recs, args.px_per_deg, "real recordings")
    fast = [r for r in recs if r.rate_hz >= 1000 and len(r.fixations) >= 5]
    semi = [degraded(r, hz, kind, seed=i) for i, r in enumerate(fast)
            for hz, kind in ((333.0, "remote"), (59.0, "consumer"))]  # fmt: skip
    if semi:
        agreement(semi, args.px_per_deg, "EyeLink resampled + simulated tracker noise")
    plausibility(dirs)
    noise_notes(recs, args.px_per_deg)
    if recs:
        # the goal is judged against each tracker's own (exported) events; the FPOGV
        # reading of a Gazepoint file is shown for comparison only
        own = [i for i, r in enumerate(recs) if not r.source.endswith("(FPOGV)")]
        k = [real[DEFAULT_METHOD][i] for i in own]
        c = [real[f"{DEFAULT_METHOD}:count"][i] for i in own]
        ok_k = min(k) >= GOAL_KAPPA
        ok_c = GOAL_COUNT[0] <= min(c) and max(c) <= GOAL_COUNT[1]
        print(f"\ndefault {DEFAULT_METHOD!r} on real recordings (the trackers' own events): "
              f"lowest κ {min(k):.2f} (goal ≥ {GOAL_KAPPA}: {'met' if ok_k else 'NOT met'}), "
              f"counts {min(c):.2f}-{max(c):.2f}× (goal {GOAL_COUNT[0]}-{GOAL_COUNT[1]}×: "
              f"{'met' if ok_c else 'NOT met'})")  # fmt: skip
        for i, kk, cc in zip(own, k, c, strict=True):
            if kk < GOAL_KAPPA or not GOAL_COUNT[0] <= cc <= GOAL_COUNT[1]:
                print(f"  not met on {label(recs[i])}: κ {kk:.2f}, count {cc:.2f}×")
    if not args.no_speed:
        speed(args.minutes, args.pm_python, args.repeat, min(args.idt_minutes, args.minutes))


if __name__ == "__main__":
    main()
