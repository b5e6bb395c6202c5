"""Overlay images: a stimulus with heatmaps and contours, as RGB arrays (for PNGs and the viewer).

Pure numpy; writing files is the caller's job.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from gazelab.gaze.heatmaps import contour_mask


def place_in_square(
    image: NDArray[np.uint8], square_px: int, background: int = 128
) -> NDArray[np.uint8]:
    """The image as shown: scaled (aspect kept) and centred in a ``square_px`` square, RGB."""
    from PIL import Image

    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    h, w = rgb.shape[:2]
    k = square_px / max(h, w)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    scaled = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    out = np.full((square_px, square_px, 3), background, dtype=np.uint8)
    y0, x0 = (square_px - nh) // 2, (square_px - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = scaled
    return out


def heat_overlay(
    base_rgb: NDArray[np.uint8],
    heatmap: NDArray[np.float64],
    colour: tuple[int, int, int] = (255, 40, 0),
    opacity: float = 0.6,
    contour: bool = True,
) -> NDArray[np.uint8]:
    """Blend a heatmap (same H, W as the image) in ``colour``, alpha ∝ intensity; outline I > 0."""
    if base_rgb.shape[:2] != heatmap.shape:
        raise ValueError(f"heatmap {heatmap.shape} and image {base_rgb.shape[:2]} differ in size")
    peak = float(heatmap.max())
    alpha = (heatmap / peak if peak > 0 else np.zeros_like(heatmap))[..., None] * opacity
    blend = base_rgb.astype(np.float64) * (1 - alpha) + np.array(colour, dtype=np.float64) * alpha
    out: NDArray[np.uint8] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    return outline(out, heatmap, colour) if contour else out


def outline(
    rgb: NDArray[np.uint8],
    heatmap: NDArray[np.float64],
    colour: tuple[int, int, int],
    width: int = 2,
) -> NDArray[np.uint8]:
    """``rgb`` with the contour of ``heatmap > 0`` drawn ``width`` px wide (inside the mask)."""
    if rgb.shape[:2] != heatmap.shape:
        raise ValueError(f"heatmap {heatmap.shape} and image {rgb.shape[:2]} differ in size")
    m = contour_mask(heatmap)
    edge = m & ~ndimage.binary_erosion(m, iterations=width, border_value=0)
    out = rgb.copy()
    out[edge] = colour
    return out


def points_overlay(
    rgb: NDArray[np.uint8],
    points_xy: NDArray[np.float64],
    colour: tuple[int, int, int],
    radius: int = 4,
) -> NDArray[np.uint8]:
    """``rgb`` with a filled dot at each ``(x, y)`` (points outside are skipped)."""
    out = rgb.copy()
    h, w = out.shape[:2]
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    disk = yy**2 + xx**2 <= radius**2
    for x, y in np.asarray(points_xy, dtype=np.float64).reshape(-1, 2):
        cx, cy = int(x), int(y)
        if not (0 <= cx < w and 0 <= cy < h):
            continue
        y0, y1 = max(0, cy - radius), min(h, cy + radius + 1)
        x0, x1 = max(0, cx - radius), min(w, cx + radius + 1)
        sub = disk[y0 - cy + radius : y1 - cy + radius, x0 - cx + radius : x1 - cx + radius]
        out[y0:y1, x0:x1][sub] = colour
    return out
