"""What the annotation window paints on each of its screens (Qt painting only, no state).

Each ``paint_*`` function draws one screen of :class:`~gazelab.app.annotate.AnnotationWindow`
from the window's state and its :class:`~gazelab.annotation.controller.AnnotationSession`;
coordinates are session screen pixels mapped into the widget by ``win.to_widget``.

Colours are chosen for contrast on the grey (128) and black surrounds: light text
(≥ 4.5:1 on grey is only reached by near-white or near-black), dark panels behind
coloured words, never red on grey.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

from gazelab.annotation.protocol import Phase

if TYPE_CHECKING:
    from gazelab.app.annotate import AnnotationWindow

BACKGROUNDS = {"grey": QColor(128, 128, 128), "black": QColor(0, 0, 0)}
TEXT = QColor(255, 255, 255)
PANEL = QColor(24, 24, 24)  # behind coloured text: white/green/amber on it are ≥ 7:1
WARNING = QColor(255, 214, 90)


def to_qimage(image: NDArray[np.uint8]) -> QImage:
    img = np.ascontiguousarray(image)
    fmt = QImage.Format.Format_Grayscale8 if img.ndim == 2 else QImage.Format.Format_RGB888
    q = QImage(img.data, img.shape[1], img.shape[0], img.strides[0], fmt)
    return q.copy()  # own the pixels


def text(
    win: AnnotationWindow, p: QPainter, words: str, rect: QRectF, color: QColor, size: float
) -> None:
    """Centred, wrapped text; ``size`` in session screen px / 2 (scaled with the window)."""
    f = QFont()
    f.setPixelSize(max(8, int(size * win.scale() * 2)))
    p.setFont(f)
    p.setPen(color)
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, words)


def paint_message(win: AnnotationWindow, p: QPainter) -> None:
    s = win.ctl
    if win.mode == "start":
        lines = [
            f"Participant {s.config.participant} — session {s.session_id}",
            s.progress_text(),
            "Say the expression you see (or press 0–7), then press "
            f"{s.settings.protocol.advance_key} to go on.",
            "Press space to begin.",
        ]
    elif win.mode == "done":
        lines = ["Thank you — the session is complete.", s.progress_text(), "Esc closes."]
    else:
        lines = [""]
    text(win, p, "\n\n".join(lines), QRectF(win.rect()), TEXT, 14)


def paint_trial(win: AnnotationWindow, p: QPainter) -> None:
    s = win.ctl
    settings = s.settings
    phase = s.protocol.phase
    if phase is Phase.CROSS:
        c = win.to_widget(s.screen_px[0] / 2, s.screen_px[1] / 2)
        k = win.scale()
        half = settings.protocol.cross_size_px * k / 2
        grey = settings.stimulus.background == "grey"
        pen = QPen(QColor(0, 0, 0) if grey else QColor(255, 255, 255))
        pen.setWidthF(max(1.0, settings.protocol.cross_width_px * k))
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        p.setPen(pen)
        p.drawLine(QPointF(c.x() - half, c.y()), QPointF(c.x() + half, c.y()))
        p.drawLine(QPointF(c.x(), c.y() - half), QPointF(c.x(), c.y() + half))
    elif phase is Phase.IMAGE and s.protocol.image_id is not None:
        iid = s.protocol.image_id
        x0, y0, _, _ = s.layout_for(iid).image_rect_on_screen
        tl = win.to_widget(x0, y0)
        p.drawImage(QPointF(round(tl.x()), round(tl.y())), win.scaled_image(iid))
        if win.message:  # discreet: small, light, below the square
            sq = settings.stimulus.square_px
            a = win.to_widget(0, s.screen_px[1] / 2 + sq / 2)
            rect = QRectF(0, a.y() + 4, win.width(), max(20.0, win.height() - a.y() - 8))
            text(win, p, win.message, rect, QColor(225, 225, 225), 9)
    elif phase is Phase.PAUSED and not s.store_message:
        text(
            win,
            p,
            f"Paused — {s.progress_text()}\n\nP continues, C recalibrates, Esc ends.",
            QRectF(win.rect()),
            TEXT,
            14,
        )


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


def paint_calibration_result(win: AnnotationWindow, p: QPainter) -> None:
    res = win.ctl.calibration
    if res is not None:
        for pt in res.points:
            c = win.to_widget(pt.x, pt.y)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(PANEL)
            p.drawRoundedRect(QRectF(c.x() - 48, c.y() - 14, 96, 46), 6, 6)
            p.setBrush(TEXT)
            p.drawEllipse(c, 6, 6)
            text(win, p, f"{pt.accuracy_deg:.2f}°", QRectF(c.x() - 48, c.y() + 4, 96, 26), TEXT, 8)
        head = f"Calibration {'passed' if res.result else 'FAILED'} — mean error {res.deg:.2f}°"
    else:
        head = "Calibration did not finish"
    band = QRectF(0, win.height() * 0.2, win.width(), win.height() * 0.22)
    p.fillRect(band.adjusted(win.width() * 0.1, 0, -win.width() * 0.1, 0), PANEL)
    text(win, p, head + "\nSpace: validate and start — R: recalibrate — Esc: end", band, TEXT, 9)


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
