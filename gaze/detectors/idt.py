"""I-DT: dispersion-threshold identification (Salvucci & Goldberg 2000), docs/algorithms.md#fixations."""

from __future__ import annotations

import numpy as np

from gazelab.gaze.fixations import (
    SampleArrays,
    Segments,
    Thresholds,
    axis_scales,
    px_per_deg_xy,
    register_detector,
    to_degrees,
    valid_runs,
)
from gazelab.gaze.geometry import DisplayGeometry


def idt(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    *,
    dispersion_px: float,
    min_duration_ms: float,
) -> Segments:
    """Dispersion-threshold identification.

    A window of at least ``min_duration_ms`` whose dispersion
    ``(max x - min x) + (max y - min y)`` is at most ``dispersion_px`` is grown
    while the dispersion stays under the threshold; it becomes a fixation. ``x``, ``y``
    and ``dispersion_px`` may be in any one unit (the ``idt`` detector passes degrees on
    non-square pixels: each axis over its own pixels per degree).
    """
    out: list[tuple[int, int]] = []
    for start, stop in valid_runs(valid):
        i = start
        while i < stop:
            # smallest window covering the minimum duration
            j = int(np.searchsorted(t[i:stop], t[i] + min_duration_ms, side="left")) + i
            if j >= stop:
                break
            xs, ys = x[i : j + 1], y[i : j + 1]
            if (xs.max() - xs.min()) + (ys.max() - ys.min()) > dispersion_px:
                i += 1
                continue
            xmin, xmax, ymin, ymax = xs.min(), xs.max(), ys.min(), ys.max()
            while j + 1 < stop:
                nx, ny = x[j + 1], y[j + 1]
                d = (max(xmax, nx) - min(xmin, nx)) + (max(ymax, ny) - min(ymin, ny))
                if d > dispersion_px:
                    break
                xmin, xmax, ymin, ymax = min(xmin, nx), max(xmax, nx), min(ymin, ny), max(ymax, ny)
                j += 1
            out.append((i, j))
            i = j + 1
    return out


@register_detector("idt", "dispersion ≤ dispersion_deg over ≥ min_duration_ms")
def detect(s: SampleArrays, geometry: DisplayGeometry, th: Thresholds) -> Segments:
    scales = axis_scales(px_per_deg_xy(geometry))
    if scales is None:  # square pixels: dispersion in screen px
        x, y, limit = s.x, s.y, geometry.deg_to_px(th.dispersion_deg)
    else:  # non-square pixels: x and y each in degrees, the same threshold in degrees
        x, y = to_degrees(s.x, s.y, scales)
        limit = geometry.deg_to_px(th.dispersion_deg) / geometry.px_per_deg()
    return idt(s.time_ms, x, y, s.valid, dispersion_px=limit, min_duration_ms=th.min_duration_ms)
