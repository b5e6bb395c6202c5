"""The session set-up dialog: participant, images, tracker, voice, screen geometry, and the
pre-flight check of all of them (annotation/preflight.py) before anything is recorded.

The screen geometry is the actual screen's (:mod:`gazelab.annotation.screen`): its
resolution, its physical size when it reports a plausible one, else the diagonal given for
this screen before, else a diagonal the operator must give (then remembered for this
screen). OK runs the pre-flight when it has not run for these values, and stays disabled
while it fails, unless the operator ticks "start despite" (recorded with the session)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gazelab.annotation.preflight import PreflightResult, start_blocked
from gazelab.annotation.screen import (
    ScreenInfo,
    ScreenMemory,
    reported_size_problem,
    screen_geometry,
)
from gazelab.annotation.session import (
    SessionConfig,
    SessionSetupError,
    config_from_options,
    on_screen,
)
from gazelab.models.datasets.registry import layout_usage

AUTO = object()
"""``SetupDialog(screen=AUTO)``: read the primary screen (none on Qt's offscreen platform)."""


def qt_screen_info(screen: Any = None) -> ScreenInfo | None:
    """The primary (or given) Qt screen as a :class:`ScreenInfo`; None on the offscreen
    platform, whose screen is a fiction."""
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.platformName() in ("offscreen", "minimal"):
        return None
    screen = screen or QGuiApplication.primaryScreen()
    if screen is None:
        return None
    size, ratio, phys = screen.size(), screen.devicePixelRatio(), screen.physicalSize()
    return ScreenInfo(
        name=screen.name(),
        resolution_px=(round(size.width() * ratio), round(size.height() * ratio)),
        size_mm=(float(phys.width()), float(phys.height())),
        manufacturer=screen.manufacturer(),
        model=screen.model(),
        serial=screen.serialNumber(),
    )


class SetupDialog(QDialog):
    """Fields for a :class:`SessionConfig`; OK only closes once the config is valid and
    the pre-flight passed (or its problems are overridden, recorded)."""

    def __init__(
        self,
        initial: SessionConfig | None = None,
        parent: QWidget | None = None,
        *,
        screen: Any = AUTO,
        memory: ScreenMemory | None = None,
        preflight_options: dict[str, Any] | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("gazelab — new annotation session")
        self.setMinimumWidth(560)
        self.config: SessionConfig | None = None
        self.screen: ScreenInfo | None = qt_screen_info() if screen is AUTO else screen
        self.memory = memory or ScreenMemory()
        self.preflight_options = dict(preflight_options or {})
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
        self.voice.addItems(["keys", "default", "pocketsphinx", "whisper:tiny.en", "vosk:"])
        self.voice.setCurrentText(
            f"vosk:{s.voice.vosk_model}" if s.voice.backend == "vosk" else s.voice.backend
        )
        d = s.display
        self.diagonal = QDoubleSpinBox(minimum=0, maximum=120, decimals=1, suffix=" in")
        self.diagonal.setSpecialValueText("measure it: the diagonal of the visible area")
        self.diagonal.setValue(math.hypot(d.width_mm, d.height_mm) / 25.4)
        self.resolution = QLineEdit(f"{d.resolution_px[0]}x{d.resolution_px[1]}")
        self.distance = QDoubleSpinBox(minimum=20, maximum=300, decimals=1, suffix=" cm")
        self.distance.setValue(d.distance_mm / 10)
        self.screen_note = QLabel("")
        self.screen_note.setWordWrap(True)
        self._settings = s
        self._resume = init.resume
        self._asked = False  # the screen's size must be given by the operator
        self._shown_diagonal = self.diagonal.value()

        form = QFormLayout()
        form.addRow("Store (.sqlite)", self._browse_row(self.store, self._browse_store))
        form.addRow("Participant", self.participant)
        form.addRow("Images", self._browse_row(self.images, self._browse_images))
        form.addRow("Eye tracker", self.tracker)
        form.addRow("Voice labels", self.voice)
        form.addRow("Screen diagonal", self.diagonal)
        form.addRow("Resolution", self.resolution)
        form.addRow("Viewing distance", self.distance)
        form.addRow("", self.screen_note)
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
        else:
            self._show_screen()
        self.check_button = QPushButton("Check the set-up: images, tracker, microphone, screen")
        self.check_button.clicked.connect(self.run_preflight)
        self.preflight_text = QLabel("")
        self.preflight_text.setWordWrap(True)
        self.level = QProgressBar()  # the microphone's level, -60 … 0 dBFS
        self.level.setRange(0, 60)
        self.level.setFormat("microphone %v dB above -60 dBFS")
        self.level.setVisible(False)
        self.override = QCheckBox("Start despite the problems above (recorded with the session)")
        self.override.setVisible(False)
        self.override.toggled.connect(self._update_ok)
        self.preflight_result: PreflightResult | None = None
        self._checked: SessionConfig | None = None  # the config the last pre-flight checked
        layout = QVBoxLayout(self)
        layout.addWidget(self.resume_note)
        layout.addLayout(form)
        layout.addWidget(self.check_button)
        layout.addWidget(self.preflight_text)
        layout.addWidget(self.level)
        layout.addWidget(self.errors)
        layout.addWidget(self.override)
        layout.addWidget(buttons)
        for edit in (self.store, self.participant, self.images, self.resolution):
            edit.textChanged.connect(self._changed)
        for box in (self.tracker, self.voice):
            box.currentTextChanged.connect(self._changed)
        for spin in (self.diagonal, self.distance):
            spin.valueChanged.connect(self._changed)

    # -- store and images: typed, or browsed (starting in the store's folder) -------------
    @staticmethod
    def _browse_row(edit: QLineEdit, browse: Any) -> QWidget:
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.setAutoDefault(False)  # Return in the dialog is OK, never a file dialog
        button.clicked.connect(browse)
        lay.addWidget(button)
        edit.setProperty("browse", button)
        return row

    def start_folder(self) -> str:
        """Where file dialogs open: the store's folder when it exists, else the current one."""
        folder = Path(self.store.text().strip() or ".").expanduser().parent
        return str(folder if folder.is_dir() else Path.cwd())

    def _browse_store(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Session store", self.store.text().strip() or self.start_folder(),
            "gazelab store (*.sqlite *.db)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # an existing store is added to
        )  # fmt: skip
        if path:
            self.store.setText(path if Path(path).suffix else f"{path}.sqlite")

    def _browse_images(self) -> None:
        current = self.images.text().strip()
        kind, _, where = current.partition(":")
        start = where if kind not in ("synthetic", "") and Path(where).is_dir() else None
        folder = QFileDialog.getExistingDirectory(self, "Image folder",
                                                  start or self.start_folder())  # fmt: skip
        if folder:
            layout = kind if kind not in ("synthetic", "") and where else "folder"
            self.images.setText(f"{layout}:{folder}")

    # -- the screen ---------------------------------------------------------------------------
    def _show_screen(self) -> None:
        """A new session: the resolution is the screen's, the size as decided (or asked)."""
        if self.screen is None:
            self.screen_note.setText("No screen to read (a window or test): the values above"
                                     " are recorded as given.")  # fmt: skip
            return
        decided = screen_geometry(self._settings.display, self.screen,
                                  remembered_mm=self.memory.size_mm(self.screen.key))  # fmt: skip
        w, h = self.screen.resolution_px
        self.resolution.setText(f"{w}x{h}")
        self.resolution.setEnabled(False)  # the screen's own: the stimulus is drawn there
        self._asked = decided.needs_size
        self.diagonal.setValue(0.0 if decided.needs_size else decided.diagonal_in)
        self._shown_diagonal = self.diagonal.value()
        source = {
            "screen": "as the screen reports it",
            "remembered": "as given for this screen before",
            "settings": "from the settings",
            "assumed": "unknown: give it (remembered for this screen)",
        }[decided.size_source]
        self.screen_note.setText(
            f"This screen: {self.screen.describe()}; the session records this resolution."
            f" Its size: {source}."
        )
        if decided.needs_size:  # asked: the field waits, focused, for the diagonal
            self.screen_note.setStyleSheet("color: #b35900; font-weight: bold")

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._asked and self.diagonal.value() <= 0:  # typing goes to the diagonal
            self.diagonal.setFocus()
            self.diagonal.selectAll()
        elif self._resume is not None:  # everything is the session's: Return resumes
            self.ok_button.setFocus()

    def operator_diagonal(self) -> float | None:
        """The diagonal the operator gave, inches (None: left as the screen/memory said)."""
        v = self.diagonal.value()
        if v <= 0 or (not self._asked and abs(v - self._shown_diagonal) < 0.05):
            return None
        return float(v)

    def _show_resume(self, init: SessionConfig) -> None:
        """A resume: the session's own participant, images and screen, fixed."""
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
        self.store.property("browse").setEnabled(False)
        self.resume_note.setText(
            f"Resume session {rec.id} of {rec.participant} ({rec.created_utc[:16]}):"
            f" {done} of {n} images labelled. The screen, stimulus square"
            f" ({stored.stimulus.square_px} px) and timings are the session's own."
        )

    def build(self) -> SessionConfig:
        decides = self._resume is None and self.screen is not None  # the screen's geometry
        cfg = config_from_options(
            store=self.store.text().strip(),
            participant=self.participant.text().strip(),
            images=self.images.text().strip(),
            tracker=self.tracker.currentText().strip(),
            voice=self.voice.currentText().strip(),
            diagonal_in=self.diagonal.value()
            if self.diagonal.value() > 0 and not decides
            else None,
            resolution=None if decides else self.resolution.text().strip(),
            distance_cm=self.distance.value(),
            settings=self._settings,
            resume=self._resume,
        )
        if decides:
            cfg = on_screen(cfg, self.screen, remembered_mm=self.memory.size_mm(self.screen.key),
                            operator_diagonal_in=self.operator_diagonal())  # fmt: skip
        return cfg

    def problems(self, cfg: SessionConfig) -> list[str]:
        """The config's problems, and a screen size still to be given."""
        out = list(cfg.problems())
        if cfg.screen is not None and cfg.screen.needs_size:
            out.append(
                "screen diagonal: this screen does not report its size; measure the diagonal"
                " of its visible area and give it (remembered for this screen)"
            )
        return out

    # -- pre-flight and OK --------------------------------------------------------------------
    def _changed(self, *_: Any) -> None:
        """A field changed: the last pre-flight no longer speaks for these values."""
        if self.preflight_result is not None:
            self.preflight_result = None
            self._checked = None
            self.override.setChecked(False)
            self.override.setVisible(False)
        self._update_ok()

    def _update_ok(self, *_: Any) -> None:
        """OK is disabled while the pre-flight of these values fails (and is not overridden)."""
        failed = self.preflight_result is not None and bool(self.preflight_result.problems)
        self.ok_button.setEnabled(not failed or self.override.isChecked())

    def run_preflight(self) -> Any:
        """Try everything a session needs before it starts (annotation/preflight.py):
        the images decode, the tracker streams at its rate, the microphone gives a level,
        the actual screen matches the settings. Shows the result; returns it."""
        from gazelab.annotation.preflight import preflight

        try:
            cfg = self.build()
        except (SessionSetupError, ValueError) as exc:
            self.errors.setText(str(exc))
            return None
        scr = self.screen
        self.check_button.setEnabled(False)
        try:
            result = preflight(cfg, screen_px=scr.resolution_px if scr else None,
                               screen_mm=scr.size_mm if scr else None,
                               **self.preflight_options)  # fmt: skip
        finally:
            self.check_button.setEnabled(True)
        extra = tuple(p for p in self.problems(cfg) if p not in result.problems)
        if extra:
            result = PreflightResult(result.problems + extra, result.tracker, result.microphone,
                                     result.notes)  # fmt: skip
        lines = list(result.notes)
        if cfg.screen is not None:
            lines += [f"screen: {n}" for n in cfg.screen.notes]
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
        self._checked = cfg
        self.override.setChecked(False)
        self.override.setVisible(bool(result.problems))
        self._update_ok()
        self.adjustSize()  # room for the lines just shown
        return result

    def try_accept(self) -> None:
        try:
            cfg = self.build()
            problems = self.problems(cfg)
        except (SessionSetupError, ValueError) as exc:
            problems = [str(exc)]
        if problems:
            self.errors.setText("\n".join(problems))
            return
        if self.preflight_result is None or self._checked != cfg:
            self.run_preflight()  # OK checks first: a session never starts unchecked
        why = start_blocked(self.preflight_result, override=self.override.isChecked())
        if why:
            result = self.preflight_result
            lines = list(result.problems) if result is not None else []
            self.errors.setText("\n".join([*lines, why]))
            self._update_ok()
            return
        result = self.preflight_result
        if result is not None and result.problems:
            cfg = dataclasses.replace(cfg, preflight_override=tuple(result.problems))
        scr = self.screen
        if (cfg.screen is not None and scr is not None and cfg.screen.size_source == "operator"
                and reported_size_problem(scr.resolution_px, scr.size_mm)):  # fmt: skip
            d = cfg.settings.display  # given for a screen that cannot say: remembered
            self.memory.remember(scr.key, (d.width_mm, d.height_mm))
        self.config = cfg
        self.accept()
