"""Overlay images: a stimulus with heatmaps and contours, as RGB arrays (for PNGs and the viewer).

Pure numpy; writing files is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


# -- vector layers, drawn at a display scale (PIL) ---------------------------------------------
def upscale(rgb: NDArray[np.uint8], scale: int) -> NDArray[np.uint8]:
    """``rgb`` enlarged ``scale`` times (bilinear), so vector layers drawn on it stay sharp."""
    from PIL import Image

    if scale <= 1:
        return rgb.copy()
    h, w = rgb.shape[:2]
    img = Image.fromarray(rgb).resize((w * scale, h * scale), Image.Resampling.BILINEAR)
    return np.asarray(img).copy()


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def scanpath_overlay(
    rgb: NDArray[np.uint8],
    points_xy: NDArray[np.float64],
    radii_px: NDArray[np.float64],
    colour: tuple[int, int, int],
    *,
    numbers: Sequence[int] | None = None,
    scale: float = 1.0,
    gaze_xy: NDArray[np.float64] | None = None,
    samples_xy: NDArray[np.float64] | None = None,
) -> NDArray[np.uint8]:
    """A scanpath on ``rgb``: saccade lines between consecutive fixations, a circle of radius
    ``radii_px[k]`` (image px, times ``scale``) at each fixation with its number
    (``numbers``, default 1, 2, ...) in its centre, the samples as small dots and the
    current gaze (replay) as a cross. Coordinates are image px; ``rgb`` is the image at
    ``scale``."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img, "RGBA")
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2) * scale
    rad = np.asarray(radii_px, dtype=np.float64).reshape(-1) * scale
    nums = list(numbers) if numbers is not None else list(range(1, len(pts) + 1))
    line_w = max(1, round(scale / 2))
    if samples_xy is not None:
        for x, y in np.asarray(samples_xy, dtype=np.float64).reshape(-1, 2) * scale:
            draw.point((float(x), float(y)), fill=(*colour, 255))
    if len(pts) > 1:
        draw.line([tuple(p) for p in pts.tolist()], fill=(*colour, 255), width=line_w)
    font = _font(max(10, int(8 * max(1.0, scale / 2))))
    for (x, y), r, n in zip(pts.tolist(), rad.tolist(), nums, strict=True):
        r = max(r, 1.0)
        box = (x - r, y - r, x + r, y + r)
        draw.ellipse(box, fill=(*colour, 90), outline=(*colour, 255), width=line_w)
        draw.text((x, y), str(n), fill=(255, 255, 255, 255), font=font, anchor="mm",
                  stroke_width=1, stroke_fill=(0, 0, 0, 255))  # fmt: skip
    if gaze_xy is not None:
        gx, gy = (float(v) * scale for v in np.asarray(gaze_xy).reshape(2))
        k = max(4.0, 3 * scale)
        draw.line([(gx - k, gy), (gx + k, gy)], fill=(255, 255, 255, 255), width=line_w + 1)
        draw.line([(gx, gy - k), (gx, gy + k)], fill=(255, 255, 255, 255), width=line_w + 1)
    return np.asarray(img.convert("RGB")).copy()


def polygon_overlay(
    rgb: NDArray[np.uint8],
    outline_xy: NDArray[np.float64],
    colour: tuple[int, int, int],
    *,
    label: str = "",
    scale: float = 1.0,
    width: int = 2,
    font_px: int = 11,
) -> NDArray[np.uint8]:
    """A closed outline (image px, times ``scale``) with its label (``font_px`` high) at
    its top-left.

    The label is drawn with a halo (a stroke of :func:`halo_colour`: black round light
    text, white round dark text, ``font_px / 8`` px, at least 1) so it reads on any
    face; it sits just above the outline, or just inside it when the outline touches
    the image's top edge (no room above).
    """
    from PIL import Image, ImageDraw

    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    pts = [tuple(p) for p in (np.asarray(outline_xy, dtype=np.float64) * scale).tolist()]
    if len(pts) >= 2:
        draw.line([*pts, pts[0]], fill=colour, width=width)
        if label:
            x0 = min(p[0] for p in pts)
            y0 = min(p[1] for p in pts)
            stroke = max(1, round(font_px / 8))
            if y0 - 2 - stroke >= font_px:  # room for the text over the outline
                at, anchor = (x0 + stroke, y0 - 2 - stroke), "lb"
            else:  # the outline at the image's top edge: just inside it
                at, anchor = (x0 + width + stroke, y0 + width + stroke), "lt"
            draw.text(at, label, fill=colour, font=_font(font_px), anchor=anchor,
                      stroke_width=stroke, stroke_fill=halo_colour(colour))  # fmt: skip
    return np.asarray(img).copy()


def halo_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black for a light text colour, white for a dark one (Rec. 601 luma ``0.299 R +
    0.587 G + 0.114 B`` over or under 128)."""
    r, g, b = colour[:3]
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b >= 128 else (255, 255, 255)


def with_legend(
    rgb: NDArray[np.uint8],
    entries: Sequence[tuple[str, tuple[int, int, int]]],
    *,
    swatch_px: int = 12,
    background: tuple[int, int, int] = (255, 255, 255),
) -> NDArray[np.uint8]:
    """``rgb`` with a colour legend strip below it: one swatch (``swatch_px`` square, the
    entry's colour) and name per entry. The image's pixels stay where they were (the canvas
    grows right when the legend is wider); no entries, no strip."""
    from PIL import Image, ImageDraw

    if not entries:
        return rgb.copy()
    font = _font(swatch_px)
    row_h = swatch_px + 6
    widths = [swatch_px + 10 + int(font.getlength(name)) for name, _ in entries]
    h, w = rgb.shape[:2]
    width = max(w, max(widths) + 8)
    canvas = Image.new("RGB", (width, h + row_h * len(entries) + 4), background)
    canvas.paste(Image.fromarray(rgb), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, (name, colour) in enumerate(entries):
        y = h + 4 + k * row_h
        draw.rectangle((4, y, 4 + swatch_px - 1, y + swatch_px - 1), fill=colour)
        draw.text((4 + swatch_px + 6, y + swatch_px // 2), name, fill=(0, 0, 0), font=font,
                  anchor="lm")  # fmt: skip
    return np.asarray(canvas).copy()


def colour_mapped(
    values: NDArray[np.floating[Any]], cmap: str = "RdBu_r", symmetric: bool = True
) -> tuple[NDArray[np.uint8], float, float]:
    """``values`` ``(H, W)`` through a matplotlib colour map: RGB and the (low, high) of the
    scale (``symmetric``: ±max|v|, so zero relevance is the map's middle)."""
    from matplotlib import colormaps

    v = np.asarray(values, dtype=np.float64)
    hi = float(np.max(np.abs(v))) if symmetric else float(np.max(v))
    lo = -hi if symmetric else float(np.min(v))
    if hi <= lo:
        hi = lo + 1.0
    rgba = colormaps[cmap]((v - lo) / (hi - lo))
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8), lo, hi


def relevance_overlay(
    image: NDArray[np.uint8],
    relevance: NDArray[np.floating[Any]],
    *,
    cmap: str = "RdBu_r",
    opacity: float = 0.7,
    min_side_px: int = 256,
    title: str = "",
) -> NDArray[np.uint8]:
    """A relevance map readable by people: colour-mapped (``cmap``, symmetric about 0, so
    white-ish is no relevance, red positive, blue negative) over the image, each pixel's
    opacity ∝ ``|R|`` (up to ``opacity``), with a colour bar and its values on the right.

    ``relevance`` may be at model-input resolution: it is sampled at each image pixel
    (:func:`gazelab.analysis.aoi.relevance_on_image`). Small images are enlarged to
    ``min_side_px`` (integer factor). Returns RGB.
    """
    from PIL import Image, ImageDraw

    from gazelab.analysis.aoi import relevance_on_image

    base = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    h, w = base.shape[:2]
    r = relevance_on_image(np.asarray(relevance, dtype=np.float64), (h, w))
    colours, lo, hi = colour_mapped(r, cmap)
    alpha = (np.abs(r) / max(abs(lo), abs(hi)))[..., None] * opacity
    blend = base.astype(np.float64) * (1 - alpha) + colours.astype(np.float64) * alpha
    k = max(1, min_side_px // max(h, w))
    pic = upscale(np.clip(blend + 0.5, 0, 255).astype(np.uint8), k)
    ph, pw = pic.shape[:2]
    bar_w, margin, label_w = max(12, pw // 24), 8, 70
    top = 22 if title else 8
    canvas = Image.new("RGB", (pw + margin + bar_w + label_w, ph + top + 8), (255, 255, 255))
    canvas.paste(Image.fromarray(pic), (0, top))
    bar_h = ph
    ramp = np.linspace(hi, lo, bar_h)[:, None] * np.ones((1, bar_w))
    bar, _, _ = colour_mapped(ramp, cmap)
    x0 = pw + margin
    canvas.paste(Image.fromarray(bar), (x0, top))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0, top, x0 + bar_w - 1, top + bar_h - 1), outline=(0, 0, 0))
    font = _font(11)
    for value, y in ((hi, top), (0.0, top + bar_h // 2), (lo, top + bar_h - 1)):
        draw.line((x0 + bar_w, y, x0 + bar_w + 4, y), fill=(0, 0, 0))
        draw.text((x0 + bar_w + 6, y), f"{value:+.3g}", fill=(0, 0, 0), font=font, anchor="lm")
    if title:
        draw.text((4, 4), title, fill=(0, 0, 0), font=_font(12))
    return np.asarray(canvas).copy()
