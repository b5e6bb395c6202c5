"""The live experimenter view (issue 18.8): a second window that observes a session.

:class:`ExperimenterView` shows, for the experimenter only (a second screen, or
a window beside the participant's for testing), the participant's whole screen
scaled down — the stimulus on screen, the live gaze point and the last second of
samples — and beside it the session's state: trial n/N, phase, tracker state,
sample rate, data loss so far, the last label and what the recogniser heard.

It observes an :class:`~gazelab.annotation.controller.AnnotationSession` (its
listeners and its state, repainted at ``refresh_hz``) and never draws on the
participant's window.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from gazelab.annotation.controller import AnnotationSession
from gazelab.annotation.protocol import Phase
from gazelab.app.annotate_screens import BACKGROUNDS, to_qimage

GAZE = QColor(255, 60, 200)  # the live gaze point (a colour no stimulus screen uses)
TRAIL = QColor(60, 200, 255)
PANEL = QColor(30, 30, 30)
TEXT = QColor(240, 240, 240)


class ExperimenterView(QWidget):
    """The session as the experimenter follows it; ``screen_to_view`` maps screen px here."""

    INFO_WIDTH = 300  # px of the state column on the right

    def __init__(self, session: AnnotationSession, *, refresh_hz: float = 30.0) -> None:
        super().__init__()
        self.ctl = session
        self.setWindowTitle(f"gazelab — experimenter view — {session.config.participant}")
        self._image: tuple[str, QImage] | None = None
        self.last_event = ""
        session.subscribe(self._heard)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.update)
        self._timer.start(max(1, int(1000 / refresh_hz)))
        self.resize(1000, 480)

    def _heard(self, kind: str, details: dict[str, Any]) -> None:
        if kind == "event":
            self.last_event = str(details.get("event", ""))
        elif kind == "finished":
            self._timer.stop()

    # -- mapping ----------------------------------------------------------------------------
    def screen_rect(self) -> QRectF:
        """Where the participant's screen is drawn in this widget (aspect kept)."""
        w, h = self.ctl.screen_px
        room_w = max(1.0, self.width() - self.INFO_WIDTH - 16.0)
        room_h = max(1.0, self.height() - 16.0)
        k = min(room_w / w, room_h / h)
        return QRectF(8.0, 8.0 + (room_h - h * k) / 2, w * k, h * k)

    def screen_to_view(self, x: float, y: float) -> QPointF:
        """Participant-screen px -> this widget's px."""
        r = self.screen_rect()
        w, h = self.ctl.screen_px
        return QPointF(r.x() + x * r.width() / w, r.y() + y * r.height() / h)

    # -- painting ---------------------------------------------------------------------------
    def _stimulus(self, p: QPainter) -> None:
        s = self.ctl
        iid = s.protocol.image_id
        if s.protocol.phase is Phase.IMAGE and iid is not None:
            x, y, w, h = s.layout_for(iid).image_rect_on_screen
            if self._image is None or self._image[0] != iid:
                self._image = (iid, to_qimage(s.images.image(iid)))
            tl, br = self.screen_to_view(x, y), self.screen_to_view(x + w, y + h)
            p.drawImage(QRectF(tl, br), self._image[1])
        elif s.protocol.phase is Phase.CROSS:
            c = self.screen_to_view(s.screen_px[0] / 2, s.screen_px[1] / 2)
            p.setPen(QPen(QColor(0, 0, 0), 2))
            p.drawLine(QPointF(c.x() - 6, c.y()), QPointF(c.x() + 6, c.y()))
            p.drawLine(QPointF(c.x(), c.y() - 6), QPointF(c.x(), c.y() + 6))

    def _gaze(self, p: QPainter) -> None:
        recent = [g for g in self.ctl.recent_gaze(1.0) if g.valid]
        if not recent:
            return
        p.setPen(QPen(TRAIL, 1.5))
        pts = [self.screen_to_view(g.x, g.y) for g in recent]
        for a, b in pairwise(pts):
            p.drawLine(a, b)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(GAZE)
        p.drawEllipse(pts[-1], 6.0, 6.0)

    def state_lines(self) -> list[str]:
        """The state column, one line each (also what a test reads)."""
        s = self.ctl
        p = s.protocol
        n = p.n_trials
        trial = min(p.trial_index + 1, n)
        practice = " (practice)" if s.practising else ""
        warning = s.tracker_warning
        tracker = "connected" if not warning and s.capture.connected else warning or "lost"
        loss = s.data_loss_pct()
        return [
            f"participant {s.config.participant}, session {s.session_id}",
            f"trial {trial}/{n}{practice}",
            f"phase {p.phase.value}",
            f"tracker {s.settings.tracker.kind}: {tracker}",
            f"rate {s.sample_rate_hz():.0f} Hz (nominal {s.settings.tracker.rate_hz})",
            f"data loss so far {'–' if math.isnan(loss) else f'{loss:.1f} %'}",
            f"last label {s.last_label or '–'}",
            f"heard {s.last_speech or '–'}",
            f"last event {self.last_event or '–'}",
        ]

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), PANEL)
        p.fillRect(self.screen_rect(), BACKGROUNDS[self.ctl.settings.stimulus.background])
        self._stimulus(p)
        self._gaze(p)
        f = QFont()
        f.setPixelSize(15)
        p.setFont(f)
        p.setPen(TEXT)
        x0 = self.width() - self.INFO_WIDTH
        for i, line in enumerate(self.state_lines()):
            p.drawText(QRectF(x0, 12 + 24 * i, self.INFO_WIDTH - 8, 22),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, line)  # fmt: skip
        p.end()
