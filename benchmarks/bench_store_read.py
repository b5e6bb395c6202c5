"""Reading a session's gaze trial by trial (it was quadratic in the trials before the trial index).

Builds one session of ``--trials`` trials (blank/cross/blank then ~2 s of image at
``--rate`` Hz, samples tagged with their trial) and times, in the same run:

1. the old read: one ``samples(session, trial)`` query per trial on the store
   without the v3 ``(session_id, trial_index, local_s)`` index (dropped from a copy),
   which scans the whole session for every trial;
2. the same per-trial queries with the index;
3. ``samples_by_trial``: the session read once and split by trial.

Prints milliseconds per trial and the ratios old / new.

    python benchmarks/bench_store_read.py [--trials 600] [--rate 60]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from gazelab.annotation.store import SessionStore
from gazelab.gaze.trackers.base import GazeSample
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=600)
    ap.add_argument("--rate", type=int, default=60)
    args = ap.parse_args()
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
