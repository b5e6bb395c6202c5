"""Reading a session's gaze trial by trial (it was quadratic in the trials before the trial index).

Builds one session of ``--trials`` trials (blank/cross/blank then ~2 s of image at
``--rate`` Hz, samples tagged with their trial) and times, in the same run:

1. the old read: one ``samples(session, trial)`` query per trial on the store
   without the v3 ``(session_id, trial_index, local_s)`` index (dropped from a copy),
   which scans the whole session for every trial;
2. the same per-trial queries with the index;
3. ``samples_by_trial``: the session read once and split by trial.

Prints milliseconds per trial and the ratios old / new. Then, on one session of
``--samples`` samples (500 Hz, 10 % NULLs in the float columns, trials and phases),
the whole session read two ways in the same run:

4. the old read (:func:`read_rows_old`): every row fetched as a Python tuple, then one
   array per column;
5. ``samples()``: the phase read as a number, each chunk of rows one float array.

Both give the same arrays (checked bit for bit here; tests/test_store_read.py too).

    python benchmarks/bench_store_read.py [--trials 600] [--rate 60] [--samples 2000000]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gazelab.annotation.store import SessionStore
from gazelab.gaze.trackers.base import SAMPLE_FIELDS, GazeSample
from gazelab.settings import Settings


def build(path: Path, trials: int, rate: int) -> int:
    with SessionStore(path, create=True) as store:
        rec = store.create_session(
            "P01",
            settings_toml=Settings().to_toml(),
            seed=0,
            image_source="synthetic",
            stimulus_order=[f"img{i}" for i in range(trials)],
            start_local_s=0.0,
        )
        t = 0.0
        dt = 1.0 / rate
        for ti in range(trials):
            batch = []
            for phase, dur in (("blank1", 0.5), ("cross", 0.2), ("blank2", 0.5), ("image", 2.0)):
                for _ in range(round(dur * rate)):
                    s = GazeSample(time_ms=t * 1000, local_s=t, x=640.0, y=360.0, fix=True)
                    batch.append((s, ti, phase))
                    t += dt
            store.add_tagged_samples(rec.id, batch)
        return rec.id


def per_trial(path: Path, sid: int, trials: int) -> float:
    with SessionStore(path) as store:
        t0 = time.perf_counter()
        n = sum(len(store.samples(sid, ti)["x"]) for ti in range(trials))
        dt = time.perf_counter() - t0
    assert n > 0
    return dt


def once(path: Path, sid: int) -> float:
    with SessionStore(path) as store:
        t0 = time.perf_counter()
        tables = store.samples_by_trial(sid)
        dt = time.perf_counter() - t0
    assert tables
    return dt


def build_flat(path: Path, n: int) -> int:
    """One session of ``n`` samples at 500 Hz written as columns (the importers' way)."""
    rng = np.random.default_rng(0)
    with SessionStore(path, create=True) as store:
        rec = store.create_session("P01", settings_toml=Settings().to_toml(), seed=0,
                                   image_source="synthetic", stimulus_order=["a"],
                                   start_local_s=0.0)  # fmt: skip
        step = 250_000
        for a in range(0, n, step):
            k = np.arange(a, min(a + step, n))
            t = k / 500.0
            cols: list[list[Any]] = []
            for f in SAMPLE_FIELDS:
                if f in ("time_ms", "local_s"):
                    cols.append((t * 1000.0 if f == "time_ms" else t).tolist())
                elif f in ("fix", "valid"):
                    cols.append((rng.random(k.size) < 0.8).tolist())
                elif f == "state":
                    cols.append([0] * k.size)
                else:
                    v = rng.normal(640.0, 200.0, k.size)
                    v[rng.random(k.size) < 0.1] = np.nan
                    cols.append([None if x != x else x for x in v.tolist()])
            trial = (k // 2500).tolist()
            phase = ["image" if j % 2500 >= 600 else "blank1" for j in k.tolist()]
            store.add_sample_columns(rec.id, trial, phase, cols)
        return rec.id


def read_rows_old(
    path: Path,
    session_id: int,
    trial_index: int | None = None,
    *,
    since_local_s: float | None = None,
    phase: str | None = None,
) -> dict[str, np.ndarray]:
    """The previous ``samples()``, with its filters: every row a Python tuple, then one
    array per column (the reference tests/test_store_read.py checks ``samples()`` against)."""
    cols = ("trial_index", "phase", *SAMPLE_FIELDS)
    sql = f"SELECT {', '.join(cols)} FROM gaze_samples WHERE session_id = ?"
    params: list[Any] = [session_id]
    for name, value, test in (("trial_index", trial_index, "="),
                              ("local_s", since_local_s, ">="), ("phase", phase, "=")):  # fmt: skip
        if value is not None:
            sql += f" AND {name} {test} ?"
            params.append(value)
    db = sqlite3.connect(path)
    rows = db.execute(sql + " ORDER BY local_s, rowid", params).fetchall()
    db.close()
    table: dict[str, np.ndarray] = {}
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    for name, values in zip(cols, columns, strict=True):
        if name == "phase":
            table[name] = np.array(values, dtype=object)
        elif name in ("fix", "valid"):
            table[name] = np.array(values, dtype=bool)
        elif name == "state":
            table[name] = np.array(values, dtype=np.int64)
        elif name == "trial_index":
            table[name] = np.array([-1 if v is None else v for v in values], dtype=np.int64)
        else:
            table[name] = np.array(values, dtype=np.float64)
    return table


def whole_session(n: int) -> None:
    """Lines 4 and 5 of the module's list: the old row-tuple read against ``samples()``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flat.sqlite"
        t0 = time.perf_counter()
        sid = build_flat(path, n)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        old = read_rows_old(path, sid)
        t_old = time.perf_counter() - t0
        with SessionStore(path) as store:
            t0 = time.perf_counter()
            new = store.samples(sid)
            t_new = time.perf_counter() - t0
    same = list(old) == list(new) and all(
        o.dtype == new[k].dtype
        and (
            np.array_equal(o.view(np.int64), new[k].view(np.int64))
            if o.dtype == np.float64
            else o.tolist() == new[k].tolist()
        )
        for k, o in old.items()
    )
    print(f"whole session of {n} samples (built in {t_build:.1f} s), same arrays: {same}")
    print(f"old read (row tuples):  {t_old:7.2f} s  {t_old / n * 1e9:6.0f} ns/sample")
    print(f"samples() (columnar):   {t_new:7.2f} s  {t_new / n * 1e9:6.0f} ns/sample")
    print(f"ratio old / new = {t_old / t_new:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=600)
    ap.add_argument("--rate", type=int, default=60)
    ap.add_argument("--samples", type=int, default=2_000_000,
                    help="samples of the whole-session read (0: skip it)")  # fmt: skip
    args = ap.parse_args()
    if args.samples > 0:
        whole_session(args.samples)
    if args.trials <= 0:
        return
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp) / "new.sqlite"
        sid = build(new, args.trials, args.rate)
        old = Path(tmp) / "old.sqlite"
        with SessionStore(new):
            pass  # checkpoint the WAL into the file before copying it
        shutil.copy(new, old)
        db = sqlite3.connect(old)
        db.execute("DROP INDEX gaze_samples_trial")
        db.commit()
        db.close()
        with SessionStore(new) as store:
            n = store.sample_count(sid)
        t_old = per_trial(old, sid, args.trials)
        t_new = per_trial(new, sid, args.trials)
        t_once = once(new, sid)
    k = 1000.0 / args.trials
    print(f"{args.trials} trials, {n} samples at {args.rate} Hz")
    print(f"old per-trial query (no trial index): {t_old * k:8.2f} ms/trial  {t_old:7.2f} s")
    print(f"per-trial query with trial index:     {t_new * k:8.2f} ms/trial  {t_new:7.2f} s")
    print(f"samples_by_trial (one read):          {t_once * k:8.2f} ms/trial  {t_once:7.2f} s")
    print(f"ratio old / indexed = {t_old / t_new:.1f}x   old / one read = {t_old / t_once:.1f}x")


if __name__ == "__main__":
    main()
