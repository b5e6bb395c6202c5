"""Heatmap speed: 50 and 200 fixations on the 1200×1200 stimulus frame.

Prints, measured in this run on this machine:

- the largest difference from the naive full-frame sum (goal ≤ 1e-9) and the speed-up
  over it (goal ≥ 30×);
- the time as a ratio to one full-frame ``np.add`` pass (goal ≤ 2× at 50 fixations);
- the ratio to PyGaze Analyser's method (``gazeplotter.draw_heatmap``: one Gaussian patch
  computed once, added at each fixation's rounded position into a padded frame), here
  with the same kernel and disk cut-off (goal < 1× at 50 and 200 fixations).
"""

from __future__ import annotations

import math
import timeit
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.heatmaps import HeatmapKernel, fixation_heatmap, fixation_heatmap_naive

SHAPE = (1200, 1200)


def best(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def pygaze_heatmap(
    pts: NDArray[np.float64], shape: tuple[int, int], c: float, radius: float
) -> NDArray[np.float64]:
    """PyGaze Analyser's cached-patch heatmap (its ``draw_heatmap`` loop), same kernel."""
    size = 2 * math.floor(radius) + 1
    half = size // 2
    yy, xx = np.mgrid[0:size, 0:size] - half
    d2 = xx**2 + yy**2
    patch = np.where(d2 <= radius * radius, np.exp(-d2 / (2.0 * c * c)), 0.0)
    h, w = shape
    frame = np.zeros((h + 2 * half, w + 2 * half))
    for x, y in pts:
        xi, yi = round(x), round(y)
        frame[yi : yi + size, xi : xi + size] += patch
    return frame[half : h + half, half : w + half]


def main() -> None:
    k = HeatmapKernel.from_geometry(DisplayGeometry.from_diagonal())
    a, b = np.ones(SHAPE), np.ones(SHAPE)
    fixation_heatmap(np.zeros((1, 2)), SHAPE, k.c, k.radius)  # compile / load the cache first
    print(f"kernel: c = {k.c:.2f} px, radius = {k.radius:.1f} px, frame {SHAPE[0]}×{SHAPE[1]}")
    for n in (50, 200):
        pts = np.random.default_rng(0).uniform(100, 1100, size=(n, 2))
        fast = best(lambda p=pts: fixation_heatmap(p, SHAPE, k.c, k.radius), number=5, repeat=15)
        pyg = best(lambda p=pts: pygaze_heatmap(p, SHAPE, k.c, k.radius), number=3, repeat=9)
        add = best(lambda: np.add(a, b), number=20, repeat=15)
        naive_map = fixation_heatmap_naive(pts, SHAPE, k.c, k.radius)
        diff = np.abs(fixation_heatmap(pts, SHAPE, k.c, k.radius) - naive_map).max()
        print(f"{n} fixations: heatmap {fast * 1e3:.2f} ms; max abs difference from the naive"
              f" sum {diff:.2e} (goal <= 1e-9)")  # fmt: skip
        if n == 50:
            naive = best(lambda p=pts: fixation_heatmap_naive(p, SHAPE, k.c, k.radius), 1, 2)
            print(f"  naive full-frame sum {naive * 1e3:.1f} ms: speed-up {naive / fast:.1f}x"
                  " (goal >= 30x)")  # fmt: skip
            print(f"  one full-frame np.add {add * 1e3:.2f} ms: heatmap / np.add ="
                  f" {fast / add:.2f}x (goal <= 2x)")  # fmt: skip
        print(f"  PyGaze Analyser's cached patch {pyg * 1e3:.2f} ms: heatmap / PyGaze ="
              f" {fast / pyg:.2f}x (goal < 1x)")  # fmt: skip


if __name__ == "__main__":
    main()
