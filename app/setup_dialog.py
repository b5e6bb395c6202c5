"""The session set-up dialog: participant, images, tracker, voice, screen geometry, and the
pre-flight check of all of them (annotation/preflight.py) before anything is recorded."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gazelab.annotation.session import SessionConfig, SessionSetupError, config_from_options
from gazelab.models.datasets.registry import layout_usage


class SetupDialog(QDialog):
    """Fields for a :class:`SessionConfig`; OK only closes once the config is valid."""

    def __init__(self, initial: SessionConfig | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("gazelab — new annotation session")
        self.setMinimumWidth(520)
        self.config: SessionConfig | None = None
        init = initial or SessionConfig(Path("study.sqlite"), "")
        s = init.settings
        self.store = QLineEdit(str(init.store))
        self.participant = QLineEdit(init.participant)
        self.participant.setPlaceholderText("pseudonym, e.g. P01")
        self.images = QLineEdit(init.images)
        self.images.setToolTip(layout_usage())  # every registered dataset layout
        self.tracker = QComboBox()
        self.tracker.setEditable(True)
        from gazelab.gaze.trackers.registry import trackers

        def shown(kind: str) -> str:  # an address or stream the settings already give
            k = trackers()[kind]
            if k.args == "address" and (s.tracker.host != "127.0.0.1" or s.tracker.port):
                return f"{kind}:{s.tracker.host}" + (f":{s.tracker.port}" if s.tracker.port else "")
            if k.args == "stream" and s.tracker.stream:
                return f"{kind}:{s.tracker.stream}"
            return kind

        self.tracker.addItems([shown(kind) for kind in trackers()])
        self.tracker.setCurrentText(shown(s.tracker.kind))
        self.tracker.setToolTip("; ".join(f"{k.name}: {k.help}" for k in trackers().values()))
        self.voice = QComboBox()
        self.voice.setEditable(True)
        self.voice.addItems(["keys", "default", "vosk:"])
        self.voice.setCurrentText(
            f"vosk:{s.voice.vosk_model}" if s.voice.backend == "vosk" else s.voice.backend
        )
        d = s.display
        self.diagonal = QDoubleSpinBox(minimum=5, maximum=120, decimals=1, suffix=" in")
        self.diagonal.setValue(math.hypot(d.width_mm, d.height_mm) / 25.4)
        self.resolution = QLineEdit(f"{d.resolution_px[0]}x{d.resolution_px[1]}")
        self.distance = QDoubleSpinBox(minimum=20, maximum=300, decimals=1, suffix=" cm")
        self.distance.setValue(d.distance_mm / 10)
        self._settings = s
        self._resume = init.resume

        form = QFormLayout()
        form.addRow("Store (.sqlite)", self.store)
        form.addRow("Participant", self.participant)
        form.addRow("Images", self.images)
        form.addRow("Eye tracker", self.tracker)
        form.addRow("Voice labels", self.voice)
        form.addRow("Screen diagonal", self.diagonal)
        form.addRow("Resolution", self.resolution)
        form.addRow("Viewing distance", self.distance)
        self.errors = QLabel("")
        self.errors.setStyleSheet("color: #c0392b")
        self.errors.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.try_accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.resume_note = QLabel("")
        self.resume_note.setWordWrap(True)
        if self._resume is not None:
            self._show_resume(init)
        self.check_button = QPushButton("Check the set-up: images, tracker, microphone, screen")
        self.check_button.clicked.connect(self.run_preflight)
        self.preflight_text = QLabel("")
        self.preflight_text.setWordWrap(True)
        self.level = QProgressBar()  # the microphone's level, -60 … 0 dBFS
        self.level.setRange(0, 60)
        self.level.setFormat("microphone %v dB above -60 dBFS")
        self.level.setVisible(False)
        self.preflight_result: Any = None
        layout = QVBoxLayout(self)
        layout.addWidget(self.resume_note)
        layout.addLayout(form)
        layout.addWidget(self.check_button)
        layout.addWidget(self.preflight_text)
        layout.addWidget(self.level)
        layout.addWidget(self.errors)
        layout.addWidget(buttons)

    def _show_resume(self, init: SessionConfig) -> None:
        """A resume: the session's own participant, images and screen, fixed (issue 18.2)."""
        from gazelab.annotation.store import SessionStore
        from gazelab.errors import GazelabError
        from gazelab.settings import Settings

        self.setWindowTitle(f"gazelab — resume session {self._resume}")
        try:
            with SessionStore(init.store) as store:
                rec = store.session(int(self._resume or 0))
                first = store.first_unlabelled_trial(rec.id)
            stored = Settings.from_toml(rec.settings_toml, source=f"session {rec.id}")
        except GazelabError as exc:
            self.resume_note.setText(f"Resume session {self._resume}: {exc}")
            return
        n = len(rec.stimulus_order)
        done = n if first is None else first
        d = stored.display
        self.participant.setText(rec.participant)
        self.images.setText(rec.image_source)
        self.diagonal.setValue(math.hypot(d.width_mm, d.height_mm) / 25.4)
        self.resolution.setText(f"{d.resolution_px[0]}x{d.resolution_px[1]}")
        self.distance.setValue(d.distance_mm / 10)
        for field in (self.store, self.participant, self.diagonal, self.resolution, self.distance):
            field.setEnabled(False)
        self.resume_note.setText(
            f"Resume session {rec.id} of {rec.participant} ({rec.created_utc[:16]}):"
            f" {done} of {n} images labelled. The screen, stimulus square"
            f" ({stored.stimulus.square_px} px) and timings are the session's own."
        )

    def build(self) -> SessionConfig:
        return config_from_options(
            store=self.store.text().strip(),
            participant=self.participant.text().strip(),
            images=self.images.text().strip(),
            tracker=self.tracker.currentText().strip(),
            voice=self.voice.currentText().strip(),
            diagonal_in=self.diagonal.value(),
            resolution=self.resolution.text().strip(),
            distance_cm=self.distance.value(),
            settings=self._settings,
            resume=self._resume,
        )

    def run_preflight(self) -> Any:
        """Try everything a session needs before it starts (annotation/preflight.py):
        the images decode, the tracker streams at its rate, the microphone gives a level,
        the actual screen matches the settings. Shows the result; returns it."""
        from PySide6.QtGui import QGuiApplication

        from gazelab.annotation.preflight import preflight

        try:
            cfg = self.build()
        except (SessionSetupError, ValueError) as exc:
            self.errors.setText(str(exc))
            return None
        screen = QGuiApplication.primaryScreen()
        px = mm = None
        if screen is not None:
            size, ratio, phys = screen.size(), screen.devicePixelRatio(), screen.physicalSize()
            px = (round(size.width() * ratio), round(size.height() * ratio))
            mm = (phys.width(), phys.height())
        self.check_button.setEnabled(False)
        try:
            result = preflight(cfg, screen_px=px, screen_mm=mm)
        finally:
            self.check_button.setEnabled(True)
        lines = list(result.notes)
        t = result.tracker
        if t is not None and t.n_samples:
            lines.append(f"tracker {t.kind}: {t.n_samples} samples at {t.rate_hz:.0f} Hz,"
                         f" {t.valid_pct:.0f} % valid")  # fmt: skip
        mic = result.microphone
        self.level.setVisible(mic is not None and cfg.settings.voice.backend != "keys")
        if mic is not None and math.isfinite(mic.level_dbfs):
            self.level.setValue(int(max(0.0, min(60.0, mic.level_dbfs + 60.0))))
            lines.append(f"microphone level {mic.level_dbfs:.0f} dBFS")
        ok = "all checks passed" if not result.problems else f"{len(result.problems)} problem(s)"
        self.preflight_text.setText("Pre-flight: " + ok + "".join(f"\n{x}" for x in lines))
        self.errors.setText("\n".join(result.problems))
        self.preflight_result = result
        self.adjustSize()  # room for the lines just shown
        return result

    def try_accept(self) -> None:
        try:
            cfg = self.build()
            problems = cfg.problems()
        except (SessionSetupError, ValueError) as exc:
            problems = [str(exc)]
        if problems:
            self.errors.setText("\n".join(problems))
            return
        self.config = cfg
        self.accept()
