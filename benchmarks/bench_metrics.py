"""Metric and I-VT speed (issue 22), each against its reference measured in this run.

- Spearman on 560×560 maps with 90 % exact zeros: the zero block as one tie group
  vs ranking every pixel with ``scipy.stats.rankdata`` (the previous code).
- NSS vs pysaliency's form (z-score the whole map, average at the fixations).
- AUC-Judd with MIT's jitter vs without (the cost of breaking ties).
- I-VT on 10 min of 60 Hz gaze vs the previous loop over valid runs and vs a
  transcription of pymovements' core ``ivt`` (velocity threshold, then candidate
  runs checked in a Python loop).
Target: every ratio ≥ 1 (at par or faster); the Spearman ratio several-fold.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from gazelab.analysis.metrics import auc_judd, nss, spearman
from gazelab.gaze.detectors.ivt import ivt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_fixations import _ivt_loop_reference

SHAPE = (560, 560)


def best(fn, number: int = 3, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


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


def ivt_loop(t, x, y, valid, thr, min_ms):  # type: ignore[no-untyped-def]
    """The previous I-VT, a loop over valid runs (the tests keep it as the definition)."""
    return _ivt_loop_reference(t, x, y, valid, velocity_px_per_ms=thr, min_duration_ms=min_ms)


def ivt_pymovements_core(t, x, y, valid, thr, min_ms):
    """pymovements.events.detection.ivt, transcribed: velocities, a threshold mask,
    candidate runs from np.diff, then a Python loop keeping long-enough candidates."""
    vx = np.gradient(x, t)
    vy = np.gradient(y, t)
    speed = np.hypot(vx, vy)
    candidate = (speed <= thr) & valid
    edges = np.flatnonzero(np.diff(np.r_[0, candidate.astype(np.int8), 0]))
    out = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if t[b - 1] - t[a] >= min_ms:
            out.append((int(a), int(b - 1)))
    return out


def main() -> None:
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
    n = 36_000  # 10 min at 60 Hz
    t = np.arange(n) * (1000 / 60)
    jumps = np.cumsum(rng.random(n) < 0.015) * 150.0
    x = 500 + jumps % 900 + rng.normal(0, 2, n)
    y = 300 + (jumps * 0.7) % 600 + rng.normal(0, 2, n)
    valid = rng.random(n) > 0.02
    thr, min_ms = 0.6, 80.0
    assert ivt(t, x, y, valid, velocity_px_per_ms=thr, min_duration_ms=min_ms) == ivt_loop(
        t, x, y, valid, thr, min_ms
    )
    fast = best(lambda: ivt(t, x, y, valid, velocity_px_per_ms=thr, min_duration_ms=min_ms))
    loop = best(lambda: ivt_loop(t, x, y, valid, thr, min_ms), number=1)
    pym = best(lambda: ivt_pymovements_core(t, x, y, valid, thr, min_ms))
    print(f"ivt 36 000 samples: {fast * 1e3:.2f} ms; previous loop {loop * 1e3:.1f} ms "
          f"({loop / fast:.1f}x); pymovements-style core {pym * 1e3:.2f} ms "
          f"({pym / fast:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
