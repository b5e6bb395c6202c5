"""Fixation heatmaps with a hard visual-span cut-off (docs/algorithms.md#heatmaps).

For fixations ``f_n = (x_n, y_n)`` the intensity of pixel ``(x, y)`` is

    I(x, y) = Σ_n w_n · exp(-((x - x_n)² + (y - y_n)²) / (2 c²)),

each term zero where the distance exceeds ``radius`` (half the visual span):
a fixation is perceived only within the span, so the contour mask ``I > 0`` is
well defined. On non-square pixels (or an image scaled differently in x and y) the
kernel, a circle in degrees, is an ellipse in pixels: ``c_x, c_y`` and ``r_x, r_y``,

    I(x, y) = Σ_n w_n · exp(-((x - x_n)² / (2 c_x²) + (y - y_n)² / (2 c_y²))),

zero outside ``((x - x_n)/r_x)² + ((y - y_n)/r_y)² ≤ 1``
(:meth:`HeatmapKernel.from_placement`); equal widths take the circle's own path,
unchanged. Pixel ``(col x, row y)`` is evaluated at the coordinate
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

from gazelab.gaze.geometry import (
    DisplayGeometry,
    StimulusPlacement,
    gaussian_c,
    visual_span_px,
)


@dataclass(frozen=True)
class HeatmapKernel:
    """Gaussian width ``c`` and cut-off ``radius``, pixels, of one fixation's term.

    Circular in degrees of visual angle, so elliptical in pixels when a pixel is not as
    high as it is wide (or an image is scaled differently in x and y): then ``c`` and
    ``radius`` are the x values and ``c_y``, ``radius_y`` the y values (``None``: the same
    as x, a circle).
    """

    c: float
    radius: float
    c_y: float | None = None
    radius_y: float | None = None

    @classmethod
    def from_geometry(
        cls, geometry: DisplayGeometry, span_deg: float = 5.0, fwhm_fraction: float = 0.4
    ) -> HeatmapKernel:
        """The kernel in screen/stimulus pixels: c = 0.4·span/2.3548, radius = span/2."""
        span = visual_span_px(geometry, span_deg)
        return cls(c=gaussian_c(span, fwhm_fraction), radius=span / 2.0)

    @classmethod
    def from_placement(
        cls, placement: StimulusPlacement, span_deg: float = 5.0, fwhm_fraction: float = 0.4
    ) -> HeatmapKernel:
        """The kernel in screen pixels of a placement: the span in x and in y,
        ``2 d tan(span/2) / mm_per_px``, gives ``c_x, c_y`` (0.4·span/2.3548) and
        ``r_x, r_y`` (span/2); circular when the pixels are square."""
        sx, sy = placement.px_per_deg_xy(span_deg)
        if sx == sy:
            return cls(c=gaussian_c(sx, fwhm_fraction), radius=sx / 2.0)
        return cls(gaussian_c(sx, fwhm_fraction), sx / 2.0, gaussian_c(sy, fwhm_fraction), sy / 2.0)

    @property
    def circular(self) -> bool:
        """Whether the kernel is a circle in pixels (``c_y``/``radius_y`` equal to x's)."""
        return (self.c_y is None or self.c_y == self.c) and (
            self.radius_y is None or self.radius_y == self.radius
        )

    @property
    def c_xy(self) -> tuple[float, float]:
        """``(c_x, c_y)``, pixels."""
        return (self.c, self.c if self.c_y is None else self.c_y)

    @property
    def radius_xy(self) -> tuple[float, float]:
        """``(r_x, r_y)``, pixels."""
        return (self.radius, self.radius if self.radius_y is None else self.radius_y)

    def scaled(self, factor: float, factor_y: float | None = None) -> HeatmapKernel:
        """The same kernel in a frame ``factor`` times as many pixels wide (and
        ``factor_y`` as high; default the same), e.g. image px."""
        if factor_y is None and self.circular:
            return HeatmapKernel(c=self.c * factor, radius=self.radius * factor)
        fy = factor if factor_y is None else factor_y
        (cx, cy), (rx, ry) = self.c_xy, self.radius_xy
        return HeatmapKernel(cx * factor, rx * factor, cy * fy, ry * fy)

    def for_image(self, placement: StimulusPlacement) -> HeatmapKernel:
        """This screen-pixel kernel in the original image's pixels of ``placement``."""
        sx, sy = placement.scale_xy
        if sx == sy:
            return self.scaled(1.0 / sx)
        return self.scaled(1.0 / sx, 1.0 / sy)

    def area_circle(self) -> HeatmapKernel:
        """A circle of the same area (``√(c_x c_y)``, ``√(r_x r_y)``); itself when circular.
        For consumers that carry a single ``(c, radius)``."""
        if self.circular:
            return HeatmapKernel(self.c, self.radius)
        (cx, cy), (rx, ry) = self.c_xy, self.radius_xy
        return HeatmapKernel(math.sqrt(cx * cy), math.sqrt(rx * ry))

    def heatmap(
        self, points_xy: ArrayLike, shape: tuple[int, int], weights: ArrayLike | None = None
    ) -> NDArray[np.float64]:
        """:func:`fixation_heatmap` with this kernel (elliptical when it is)."""
        if self.circular:
            return fixation_heatmap(points_xy, shape, self.c, self.radius, weights)
        (cx, cy), (rx, ry) = self.c_xy, self.radius_xy
        return fixation_heatmap(points_xy, shape, cx, rx, weights, c_y=cy, radius_y=ry)


def fixation_heatmap(
    points_xy: ArrayLike,
    shape: tuple[int, int],
    c: float,
    radius: float,
    weights: ArrayLike | None = None,
    *,
    c_y: float | None = None,
    radius_y: float | None = None,
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
    c_y, radius_y : float, optional
        The Gaussian width and cut-off in y when they differ from x's (non-square
        pixels): then ``c``/``radius`` are the x values, each term is
        ``exp(-(dx²/2c² + dy²/2c_y²))`` and zero outside the ellipse
        ``(dx/radius)² + (dy/radius_y)² > 1``. Equal to x's (or ``None``): the circle.

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
    cy = c if c_y is None else c_y
    ry = radius if radius_y is None else radius_y
    if cy == c and ry == radius:
        _accumulate(out, pts, wts, float(c), float(radius))
        return out
    if not (np.isfinite(cy) and cy > 0):
        raise ValueError(f"Gaussian width in y c_y = {cy!r} must be a positive number")
    if not (np.isfinite(ry) and ry >= 0):
        raise ValueError(f"radius in y = {ry!r} must be a non-negative number")
    _accumulate_ellipse(out, pts, wts, float(c), float(cy), float(radius), float(ry))
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
def _accumulate_ellipse(
    out: NDArray[np.float64],
    pts: NDArray[np.float64],
    wts: NDArray[np.float64],
    cx: float,
    cy: float,
    rx: float,
    ry: float,
) -> None:  # pragma: no cover - compiled
    # As _accumulate, with the ellipse (dx/rx)² + (dy/ry)² <= 1 as the cut-off: row y's
    # chord is |dx| <= rx·√(1 - (dy/ry)²), tested exactly as dx²/rx² <= 1 - dy²/ry².
    h, w = out.shape
    inv2cx2 = 1.0 / (2.0 * cx * cx)
    inv2cy2 = 1.0 / (2.0 * cy * cy)
    for n in range(pts.shape[0]):
        x0, y0, wt = pts[n, 0], pts[n, 1], wts[n]
        xa = max(math.ceil(x0 - rx), 0)
        xb = min(math.floor(x0 + rx), w - 1)
        ya = max(math.ceil(y0 - ry), 0)
        yb = min(math.floor(y0 + ry), h - 1)
        if xa > xb or ya > yb or rx <= 0.0 or ry <= 0.0:
            if rx == 0.0 and ry == 0.0 and xa == xb and ya == yb:
                out[ya, xa] += wt  # a zero-size kernel: the point's own pixel
            continue
        nx = xb - xa + 1
        ux2 = np.empty(nx)
        gx = np.empty(nx)
        for i in range(nx):
            d = xa + i - x0
            ux2[i] = (d / rx) * (d / rx)
            gx[i] = math.exp(-d * d * inv2cx2)
        for y in range(ya, yb + 1):
            dy = y - y0
            lim = 1.0 - (dy / ry) * (dy / ry)
            if lim < 0.0:
                continue
            gy = wt * math.exp(-dy * dy * inv2cy2)
            half = rx * math.sqrt(lim)
            lo = max(math.ceil(x0 - half) - 1 - xa, 0)
            hi = min(math.floor(x0 + half) + 1 - xa, nx - 1)
            while lo <= hi and ux2[lo] > lim:
                lo += 1
            while hi >= lo and ux2[hi] > lim:
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
    *,
    c_y: float | None = None,
    radius_y: float | None = None,
) -> NDArray[np.float64]:
    """Reference implementation: one full-frame ``exp`` per fixation. For tests/benchmarks."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    wts = np.ones(len(pts)) if weights is None else np.asarray(weights, dtype=np.float64)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    out = np.zeros(shape, dtype=np.float64)
    if c_y is None and radius_y is None:
        for (x0, y0), wt in zip(pts, wts, strict=True):
            d2 = (xx - x0) ** 2 + (yy - y0) ** 2
            out += np.where(d2 <= radius * radius, wt * np.exp(-d2 / (2.0 * c * c)), 0.0)
        return out
    cy = c if c_y is None else c_y
    ry = radius if radius_y is None else radius_y
    for (x0, y0), wt in zip(pts, wts, strict=True):
        dx, dy = xx - x0, yy - y0
        inside = (dx / radius) ** 2 + (dy / ry) ** 2 <= 1.0
        g = np.exp(-(dx**2 / (2.0 * c * c) + dy**2 / (2.0 * cy * cy)))
        out += np.where(inside, wt * g, 0.0)
    return out


def contour_mask(heatmap: ArrayLike) -> NDArray[np.bool_]:
    """Pixels inside the heatmap's contour: ``heatmap > 0`` (docs/algorithms.md#heatmaps)."""
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
