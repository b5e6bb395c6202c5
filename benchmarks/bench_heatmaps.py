"""Heatmap speed (issue 4): 50 fixations on the 1200×1200 stimulus frame.

Prints the speed-up of :func:`fixation_heatmap` over the naive full-frame sum
(target ≥ 30×), the largest difference between them (target ≤ 1e-9), and the
time as a ratio to one full-frame ``np.add`` pass (target ≤ 3×), all measured
in this run on this machine.
"""

from __future__ import annotations

import timeit

import numpy as np

from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.heatmaps import HeatmapKernel, fixation_heatmap, fixation_heatmap_naive

SHAPE = (1200, 1200)


def best(fn, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main() -> None:
    k = HeatmapKernel.from_geometry(DisplayGeometry.from_diagonal())
    rng = np.random.default_rng(0)
    pts = rng.uniform(100, 1100, size=(50, 2))
    fixation_heatmap(pts, SHAPE, k.c, k.radius)  # compile (or load the cached build) first
    fast = best(lambda: fixation_heatmap(pts, SHAPE, k.c, k.radius), number=5, repeat=15)
    naive = best(lambda: fixation_heatmap_naive(pts, SHAPE, k.c, k.radius), number=1, repeat=2)
    a, b = np.ones(SHAPE), np.ones(SHAPE)
    add = best(lambda: np.add(a, b), number=20, repeat=15)
    diff = np.abs(
        fixation_heatmap(pts, SHAPE, k.c, k.radius)
        - fixation_heatmap_naive(pts, SHAPE, k.c, k.radius)
    ).max()
    print(
        f"heatmap, 50 fixations, {SHAPE[0]}×{SHAPE[1]}: {fast * 1e3:.2f} ms "
        f"(c = {k.c:.2f} px, radius = {k.radius:.1f} px)"
    )
    print(f"naive full-frame sum: {naive * 1e3:.1f} ms")
    print(f"speed-up vs naive: {naive / fast:.1f}x (target >= 30x)")
    print(f"max abs difference: {diff:.2e} (target <= 1e-9)")
    print(
        f"one full-frame np.add: {add * 1e3:.2f} ms; heatmap / np.add = {fast / add:.2f}x (target <= 3x)"
    )


if __name__ == "__main__":
    main()
