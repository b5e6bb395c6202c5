"""What the annotation window paints on each of its screens (Qt painting only, no state).

Each ``paint_*`` function draws one screen of :class:`~gazelab.app.annotate.AnnotationWindow`
from the window's state and its :class:`~gazelab.annotation.controller.AnnotationSession`;
coordinates are session screen pixels mapped into the widget by ``win.to_widget``
(:class:`ScreenMapping`, a mixin of the window).

Colours are chosen for contrast on the grey (128) and black surrounds: light text
(≥ 4.5:1 on grey is only reached by near-white or near-black), dark panels behind
coloured words, never red on grey.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QRegion

from gazelab import CLASSES
from gazelab.annotation.protocol import Phase

if TYPE_CHECKING:
    from gazelab.annotation.controller import AnnotationSession
    from gazelab.app.annotate import AnnotationWindow

BACKGROUNDS = {"grey": QColor(128, 128, 128), "black": QColor(0, 0, 0)}
TEXT = QColor(255, 255, 255)
PANEL = QColor(24, 24, 24)  # behind coloured text: white/green/amber on it are ≥ 7:1
WARNING = QColor(255, 214, 90)
FEEDBACK = {"grey": QColor(0, 0, 0), "black": QColor(235, 235, 235)}  # the recognised word


def to_qimage(image: NDArray[np.uint8]) -> QImage:
    img = np.ascontiguousarray(image)
    fmt = QImage.Format.Format_Grayscale8 if img.ndim == 2 else QImage.Format.Format_RGB888
    q = QImage(img.data, img.shape[1], img.shape[0], img.strides[0], fmt)
    return q.copy()  # own the pixels


class ScreenMapping:
    """Session screen px <-> widget px for a window showing the session's screen (scaled
    to fit, centred), and each image scaled once to its on-screen size."""

    ctl: AnnotationSession
    _image_cache: dict[str, QImage]

    if TYPE_CHECKING:

        def width(self) -> int: ...
        def height(self) -> int: ...

    def scale(self) -> float:
        """Widget pixels per screen pixel (1 when the window is the configured screen)."""
        w, h = self.ctl.screen_px
        return min(self.width() / w, self.height() / h) if self.width() and self.height() else 1.0

    def _origin(self) -> tuple[float, float, float]:
        s = self.scale()
        w, h = self.ctl.screen_px
        return (self.width() - w * s) / 2, (self.height() - h * s) / 2, s

    def to_widget(self, x: float, y: float) -> QPointF:
        ox, oy, s = self._origin()
        return QPointF(ox + x * s, oy + y * s)

    def to_screen(self, p: QPointF) -> tuple[float, float]:
        ox, oy, s = self._origin()
        return ((p.x() - ox) / s, (p.y() - oy) / s)

    def scaled_image(self, iid: str) -> QImage:
        """The image at its on-screen size, scaled once (during the blank before it)."""
        key = f"{iid}@{self.width()}x{self.height()}"
        if key not in self._image_cache:
            _, _, w, h = self.ctl.layout_for(iid).image_rect_on_screen
            s = self.scale()
            img = to_qimage(self.ctl.images.image(iid)).scaled(
                max(1, round(w * s)), max(1, round(h * s)),
                Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation,
            ).convertToFormat(QImage.Format.Format_RGB32)  # fmt: skip
            # (opaque, as every grey or RGB stimulus is, in the backing store's own format:
            # drawn by a plain copy at the onset, not converted or blended, and nothing
            # needs to be drawn under it)
            while len(self._image_cache) >= 2:  # the image on screen and the next one
                del self._image_cache[next(iter(self._image_cache))]
            self._image_cache[key] = img
        return self._image_cache[key]


MIN_TEXT_PX = 11  # the smallest text drawn, px: a window much smaller than its screen


def font_px(size: float, scale: float) -> int:
    """The pixel size of text of ``size`` (session screen px / 2) in a window that shows the
    screen ``scale`` times: scaled with the window, never under :data:`MIN_TEXT_PX` (a
    --windowed session on a laptop showed the validation's numbers 8 px high).

    >>> font_px(7, 1.0), font_px(7, 0.48), font_px(11, 0.48)
    (14, 11, 11)
    """
    return max(MIN_TEXT_PX, int(size * scale * 2))


def windowed_size(resolution_px: tuple[int, int], available_px: tuple[int, int] | None,
                  most_px: tuple[int, int] = (1600, 900)) -> tuple[int, int]:  # fmt: skip
    """The size of a ``--windowed`` session's window: the session's screen shrunk (aspect
    kept) to at most ``most_px`` and to the free area of the screen it opens on, less a
    margin for the frame (1600x900 opened cut off on a 1366x768 screen: a third of the
    validation targets were off the screen).

    >>> windowed_size((2560, 1440), (1366, 728))
    (1223, 688)
    >>> windowed_size((1024, 768), (1920, 1040))
    (1024, 768)
    """
    w, h = resolution_px
    limits = [most_px[0] / w, most_px[1] / h, 1.0]
    if available_px is not None:
        limits += [(available_px[0] - 16) / w, (available_px[1] - 40) / h]
    s = max(0.1, min(limits))
    return max(320, int(w * s)), max(240, int(h * s))


def text(
    win: AnnotationWindow, p: QPainter, words: str, rect: QRectF, color: QColor, size: float
) -> None:
    """Centred, wrapped text; ``size`` in session screen px / 2 (scaled with the window,
    :func:`font_px`)."""
    f = QFont()
    f.setPixelSize(font_px(size, win.scale()))
    p.setFont(f)
    p.setPen(color)
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, words)


def instructions(win: AnnotationWindow) -> list[str]:
    """The start screen's words: what to do, the label words and the digit keys."""
    s = win.ctl
    keys = "   ".join(f"{i} {name}" for i, name in enumerate(CLASSES))
    how = (
        f"Say the expression you see: {', '.join(CLASSES)}.\nOr press its key:"
        if win.voice
        else "Press the key of the expression you see:"
    )
    if win.voice:  # the operator sees which recogniser listens (or that it is starting)
        how = f"[voice: {win.recognizer_name or 'starting…'}]\n" + how
    lines = [
        f"Participant {s.config.participant} — session {s.session_id} — {s.progress_text()}",
        *([s.resume_text()] if s.resumed else []),
        f"{how}\n{keys}",
        f"You can correct a label before going on; then press {s.settings.protocol.advance_key}.",
    ]
    n = s.settings.protocol.practice_trials
    if n and not win._practised:
        lines.append(f"First {n} practice images (not recorded).")
    return [*lines, "Press space to begin."]


def paint_message(win: AnnotationWindow, p: QPainter) -> None:
    s = win.ctl
    if win.mode == "start":
        lines = instructions(win)
    elif win.mode == "practice_done":
        lines = ["Practice over — the study begins now.", "Press space when you are ready."]
    elif win.mode == "break":
        lines = [f"A break — rest your eyes. {s.progress_text()}.", "Press space to go on."]
    elif win.mode == "done":
        lines = ["Thank you — the session is complete.", s.progress_text(), "Esc closes."]
    else:
        return
    band = QRectF(win.width() * 0.08, win.height() * 0.22, win.width() * 0.84, win.height() * 0.56)
    _panel_text(win, p, "\n\n".join(lines), band, TEXT, 11)


def paint_trial(win: AnnotationWindow, p: QPainter, coming: Phase | None = None) -> None:
    """The trial's screen in its phase, or in phase ``coming`` (drawn ahead of its onset:
    an image without the recognised word, which a new image clears)."""
    s = win.ctl
    settings = s.settings
    phase = s.protocol.phase if coming is None else coming
    if phase is Phase.CROSS:
        c, half, width = _cross(win)
        grey = settings.stimulus.background == "grey"
        pen = QPen(QColor(0, 0, 0) if grey else QColor(255, 255, 255))
        pen.setWidthF(width)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        p.setPen(pen)
        p.drawLine(QPointF(c.x() - half, c.y()), QPointF(c.x() + half, c.y()))
        p.drawLine(QPointF(c.x(), c.y() - half), QPointF(c.x(), c.y() + half))
    elif phase is Phase.IMAGE and s.protocol.image_id is not None:
        iid = s.protocol.image_id
        p.drawImage(_image_corner(win, iid), win.scaled_image(iid))
        if (
            win.message and coming is None
        ):  # discreet: small, below the square, ≥ 4.5:1 on the surround
            rect = _feedback_line(win)
            text(win, p, win.message, rect, FEEDBACK[settings.stimulus.background], FEEDBACK_SIZE)
    elif phase is Phase.PAUSED and not s.store_message:
        band = QRectF(
            win.width() * 0.15, win.height() * 0.35, win.width() * 0.7, win.height() * 0.3
        )
        words = f"Paused — {s.progress_text()}\n\nP continues, C recalibrates, Esc ends."
        _panel_text(win, p, words, band, TEXT, 12)


def image_rect(win: AnnotationWindow, coming: Phase | None = None) -> QRect | None:
    """The widget pixels the trial's image covers in its phase (or in phase ``coming``);
    ``None`` when no image is on the screen."""
    s = win.ctl
    phase = s.protocol.phase if coming is None else coming
    iid = s.protocol.image_id
    if win.mode != "trials" or phase is not Phase.IMAGE or iid is None:
        return None
    return QRect(_image_corner(win, iid).toPoint(), win.scaled_image(iid).size())


def _cross(win: AnnotationWindow) -> tuple[QPointF, float, float]:
    """The fixation cross in widget px: its centre, half its length and its line width."""
    s = win.ctl
    k = win.scale()
    c = win.to_widget(s.screen_px[0] / 2, s.screen_px[1] / 2)
    proto = s.settings.protocol
    return c, proto.cross_size_px * k / 2, max(1.0, proto.cross_width_px * k)


def _image_corner(win: AnnotationWindow, iid: str) -> QPointF:
    """The top-left corner of image ``iid`` on screen, widget px (whole pixels: drawn as a
    plain copy)."""
    x0, y0, _, _ = win.ctl.layout_for(iid).image_rect_on_screen
    tl = win.to_widget(x0, y0)
    return QPointF(round(tl.x()), round(tl.y()))


def _feedback_line(win: AnnotationWindow) -> QRectF:
    """Where the recognised word is written: the band below the stimulus square."""
    s = win.ctl
    a = win.to_widget(0, s.screen_px[1] / 2 + s.settings.stimulus.square_px / 2)
    return QRectF(0, a.y() + 4, win.width(), max(20.0, win.height() - a.y() - 8))


FEEDBACK_SIZE = 9
"""The size of the line of feedback's words (:func:`text`)."""


def feedback_rect(win: AnnotationWindow, words: str | None = None) -> QRect:
    """The widget pixels the line of feedback ``words`` (default: the one on screen) draws
    on (:func:`paint_trial`): the words' box in the band under the square, 2 px wider on
    every side (their antialiased edge); empty without words."""
    words = win.message if words is None else words
    if not words:
        return QRect()
    band = _feedback_line(win)
    f = QFont()
    f.setPixelSize(font_px(FEEDBACK_SIZE, win.scale()))
    box = QFontMetrics(f).boundingRect(
        band.toAlignedRect(), int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), words
    )
    return box.adjusted(-2, -2, 2, 2)


def content_region(win: AnnotationWindow) -> QRegion | None:
    """The widget pixels :func:`paint_trial` draws on beside the background in the current
    phase: the cross, or the image and its line of feedback (two rectangles, not the
    rectangle around both: that would be the screen's whole width); empty for a blank;
    ``None`` where the screen is more than that (paused, finished: the whole window is
    redrawn)."""
    s = win.ctl
    phase = s.protocol.phase
    if phase in (Phase.BLANK1, Phase.BLANK2):
        return QRegion()
    if phase is Phase.CROSS:
        c, half, width = _cross(win)
        reach = half + width
        return QRegion(
            QRectF(c.x() - reach, c.y() - reach, 2 * reach, 2 * reach)
            .toAlignedRect()
            .adjusted(-2, -2, 2, 2)
        )
    image = image_rect(win)
    if image is not None:
        r = QRegion(image)
        if win.message:  # the line of feedback below the square (paint_trial)
            r = r.united(feedback_rect(win))
        return r
    return None


def paint_target(win: AnnotationWindow, p: QPainter) -> None:
    if win.target is None:
        return
    c = win.to_widget(*win.target)
    k = win.scale()
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(255, 255, 255))
    p.drawEllipse(c, 14 * k, 14 * k)
    p.setBrush(QColor(0, 0, 0))
    p.drawEllipse(c, 4 * k, 4 * k)


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two colours (1 … 21; text needs ≥ 4.5)."""

    def luminance(c: QColor) -> float:
        def lin(v: int) -> float:
            x = v / 255.0
            return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4

        return 0.2126 * lin(c.red()) + 0.7152 * lin(c.green()) + 0.0722 * lin(c.blue())

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


GOOD = QColor(130, 230, 140)  # on PANEL: 12:1
BAD = QColor(255, 190, 80)  # amber, not red: 11:1 on PANEL, and marked with a cross
VECTOR = QColor(80, 220, 255)  # drawn over a black stroke: the pair reads on grey and black


def _panel_text(
    win: AnnotationWindow, p: QPainter, words: str, rect: QRectF, color: QColor, size: float
) -> None:
    p.fillRect(rect, PANEL)
    text(win, p, words, rect, color, size)


def _header(win: AnnotationWindow, p: QPainter, words: str, color: QColor = TEXT) -> None:
    band = QRectF(win.width() * 0.12, win.height() * 0.2, win.width() * 0.76, win.height() * 0.22)
    _panel_text(win, p, words, band, color, 8)


def _not_eye_tracker(win: AnnotationWindow) -> bool:
    from gazelab.gaze.trackers.registry import is_eye_tracker

    return not is_eye_tracker(win.ctl.settings.tracker.kind)


def paint_calibration_result(win: AnnotationWindow, p: QPainter) -> None:
    res = win.ctl.calibration
    if _not_eye_tracker(win):
        _header(win, p, f"The {win.ctl.settings.tracker.kind} tracker needs no calibration: it"
                " does not measure the eyes, so there is no accuracy to measure.\n"
                "Space: go on — Esc: end")  # fmt: skip
        return
    if res is not None:
        for pt in res.points:
            c = win.to_widget(pt.x, pt.y)
            ok = pt.accuracy_deg <= win.ctl.thresholds.max_point_accuracy_deg
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(PANEL)
            p.drawRoundedRect(QRectF(c.x() - 48, c.y() - 14, 96, 46), 6, 6)
            p.setBrush(TEXT)
            p.drawEllipse(c, 6, 6)
            mark = "" if ok else " ✗"
            text(win, p, f"{pt.accuracy_deg:.2f}°{mark}", QRectF(c.x() - 48, c.y() + 4, 96, 26),
                 GOOD if ok else BAD, 8)  # fmt: skip
        head = calibration_headline(res.result, res.deg)
    else:
        head = "Calibration did not finish"
    _header(win, p, head + "\nSpace: validate — R: recalibrate — Esc: end")


def calibration_headline(passed: bool, mean_error_deg: float) -> str:
    """The calibration result's first line; trackers that report no error (LSL) say so."""
    error = (
        f"the tracker reports a mean error of {mean_error_deg:.2f}°"
        if math.isfinite(mean_error_deg)
        else "the tracker reports no error of its own (the validation measures it)"
    )
    return f"Calibration {'done' if passed else 'FAILED'} — {error}"


def paint_validation_result(win: AnnotationWindow, p: QPainter) -> None:
    """Per target: the offset vector target → mean gaze, accuracy and precision (degrees)."""
    v = win.ctl.validation
    if v is None:
        return
    if not v.meaningful:
        _header(win, p, "Validation is not meaningful for the mouse tracker: the pointer is the"
                " gaze, so there is no accuracy to check.\nSpace: start — R: recalibrate")  # fmt: skip
        return
    limit = win.ctl.thresholds
    for i, pt in enumerate(v.quality.points):
        c = win.to_widget(*pt.target_px)
        ok = math.isfinite(pt.accuracy_deg) and pt.accuracy_deg <= limit.max_point_accuracy_deg
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(0, 0, 0), 5))
        p.drawEllipse(c, 12, 12)
        p.setPen(QPen(TEXT, 2))
        p.drawEllipse(c, 12, 12)
        if math.isfinite(pt.offset_px[0]):
            g = win.to_widget(pt.target_px[0] + pt.offset_px[0], pt.target_px[1] + pt.offset_px[1])
            for color, width in ((QColor(0, 0, 0), 6.0), (VECTOR, 3.0)):
                pen = QPen(color, width)
                pen.setCapStyle(Qt.PenCapStyle.RoundCap)
                p.setPen(pen)
                p.drawLine(c, g)
            p.setPen(QPen(QColor(0, 0, 0), 2))
            p.setBrush(VECTOR)
            p.drawEllipse(g, 5, 5)
            words = (
                f"{i + 1}: {pt.accuracy_deg:.2f}°{'' if ok else ' ✗'}\nRMS {pt.rms_s2s_deg:.2f}°"
            )
        else:
            words = f"{i + 1}: no gaze ✗"
        box = QRectF(c.x() + 18, c.y() + 10, 130, 44)
        if box.right() > win.width():
            box.moveRight(c.x() - 18)
        if box.bottom() > win.height():
            box.moveBottom(c.y() - 10)
        _panel_text(win, p, words, box, GOOD if ok else BAD, 7)
    q = v.quality
    head = (
        f"Validation: mean accuracy {q.mean_accuracy_deg:.2f}° (limit"
        f" {limit.mean_accuracy_deg:.2f}°) · worst target {q.max_accuracy_deg:.2f}° (limit"
        f" {limit.max_point_accuracy_deg:.2f}°)\nprecision RMS-S2S {q.rms_s2s_deg:.2f}° ·"
        f" STD {q.std_deg:.2f}° · data loss {q.loss_pct:.1f} %\n"
    )
    if v.passed:
        _header(win, p, head + "PASSED — Space: start — R: recalibrate", GOOD)
        return
    failing = win.ctl.failing_targets()
    why = [w for w in v.problems if not w.startswith("target ")]
    if failing:
        why.append(
            f"{len(failing)} of {len(q.points)} targets above"
            f" {limit.max_point_accuracy_deg:.2f}° or without gaze"
        )
    keys = "R: recalibrate — F: measure the failing targets again — O: override and start"
    _header(win, p, head + f"NOT PASSED: {'; '.join(why)}\n{keys} (recorded)", BAD)


def paint_overlays(win: AnnotationWindow, p: QPainter) -> None:
    """The tracker warning line and, on a store fault, the band that says so."""
    if win.warning:
        band = QRectF(0, 0, win.width(), 40)
        p.fillRect(band, PANEL)
        text(win, p, win.warning, band, WARNING, 14)
    msg = win.ctl.store_message
    if msg:  # a store fault: the whole screen says so
        band = QRectF(0, win.height() * 0.15, win.width(), win.height() * 0.7)
        p.fillRect(band, QColor(40, 20, 20))
        inner = band.adjusted(win.width() * 0.05, 0, -win.width() * 0.05, 0)
        text(win, p, msg, inner, QColor(255, 170, 150), 7)
