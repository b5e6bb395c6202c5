"""Fixation heatmaps with a hard visual-span cut-off (SPEC §5).

For fixations ``f_n = (x_n, y_n)`` the intensity of pixel ``(x, y)`` is

    I(x, y) = Σ_n w_n · exp(-((x - x_n)² + (y - y_n)²) / (2 c²)),

each term zero where the distance exceeds ``radius`` (half the visual span):
a fixation is perceived only within the span, so the contour mask ``I > 0`` is
well defined. Pixel ``(col x, row y)`` is evaluated at the coordinate
``(x, y)``: a fixation at integer ``(3, 4)`` peaks at ``heatmap[4, 3]``.

The Gaussian is separable and vanishes outside a disk, so each fixation only
touches the pixels of its disk and needs ``2·(2r+1)`` exponentials instead of a
full-frame ``exp``. The accumulation loop is compiled with numba (one pass over
the disk pixels; numpy would need three passes over the bounding box), each row's
chord as one vectorised ``row += g_y · g_x`` (:func:`_axpy`);
``benchmarks/bench_heatmaps.py`` measures it against the naive sum, one ``np.add`` pass
over the frame and PyGaze Analyser's cached-patch method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from gazelab.gaze.geometry import DisplayGeometry, gaussian_c, visual_span_px


@dataclass(frozen=True)
class HeatmapKernel:
    """Gaussian width ``c`` and cut-off ``radius``, pixels, of one fixation's term."""

    c: float
    radius: float

    @classmethod
    def from_geometry(
        cls, geometry: DisplayGeometry, span_deg: float = 5.0, fwhm_fraction: float = 0.4
    ) -> HeatmapKernel:
        """The kernel in screen/stimulus pixels: c = 0.4·span/2.3548, radius = span/2."""
        span = visual_span_px(geometry, span_deg)
        return cls(c=gaussian_c(span, fwhm_fraction), radius=span / 2.0)

    def scaled(self, factor: float) -> HeatmapKernel:
        """The same kernel in a frame ``factor`` times as many pixels wide (e.g. image px)."""
        return HeatmapKernel(c=self.c * factor, radius=self.radius * factor)


def fixation_heatmap(
    points_xy: ArrayLike,
    shape: tuple[int, int],
    c: float,
    radius: float,
    weights: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Sum of span-limited Gaussians centred on fixations.

    Parameters
    ----------
    points_xy : (N, 2) array_like
        Fixation positions ``(x, y)``, pixels of the output frame. Points off
        the frame still contribute where their disk overlaps it.
    shape : (int, int)
        Output ``(H, W)``.
    c : float
        Gaussian width, pixels (``gaussian_c``).
    radius : float
        Cut-off distance, pixels: each term is zero where ``d > radius``.
    weights : (N,) array_like, optional
        Per-fixation weights (e.g. durations); default 1.

    Returns
    -------
    (H, W) float64
        The heatmap; a single fixation peaks at its weight.
    """
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"heatmap shape {shape!r} must be positive")
    if not (np.isfinite(c) and c > 0):
        raise ValueError(f"Gaussian width c = {c!r} must be a positive number")
    if not (np.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius = {radius!r} must be a non-negative number")
    if not np.all(np.isfinite(pts)):
        raise ValueError("fixation coordinates contain NaN or inf; drop invalid fixations first")
    wts = np.ones(len(pts)) if weights is None else np.asarray(weights, dtype=np.float64)
    if wts.shape != (len(pts),):
        raise ValueError(f"weights has shape {wts.shape}, expected ({len(pts)},)")

    out = np.zeros((h, w), dtype=np.float64)
    _accumulate(out, pts, wts, float(c), float(radius))
    return out


@njit(cache=True, nogil=True)
def _accumulate(
    out: NDArray[np.float64],
    pts: NDArray[np.float64],
    wts: NDArray[np.float64],
    c: float,
    radius: float,
) -> None:  # pragma: no cover - compiled
    h, w = out.shape
    inv2c2 = 1.0 / (2.0 * c * c)
    r2 = radius * radius
    for n in range(pts.shape[0]):
        x0, y0, wt = pts[n, 0], pts[n, 1], wts[n]
        xa = max(math.ceil(x0 - radius), 0)
        xb = min(math.floor(x0 + radius), w - 1)
        ya = max(math.ceil(y0 - radius), 0)
        yb = min(math.floor(y0 + radius), h - 1)
        if xa > xb or ya > yb:
            continue
        nx = xb - xa + 1
        dx2 = np.empty(nx)
        gx = np.empty(nx)
        for i in range(nx):
            d = xa + i - x0
            dx2[i] = d * d
            gx[i] = math.exp(-d * d * inv2c2)
        for y in range(ya, yb + 1):
            dy = y - y0
            lim = r2 - dy * dy
            if lim < 0.0:
                continue
            gy = wt * math.exp(-dy * dy * inv2c2)
            # the row's chord, widened by a pixel, then trimmed by the exact test
            # d² <= r² - dy², so the inner loop is branch-free (SIMD)
            half = math.sqrt(lim)
            lo = max(math.ceil(x0 - half) - 1 - xa, 0)
            hi = min(math.floor(x0 + half) + 1 - xa, nx - 1)
            while lo <= hi and dx2[lo] > lim:
                lo += 1
            while hi >= lo and dx2[hi] > lim:
                hi -= 1
            if lo <= hi:
                _axpy(out[y, xa + lo : xa + hi + 1], gx[lo : hi + 1], gy)


@njit(cache=True, nogil=True)
def _axpy(row: NDArray[np.float64], g: NDArray[np.float64], a: float) -> None:  # pragma: no cover
    # ``row += a * g`` in place. A loop from 0 over equal-length slices: LLVM then knows the
    # index is never negative (no wrap-around branch) and vectorises it (AVX), which an
    # index from ``lo`` into the full row did not allow; the sum is the same, bit for bit.
    for i in range(row.shape[0]):
        row[i] += a * g[i]


def fixation_heatmap_naive(
    points_xy: ArrayLike,
    shape: tuple[int, int],
    c: float,
    radius: float,
    weights: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Reference implementation: one full-frame ``exp`` per fixation. For tests/benchmarks."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    wts = np.ones(len(pts)) if weights is None else np.asarray(weights, dtype=np.float64)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    out = np.zeros(shape, dtype=np.float64)
    for (x0, y0), wt in zip(pts, wts, strict=True):
        d2 = (xx - x0) ** 2 + (yy - y0) ** 2
        out += np.where(d2 <= radius * radius, wt * np.exp(-d2 / (2.0 * c * c)), 0.0)
    return out


def contour_mask(heatmap: ArrayLike) -> NDArray[np.bool_]:
    """Pixels inside the heatmap's contour: ``heatmap > 0`` (SPEC §5)."""
    return np.asarray(heatmap) > 0


def resample_heatmap(heatmap: ArrayLike, shape: tuple[int, int]) -> NDArray[np.float64]:
    """Bilinear resampling to ``shape`` with pixel centres aligned (area-true frames).

    Used to bring stimulus-frame heatmaps to image or model-input resolution.
    Values never go negative; the contour grows by at most one target pixel.
    """
    src = np.asarray(heatmap, dtype=np.float64)
    sh, sw = src.shape
    th, tw = int(shape[0]), int(shape[1])
    if (th, tw) == (sh, sw):
        return src.copy()
    ys = (np.arange(th) + 0.5) * (sh / th) - 0.5
    xs = (np.arange(tw) + 0.5) * (sw / tw) - 0.5
    if th < sh or tw < sw:
        # Downsampling: average over the source footprint first so that thin
        # supports are not skipped between target pixel centres.
        # (A plain correlation, not uniform_filter: its running sums leak round-off
        # into the zero region, and the contour I > 0 must stay exact.)
        for axis, n in ((0, max(1, round(sh / th))), (1, max(1, round(sw / tw)))):
            if n > 1:
                src = ndimage.correlate1d(src, np.full(n, 1.0 / n), axis=axis, mode="nearest")
    grid = np.meshgrid(ys, xs, indexing="ij")
    res = ndimage.map_coordinates(src, grid, order=1, mode="nearest")
    return np.maximum(res, 0.0)
