"""Metric and I-VT speed, each against its reference measured in this run.

- Spearman on 560×560 maps with 90 % exact zeros: the zero block as one tie group
  vs ranking every pixel with ``scipy.stats.rankdata`` (the previous code).
- NSS vs pysaliency's form (z-score the whole map, average at the fixations).
- AUC-Judd with MIT's jitter vs without (the cost of breaking ties), and against a
  literal loop of MIT's ``AUC_Judd.m`` (one pass over the map per fixated pixel, the
  jitter drawn in each call as the reference does) at 1 to 2,000 fixated pixels:
  identical values, ahead at every count by at least x1.2. Both draw the same 313,600
  jitter values per call (PCG64, ~1 ms: the floor of either); the reference then scales
  and copies the whole map twice more (Fortran-order ravel) and sums a fresh boolean
  map per threshold, ours scales only the fixated pixels and counts into one buffer
  (or binary-searches each pixel among the thresholds, above 400 of them).
(The detectors' speed against pymovements is in bench_fixations.py.)
Target: every ratio ≥ 1 (at par or faster); the Spearman ratio several-fold.
"""

from __future__ import annotations

import os
import sys
import time
import timeit
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from gazelab.analysis.metrics import auc_judd, nss, spearman

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPE = (560, 560)


def best(fn, number: int = 3, repeat: int = 5) -> float:
    """Best of ``repeat`` runs, process CPU seconds per call (steadier than wall time on a
    machine other processes load)."""
    runs = timeit.repeat(fn, number=number, repeat=repeat, timer=time.process_time)
    return min(runs) / number


def truncated(rng: np.random.Generator, zero: float = 0.9) -> np.ndarray:
    m = rng.gamma(2.0, size=SHAPE)
    m[rng.random(SHAPE) < zero] = 0.0
    return m


def spearman_all_pixels(a: np.ndarray, b: np.ndarray) -> float:
    ra = rankdata(a.ravel(), method="average")
    rb = rankdata(b.ravel(), method="average")
    return float(np.corrcoef(ra, rb)[0, 1])


def nss_pysaliency(s: np.ndarray, fix: np.ndarray) -> float:
    z = (s - s.mean()) / s.std()
    return float(z[fix > 0].mean())


def main() -> None:
    print(f"(process CPU time, best of several runs; 1-min load average {os.getloadavg()[0]:.2f}"
          f" on {os.cpu_count()} cores)")  # fmt: skip
    rng = np.random.default_rng(0)
    a, b = truncated(rng), truncated(rng)
    fix = (rng.random(SHAPE) < 0.001).astype(np.uint8)
    assert abs(spearman(a, b) - spearman_all_pixels(a, b)) < 1e-12
    fast = best(lambda: spearman(a, b))
    ref = best(lambda: spearman_all_pixels(a, b))
    print(f"spearman 560x560, 90 % zeros: {fast * 1e3:.1f} ms vs {ref * 1e3:.1f} ms ranking "
          f"every pixel: {ref / fast:.1f}x")  # fmt: skip
    fast = best(lambda: nss(a, fix), number=10)
    ref = best(lambda: nss_pysaliency(a, fix), number=10)
    print(f"nss 560x560: {fast * 1e3:.2f} ms vs {ref * 1e3:.2f} ms pysaliency form: "
          f"{ref / fast:.2f}x")  # fmt: skip
    on = best(lambda: auc_judd(a, fix))
    off = best(lambda: auc_judd(a, fix, jitter=False))
    print(f"auc_judd 560x560: {on * 1e3:.1f} ms with MIT's jitter, {off * 1e3:.1f} ms "
          f"without ({on / off:.2f}x the cost); values {auc_judd(a, fix):.3f} vs "
          f"{auc_judd(a, fix, jitter=False):.3f}")  # fmt: skip
    # AUC-Judd against a literal loop of MIT's AUC_Judd.m (one pass over the map per
    # fixated pixel), the same jitter (seed 0), at every number of fixated pixels
    from gazelab.tests.test_metrics import _mit_auc_judd

    s01 = (a - a.min()) / (a.max() - a.min())
    noise = np.random.default_rng(0).random(SHAPE)
    print("auc_judd 560x560 with MIT's jitter vs a literal loop of AUC_Judd.m (goal: ahead by"
          " >= x1.2 at every number of fixated pixels, identical values):")  # fmt: skip
    ahead = True
    for n_fix in (1, 5, 20, 100, 500, 2000):
        f = np.zeros(SHAPE, dtype=np.uint8)
        f.flat[np.random.default_rng(n_fix).choice(f.size, n_fix, replace=False)] = 1
        ours, ref = auc_judd(s01, f, seed=0), _mit_auc_judd(s01, f, noise)
        assert abs(ours - ref) < 1e-12, (n_fix, ours, ref)
        fast = best(lambda f=f: auc_judd(s01, f, seed=0), number=3, repeat=3)
        slow = best(lambda f=f: _mit_auc_judd(s01, f, np.random.default_rng(0).random(SHAPE)),
                    number=1, repeat=3)  # fmt: skip
        ahead &= slow >= 1.2 * fast
        print(f"  {n_fix:5d} fixated px: {fast * 1e3:7.2f} ms vs MIT loop {slow * 1e3:8.2f} ms:"
              f" x{slow / fast:.2f}; AUC {ours:.6f} = {ref:.6f}")  # fmt: skip
    print(f"  ahead by >= x1.2 at every count: {'yes' if ahead else 'NO'}")


if __name__ == "__main__":
    main()
