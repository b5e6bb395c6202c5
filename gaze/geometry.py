"""Display geometry: pixels <-> degrees of visual angle, and the stimulus frame.

Implements docs/algorithms.md#visual-geometry (reference set-up: 27" 2560×1440 monitor at 70 cm, images
scaled into a centred 1200×1200 square) and the span/Gaussian numbers of docs/algorithms.md#heatmaps.

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
PLACEMENT_EVENT = "stimulus_placement"
"""The event ``annotate`` records at each image onset: :meth:`StimulusPlacement.to_payload`
(``image_rect_px`` and ``mm_per_px``, the fields an imported trial records)."""


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

        ``2 d tan(deg / 2) / pitch`` (docs/algorithms.md#heatmaps).
        """
        return 2.0 * self.distance_mm * math.tan(math.radians(deg) / 2.0) / self.pixel_pitch_mm

    def px_to_deg(self, px: float) -> float:
        """Visual angle, degrees, of an extent of ``px`` pixels centred on the line of sight."""
        return math.degrees(2.0 * math.atan(px * self.pixel_pitch_mm / (2.0 * self.distance_mm)))

    def px_per_deg(self) -> float:
        """Pixels per degree near the screen centre (small-angle rate of ``deg_to_px``)."""
        return self.deg_to_px(1.0)


def visual_span_px(geometry: DisplayGeometry, span_deg: float = 5.0) -> float:
    """Diameter, pixels, of the visual span on screen (docs/algorithms.md#heatmaps: ≈ 262 px in the
    reference)."""
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
        Side of the stimulus square, pixels (docs/algorithms.md#visual-geometry: 1200).
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
    the screen with ``feedback_line_px`` free under it (docs/algorithms.md#visual-geometry: the
    recognised word is
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


@dataclass(frozen=True)
class StimulusPlacement:
    """Where one image really was on the screen, and how big the screen's pixels are.

    The one record of a trial's stimulus geometry: the image's rectangle on screen (any
    position and aspect ratio, even partly off-screen), the image's own shape and the
    screen's millimetres per pixel in x and in y (pixels need not be square), with the
    viewing distance. ``gazelab annotate`` shows each image scaled into a centred square
    (:meth:`centred_square`); an imported recording gives the rectangle the file states.

    Attributes
    ----------
    rect_px : (float, float, float, float)
        ``(x, y, width, height)`` of the displayed image on screen, pixels; top-left
        corner and size. Width and height must be positive.
    image_shape : (int, int)
        The original image's ``(height, width)``, pixels.
    mm_per_px : (float, float)
        Size of one screen pixel in x and in y, millimetres.
    distance_mm : float
        Eye-to-screen distance, millimetres.
    screen_px : (int, int)
        Screen ``(width, height)``, pixels.
    square_px : int or None
        Side of the centred stimulus square the image was fitted into (``annotate``), or
        ``None`` when the rectangle is all there is (an imported recording). When set, the
        conversions are :class:`StimulusLayout`'s own arithmetic, bit for bit.

    Examples
    --------
    >>> p = StimulusPlacement((700.0, 150.0, 300.0, 450.0), (600, 400), (0.25, 0.35), 600.0,
    ...                       (1280, 1024))
    >>> p.screen_to_image([[850.0, 375.0]]).tolist()
    [[200.0, 300.0]]
    """

    rect_px: tuple[float, float, float, float]
    image_shape: tuple[int, int]
    mm_per_px: tuple[float, float]
    distance_mm: float
    screen_px: tuple[int, int]
    square_px: int | None = None

    def __post_init__(self) -> None:
        x, y, w, h = self.rect_px
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
            raise ValueError(
                f"image rectangle {self.rect_px!r} (x, y, width, height px) must be finite"
                " with a positive size"
            )
        ih, iw = self.image_shape
        if ih <= 0 or iw <= 0:
            raise ValueError(f"image shape {self.image_shape!r} (H, W) must be positive")
        for name, v in (("mm per px in x", self.mm_per_px[0]),
                        ("mm per px in y", self.mm_per_px[1]),
                        ("viewing distance (mm)", self.distance_mm)):  # fmt: skip
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} = {v!r} must be a positive number")

    @classmethod
    def centred_square(
        cls,
        display: DisplayGeometry,
        square_px: int,
        image_shape: tuple[int, int],
        screen_px: tuple[int, int] | None = None,
    ) -> StimulusPlacement:
        """What ``annotate`` shows: the image scaled (aspect kept, never cropped) into a
        ``square_px`` square centred on the screen (:class:`StimulusLayout`'s numbers).

        Pixels are taken square at the display's mean pitch
        (:attr:`DisplayGeometry.pixel_pitch_mm`), the assumption every result so far was
        computed with, so the kernel and all numbers stay as they were.
        """
        screen = tuple(screen_px or display.resolution_px)
        layout = StimulusLayout((int(screen[0]), int(screen[1])), int(square_px),
                                (int(image_shape[0]), int(image_shape[1])))  # fmt: skip
        pitch = display.pixel_pitch_mm
        return cls(layout.image_rect_on_screen, layout.image_shape, (pitch, pitch),
                   float(display.distance_mm), layout.screen_px, layout.square_px)  # fmt: skip

    @property
    def layout(self) -> StimulusLayout | None:
        """The centred-square layout (``annotate``), or ``None`` for a free rectangle."""
        if self.square_px is None:
            return None
        return StimulusLayout(self.screen_px, self.square_px, self.image_shape)

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Screen pixels per image pixel in x and in y (equal when the aspect is kept)."""
        if self.square_px is not None:
            k = StimulusLayout(self.screen_px, self.square_px, self.image_shape).scale
            return (k, k)
        ih, iw = self.image_shape
        return (self.rect_px[2] / iw, self.rect_px[3] / ih)

    def screen_to_image(self, xy: ArrayLike) -> NDArray[np.float64]:
        """``(N, 2)`` screen px -> original image px: ``(x - x0) / s_x, (y - y0) / s_y``."""
        layout = self.layout
        if layout is not None:
            return layout.screen_to_image(xy)
        x0, y0 = self.rect_px[0], self.rect_px[1]
        return (np.asarray(xy, dtype=np.float64) - np.array([x0, y0])) / np.array(self.scale_xy)

    def image_to_screen(self, xy: ArrayLike) -> NDArray[np.float64]:
        """``(N, 2)`` original image px -> screen px."""
        layout = self.layout
        if layout is not None:
            return layout.image_to_screen(xy)
        x0, y0 = self.rect_px[0], self.rect_px[1]
        return np.asarray(xy, dtype=np.float64) * np.array(self.scale_xy) + np.array([x0, y0])

    def inside_image(self, xy_screen: ArrayLike) -> NDArray[np.bool_]:
        """Which screen points fall on the image."""
        i = self.screen_to_image(xy_screen)
        ih, iw = self.image_shape
        return (i[..., 0] >= 0) & (i[..., 0] < iw) & (i[..., 1] >= 0) & (i[..., 1] < ih)

    def px_per_deg_xy(self, deg: float = 1.0) -> tuple[float, float]:
        """Screen pixels in x and in y spanned by ``deg`` degrees centred on the line of
        sight: ``2 d tan(deg / 2) / mm_per_px``."""
        extent_mm = 2.0 * self.distance_mm * math.tan(math.radians(deg) / 2.0)
        return (extent_mm / self.mm_per_px[0], extent_mm / self.mm_per_px[1])

    def deg_per_px_xy(self) -> tuple[float, float]:
        """Degrees of visual angle of one screen pixel in x and in y, centred on the line
        of sight: ``2 atan(mm_per_px / 2d)`` in degrees."""
        d = self.distance_mm
        return tuple(  # type: ignore[return-value]
            math.degrees(2.0 * math.atan(m / (2.0 * d))) for m in self.mm_per_px
        )

    def deg_per_image_px_xy(self) -> tuple[float, float]:
        """Degrees of visual angle of one *image* pixel in x and in y at the rectangle."""
        (dx, dy), (sx, sy) = self.deg_per_px_xy(), self.scale_xy
        return (dx * sx, dy * sy)

    def to_payload(self, image_id: str = "") -> dict[str, object]:
        """The fields an image-onset event records (the importer's ``image_rect_px`` and
        ``mm_per_px``, with the rest of the record); :func:`placement_from_payload` reads
        them back."""
        x, y, w, h = self.rect_px
        return {
            "image_id": image_id,
            "image_rect_px": {"x": x, "y": y, "w": w, "h": h},
            "image_shape": [int(self.image_shape[0]), int(self.image_shape[1])],
            "mm_per_px": [float(self.mm_per_px[0]), float(self.mm_per_px[1])],
            "distance_mm": float(self.distance_mm),
            "screen_px": [int(self.screen_px[0]), int(self.screen_px[1])],
            "square_px": self.square_px,
        }


RECT_MAX_SCREENS = 4.0
"""An image rectangle may be at most this many screens wide and high (a larger one is a
unit or typing error in the file, and its stimulus-frame heatmap would not fit in memory)."""
PITCH_MAX_MM = 100.0
"""The largest screen pixel taken as real, millimetres (an LED wall's is about 10 mm)."""


def rect_problem(rect: tuple[float, float, float, float], screen_px: tuple[int, int]) -> str | None:
    """Why ``rect`` (``x, y, w, h`` screen px, top-left corner and size) cannot be where an
    image was shown on a ``screen_px`` ``(W, H)`` screen, or ``None`` when it can.

    Refused: a value that is not a finite number, a width or height under one pixel, a
    rectangle more than :data:`RECT_MAX_SCREENS` screens wide or high, and one wholly off
    the screen (no gaze can fall on it). Partly off the screen is allowed.

    >>> rect_problem((700.0, 150.0, 300.0, 450.0), (1280, 1024)) is None
    True
    >>> rect_problem((700.0, 150.0, 0.0, 450.0), (1280, 1024))
    'has a width or height under 1 px'
    """
    if len(rect) != 4 or not all(_finite_number(v) for v in rect):
        return "is not four finite numbers"
    x, y, w, h = (float(v) for v in rect)
    sw, sh = screen_px
    if w < 1.0 or h < 1.0:
        return "has a width or height under 1 px"
    if w > RECT_MAX_SCREENS * sw or h > RECT_MAX_SCREENS * sh:
        return f"is more than {RECT_MAX_SCREENS:g} times the {sw}x{sh} px screen"
    if x >= sw or y >= sh or x + w <= 0.0 or y + h <= 0.0:
        return f"lies wholly off the {sw}x{sh} px screen"
    return None


def pitch_problem(mm_per_px: object) -> str | None:
    """Why ``mm_per_px`` is not one screen pixel's width and height in millimetres (two
    numbers in ``(0, PITCH_MAX_MM]``), or ``None`` when it is.

    >>> pitch_problem([0.25, 0.35]) is None
    True
    >>> pitch_problem([0, 1])
    'must be two numbers of mm in (0, 100]'
    """
    ok = (
        isinstance(mm_per_px, list | tuple)
        and len(mm_per_px) == 2
        and all(_finite_number(v) and 0.0 < float(v) <= PITCH_MAX_MM for v in mm_per_px)
    )
    return None if ok else f"must be two numbers of mm in (0, {PITCH_MAX_MM:g}]"


def _finite_number(v: object) -> bool:
    """A real number (not a bool, string or None) that is finite."""
    return (
        isinstance(v, int | float | np.integer | np.floating)
        and not isinstance(v, bool | np.bool_)
        and math.isfinite(float(v))
    )
