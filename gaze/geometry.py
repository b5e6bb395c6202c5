"""Display geometry: pixels <-> degrees of visual angle, and the stimulus frame.

Implements SPEC §2 (reference set-up: 27" 2560×1440 monitor at 70 cm, images
scaled into a centred 1200×1200 square) and the span/Gaussian numbers of §5.

Coordinates are ``(x, y)`` in pixels, origin at the top-left, x to the right,
y down. Three frames are used:

- *screen*: the full display, ``resolution_px`` wide and high;
- *stimulus*: the centred ``square_px`` square, origin at its top-left corner;
- *image*: pixels of the original image, which is scaled (aspect kept, never
  cropped) to fit the square and centred in it.

Examples
--------
>>> g = DisplayGeometry.from_diagonal(27.0, (2560, 1440), 700.0)
>>> round(g.pixel_pitch_mm, 4)
0.2335
>>> round(visual_span_px(g, 5.0))
262
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548...
MM_PER_INCH = 25.4


@dataclass(frozen=True)
class DisplayGeometry:
    """Physical screen and viewing distance.

    Attributes
    ----------
    width_mm, height_mm : float
        Size of the visible screen area, millimetres.
    resolution_px : (int, int)
        ``(width, height)`` in pixels.
    distance_mm : float
        Eye-to-screen distance, millimetres.
    """

    width_mm: float = 597.7
    height_mm: float = 336.2
    resolution_px: tuple[int, int] = (2560, 1440)
    distance_mm: float = 700.0

    def __post_init__(self) -> None:
        for name in ("width_mm", "height_mm", "distance_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"display.{name} = {value!r} must be a positive number")
        w, h = self.resolution_px
        if w <= 0 or h <= 0:
            raise ValueError(f"display.resolution_px = {self.resolution_px!r} must be positive")

    @classmethod
    def from_diagonal(
        cls,
        diagonal_in: float = 27.0,
        resolution_px: tuple[int, int] = (2560, 1440),
        distance_mm: float = 700.0,
    ) -> DisplayGeometry:
        """Geometry of a screen given by its diagonal in inches, assuming square pixels."""
        if not (math.isfinite(diagonal_in) and diagonal_in > 0):
            raise ValueError(f"display.diagonal_in = {diagonal_in!r} must be a positive number")
        w, h = resolution_px
        diag_px = math.hypot(w, h)
        pitch = diagonal_in * MM_PER_INCH / diag_px
        return cls(
            width_mm=w * pitch,
            height_mm=h * pitch,
            resolution_px=(int(w), int(h)),
            distance_mm=float(distance_mm),
        )

    @property
    def pixel_pitch_mm(self) -> float:
        """Size of one pixel, millimetres (mean of horizontal and vertical pitch)."""
        w, h = self.resolution_px
        return 0.5 * (self.width_mm / w + self.height_mm / h)

    def deg_to_px(self, deg: float) -> float:
        """On-screen extent, pixels, of a visual angle centred on the line of sight.

        ``2 d tan(deg / 2) / pitch`` (SPEC §5).
        """
        return 2.0 * self.distance_mm * math.tan(math.radians(deg) / 2.0) / self.pixel_pitch_mm

    def px_to_deg(self, px: float) -> float:
        """Visual angle, degrees, of an extent of ``px`` pixels centred on the line of sight."""
        return math.degrees(2.0 * math.atan(px * self.pixel_pitch_mm / (2.0 * self.distance_mm)))

    def px_per_deg(self) -> float:
        """Pixels per degree near the screen centre (small-angle rate of ``deg_to_px``)."""
        return self.deg_to_px(1.0)


def visual_span_px(geometry: DisplayGeometry, span_deg: float = 5.0) -> float:
    """Diameter, pixels, of the visual span on screen (SPEC §5: ≈ 262 px in the reference)."""
    return geometry.deg_to_px(span_deg)


def gaussian_c(span_px: float, fwhm_fraction: float = 0.4) -> float:
    """Gaussian width ``c`` whose FWHM is ``fwhm_fraction`` of the span (≈ 44.5 px reference)."""
    return fwhm_fraction * span_px / FWHM_PER_SIGMA


@dataclass(frozen=True)
class StimulusLayout:
    """Where the stimulus square and the scaled image lie on the screen.

    Attributes
    ----------
    screen_px : (int, int)
        Screen ``(width, height)``, pixels.
    square_px : int
        Side of the stimulus square, pixels (SPEC §2: 1200).
    image_shape : (int, int)
        Original image ``(height, width)``, pixels.
    """

    screen_px: tuple[int, int]
    square_px: int
    image_shape: tuple[int, int]

    @property
    def square_origin(self) -> tuple[float, float]:
        """Top-left corner of the square in screen pixels."""
        w, h = self.screen_px
        return ((w - self.square_px) / 2.0, (h - self.square_px) / 2.0)

    @property
    def scale(self) -> float:
        """Image pixels -> stimulus pixels (aspect kept, fits the square, never cropped)."""
        ih, iw = self.image_shape
        return self.square_px / max(ih, iw)

    @property
    def image_origin(self) -> tuple[float, float]:
        """Top-left corner of the scaled image inside the stimulus square."""
        ih, iw = self.image_shape
        k = self.scale
        return ((self.square_px - iw * k) / 2.0, (self.square_px - ih * k) / 2.0)

    @property
    def image_rect_on_screen(self) -> tuple[float, float, float, float]:
        """``(x, y, width, height)`` of the displayed image on screen, pixels."""
        sx, sy = self.square_origin
        ox, oy = self.image_origin
        ih, iw = self.image_shape
        return (sx + ox, sy + oy, iw * self.scale, ih * self.scale)

    def screen_to_stimulus(self, xy: ArrayLike) -> NDArray[np.float64]:
        """``(N, 2)`` screen px -> stimulus-frame px."""
        return np.asarray(xy, dtype=np.float64) - np.asarray(self.square_origin)

    def stimulus_to_screen(self, xy: ArrayLike) -> NDArray[np.float64]:
        return np.asarray(xy, dtype=np.float64) + np.asarray(self.square_origin)

    def stimulus_to_image(self, xy: ArrayLike) -> NDArray[np.float64]:
        """``(N, 2)`` stimulus-frame px -> original image px."""
        return (np.asarray(xy, dtype=np.float64) - np.asarray(self.image_origin)) / self.scale

    def image_to_stimulus(self, xy: ArrayLike) -> NDArray[np.float64]:
        return np.asarray(xy, dtype=np.float64) * self.scale + np.asarray(self.image_origin)

    def screen_to_image(self, xy: ArrayLike) -> NDArray[np.float64]:
        return self.stimulus_to_image(self.screen_to_stimulus(xy))

    def image_to_screen(self, xy: ArrayLike) -> NDArray[np.float64]:
        return self.stimulus_to_screen(self.image_to_stimulus(xy))

    def inside_square(self, xy_screen: ArrayLike) -> NDArray[np.bool_]:
        s = self.screen_to_stimulus(xy_screen)
        return np.all((s >= 0) & (s < self.square_px), axis=-1)

    def inside_image(self, xy_screen: ArrayLike) -> NDArray[np.bool_]:
        i = self.screen_to_image(xy_screen)
        ih, iw = self.image_shape
        return (i[..., 0] >= 0) & (i[..., 0] < iw) & (i[..., 1] >= 0) & (i[..., 1] < ih)


def fit_stimulus_square(
    screen_px: tuple[int, int], square_px: int, feedback_line_px: int = 0
) -> int:
    """Side, pixels, of the largest centred square no bigger than ``square_px`` that fits
    the screen with ``feedback_line_px`` free under it (SPEC §2: the recognised word is
    drawn there; the square stays centred, so as much room is left above).

    Images are scaled into the square keeping their aspect, never cropped, so shrinking
    the square shrinks the image; the session records the side actually used.

    Examples
    --------
    >>> fit_stimulus_square((2560, 1440), 1200, 30)
    1200
    >>> fit_stimulus_square((1920, 1080), 1200, 30)
    1020
    >>> fit_stimulus_square((1366, 768), 1200, 30)
    708
    """
    w, h = screen_px
    return int(max(0, min(square_px, w, h - 2 * feedback_line_px)))


def model_input_to_image(
    points_xy: ArrayLike, model_hw: tuple[int, int], image_hw: tuple[int, int]
) -> NDArray[np.float64]:
    """Model-input pixel indices ``(N, 2)`` of ``(x, y)`` -> original image px of the pixel
    centres.

    The one mapping from the model input to the image (and, through
    :class:`StimulusLayout`, to the stimulus and the screen): the model sees the whole
    image resized to ``model_hw`` (``models.architectures.to_model_input``), so each
    axis scales on its own.
    """
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    (mh, mw), (ih, iw) = model_hw, image_hw
    return np.column_stack([(p[:, 0] + 0.5) * iw / mw, (p[:, 1] + 0.5) * ih / mh])
