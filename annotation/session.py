"""Setting up an annotation session (no Qt): image source, tracker, store, validation.

Everything the set-up dialog and ``gazelab annotate`` ask for is a
:class:`SessionConfig`; :meth:`SessionConfig.problems` lists what is wrong in
words a participant's experimenter can act on. Image sources are named by an
image spec stored with the session (``synthetic:N:SEED``, ``folder:PATH``, ``ck+:PATH`` ...;
every layout of :mod:`gazelab.models.datasets.registry`), so a resumed session rebuilds the
same images through :func:`~gazelab.models.datasets.registry.open_image_set`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.annotation.screen import ScreenGeometry, ScreenInfo, screen_geometry
from gazelab.errors import GazelabError
from gazelab.gaze.geometry import DisplayGeometry, fit_stimulus_square
from gazelab.gaze.trackers.registry import (
    OpenTracker,
    TrackerRequest,
    TrackerSpecError,
    open_tracker_request,
    parse_tracker_spec,
)
from gazelab.models.datasets.base import ImageSet
from gazelab.models.datasets.registry import image_spec_problem
from gazelab.settings import Settings


class SessionSetupError(GazelabError, ValueError):
    """The session cannot start; the message lists every problem found."""


def check_images(source: ImageSet, image_ids: Sequence[str]) -> None:
    """Decode every image a session will show, before calibration (docs/running-a-session.md#the-protocol).

    A file that cannot be decoded would otherwise stop the session on the fixation
    cross before its image; here it is one :class:`SessionSetupError` naming each
    bad image and its file (up to 10) on one line, so the experimenter can fix the folder first.
    """
    bad: list[str] = []
    for image_id in image_ids:
        try:
            img = np.asarray(source.image(image_id))
        except Exception as exc:  # any decoder failure is the file's fault, named below
            bad.append(f"image {image_id!r}: {exc}")
            continue
        if img.ndim not in (2, 3) or img.size == 0 or (img.ndim == 3 and img.shape[2] != 3):
            bad.append(
                f"image {image_id!r}: decoded to shape {img.shape}, not (H, W) grey or (H, W, 3)"
            )
    if bad:
        more = f"; ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise SessionSetupError(
            f"{len(bad)} of the session's {len(image_ids)} images in {source.spec} cannot be"
            f" shown (replace or remove the files, then start again): {'; '.join(bad[:10])}{more}"
        )


def whisper_model_problem(model: str) -> str:
    """Why ``--voice whisper:MODEL`` cannot run ("" = it can): faster-whisper missing, a
    model name that is neither known nor a CTranslate2 folder, or a known model that is not
    installed. Checked at set-up, so a typo stops the session before it starts instead of
    falling back to keys mid-session. The weights' sha256 is checked when the model loads."""
    from gazelab.annotation.speech_whisper import MODELS, models_root, whisper_available

    if not whisper_available():
        return "whisper needs faster-whisper: pip install 'gazelab[voice]'"
    if model in MODELS:
        if not (models_root() / model).is_dir():
            return f"whisper model '{model}' is not installed: run `gazelab voice install {model}`"
        return ""
    folder = Path(model).expanduser()
    if not (folder / "model.bin").is_file():
        return (
            f"whisper model '{model}' is neither a known model ({', '.join(MODELS)}) nor a"
            " folder holding a CTranslate2 model.bin; `gazelab voice list` shows the models"
        )
    return ""


@dataclass(frozen=True)
class SessionConfig:
    """What a session needs; filled by the set-up dialog or ``gazelab annotate`` flags."""

    store: Path
    participant: str
    images: str = "synthetic:8:0"
    settings: Settings = field(default_factory=Settings)
    resume: int | None = None  # session id to resume
    screen: ScreenGeometry | None = None
    """How the set-up decided the recorded screen geometry (:mod:`gazelab.annotation.screen`);
    None: the settings' ``[display]`` as given (a window, a resume, a test)."""
    preflight_override: tuple[str, ...] = ()
    """Pre-flight problems the operator chose to start despite (recorded as an event)."""

    def problems(self) -> list[str]:
        out: list[str] = []
        p = self.participant.strip()
        if not p:
            out.append("participant: give a pseudonym (e.g. P01), not left empty")
        elif not all(c.isalnum() or c in "-_" for c in p):
            out.append(
                f"participant {p!r}: use letters, digits, '-' or '_' only (a pseudonym,"
                " never a real name)"
            )
        if self.store.is_dir():
            out.append(f"store {self.store} is a folder: give a file in it, e.g. "
                       f"{self.store / 'study.sqlite'}")  # fmt: skip
        elif self.store.suffix not in (".sqlite", ".db"):
            out.append(f"store {self.store}: name it *.sqlite")
        if not self.store.parent.exists():
            out.append(f"store folder {self.store.parent} does not exist")
        image_problem = image_spec_problem(self.images)  # every registered layout
        if image_problem:
            out.append(f"images: {image_problem}")
        s = self.settings
        if self.resume is None:  # a resumed session keeps the square it was recorded with
            try:
                fit_to_screen(s)
            except SessionSetupError as exc:
                out.append(str(exc))
        if (
            s.voice.backend == "vosk"
            and not Path(s.voice.vosk_model or ".").joinpath("am").is_dir()
        ):
            out.append(
                f"voice: {s.voice.vosk_model or '(no folder)'} is not a Vosk model folder"
                " (it must contain am/); or choose the default recogniser"
            )
        if s.voice.backend == "whisper":
            whisper = whisper_model_problem(s.voice.whisper_model)
            if whisper:
                out.append(f"voice: {whisper}")
        return out

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise SessionSetupError("cannot start the session:\n  - " + "\n  - ".join(problems))


def fit_to_screen(settings: Settings) -> tuple[Settings, str]:
    """The settings with the stimulus square that fits the screen
    (docs/running-a-session.md#the-protocol), and a note.

    The square shrinks (images keep their aspect, never cropped) until it fits with
    ``stimulus.feedback_line_px`` free under it for the recognised word; the session
    stores the side actually used, so every stimulus frame and heatmap derives from it.
    A screen whose square would be smaller than ``stimulus.min_square_px`` is refused.
    """
    st = settings.stimulus
    w, h = settings.display.resolution_px
    side = fit_stimulus_square((w, h), st.square_px, st.feedback_line_px)
    least = min(st.min_square_px, st.square_px)
    if side < least:
        raise SessionSetupError(
            f"screen {w}x{h}: the stimulus square would be {side} px with"
            f" {st.feedback_line_px} px for the feedback line under it, below the least"
            f" {least} px (stimulus.min_square_px); use a larger screen or resolution"
        )
    if side == st.square_px:
        return settings, ""
    note = (
        f"stimulus square {side} px instead of {st.square_px} px, to fit the {w}x{h} screen"
        f" with the feedback line under it (recorded with the session)"
    )
    return dataclasses.replace(settings, stimulus=dataclasses.replace(st, square_px=side)), note


def on_screen(
    config: SessionConfig,
    screen: ScreenInfo | None,
    *,
    remembered_mm: tuple[float, float] | None = None,
    operator_diagonal_in: float | None = None,
) -> SessionConfig:
    """``config`` for a session shown on ``screen``: a new session records the screen's own
    geometry (:func:`~gazelab.annotation.screen.screen_geometry`: its resolution, its
    physical size when known) instead of the settings'; a resumed one keeps its own
    (the controller refuses a screen of another resolution). ``config.screen`` says how
    the geometry was decided; a config already decided is returned as it is."""
    if config.resume is not None or config.screen is not None or screen is None:
        return config
    decided = screen_geometry(config.settings.display, screen, remembered_mm=remembered_mm,
                              operator_diagonal_in=operator_diagonal_in)  # fmt: skip
    settings = dataclasses.replace(config.settings, display=decided.display)
    return dataclasses.replace(config, settings=settings, screen=decided)


def screen_event(config: SessionConfig, screen: ScreenInfo | None) -> dict[str, Any]:
    """The payload of the session's ``screen`` event: what was shown and where its
    physical size came from."""
    d = config.settings.display
    return {
        "resolution_px": list(d.resolution_px),
        "size_mm": [round(d.width_mm, 1), round(d.height_mm, 1)],
        "diagonal_in": round(math.hypot(d.width_mm, d.height_mm) / 25.4, 2),
        "distance_mm": d.distance_mm,
        "size_source": config.screen.size_source if config.screen else "settings",
        "notes": list(config.screen.notes) if config.screen else [],
        "screen": screen.key if screen is not None else None,
        "reported_mm": list(screen.size_mm) if screen is not None and screen.size_mm else None,
    }


def geometry_from(diagonal_in: float, resolution: tuple[int, int], distance_cm: float) -> Any:
    w, h = resolution
    if not (640 <= w <= 16384 and 480 <= h <= 16384):
        raise SessionSetupError(
            f"resolution {w}x{h}: a lab screen is 640x480 to 16384x16384 px;"
            " give the screen's own resolution, e.g. 1920x1080"
        )
    if diagonal_in <= 0 or distance_cm <= 0 or min(resolution) <= 0:
        raise SessionSetupError(
            f'screen {diagonal_in}" {resolution[0]}x{resolution[1]} at {distance_cm} cm:'
            " every value must be positive"
        )
    return DisplayGeometry.from_diagonal(
        diagonal_in=diagonal_in, resolution_px=resolution, distance_mm=distance_cm * 10.0
    )


def open_tracker(
    settings: Settings,
    *,
    mouse_position: Callable[[], tuple[float, float] | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> OpenTracker:
    """Connect the tracker the settings name (any registered kind; the simulated ones start
    their simulator in-process)."""
    t = settings.tracker
    return open_tracker_request(
        TrackerRequest(
            kind=t.kind, host=t.host, port=t.port, stream=t.stream, rate_hz=t.rate_hz,
            screen_px=settings.display.resolution_px, geometry=settings.display,
            seed=settings.protocol.seed, clock=clock, mouse_position=mouse_position,
        )
    )  # fmt: skip


def validation_errors_deg(
    samples: dict[str, NDArray[Any]],
    targets: list[tuple[float, float]],
    windows: list[tuple[float, float]],
    geometry: DisplayGeometry,
    settle_s: float = 0.5,
) -> list[float]:
    """Per target: distance (degrees) from the target to the median valid gaze in its window.

    ``windows`` are (start, end) local seconds; the first ``settle_s`` of each are
    skipped (the saccade to the target). NaN where no valid sample fell in the window.
    The angle is :func:`~gazelab.gaze.quality.angular_distance_deg`'s (the lines of sight
    to both points, each axis with its own pixel size): on 0.25 × 0.35 mm pixels a gaze
    1° below a target is 1° off, not the 0.86° of one mean pitch.
    """
    from gazelab.gaze.quality import angular_distance_deg

    out: list[float] = []
    local, x, y, valid = samples["local_s"], samples["x"], samples["y"], samples["valid"]
    for (tx, ty), (t0, t1) in zip(targets, windows, strict=True):
        m = valid & (local >= t0 + settle_s) & (local <= t1)
        if not m.any():
            out.append(math.nan)
            continue
        gaze = (float(np.median(x[m])), float(np.median(y[m])))
        out.append(float(angular_distance_deg((tx, ty), gaze, geometry)))
    return out


def config_from_options(
    *,
    store: str | Path,
    participant: str,
    images: str = "synthetic:8:0",
    tracker: str = "sim",
    voice: str = "keys",
    diagonal_in: float | None = None,
    resolution: str | None = None,
    distance_cm: float | None = None,
    settings: Settings | None = None,
    resume: int | None = None,
    order: str | None = None,
) -> SessionConfig:
    """The ``gazelab annotate`` flags (and the dialog's fields) → a :class:`SessionConfig`.

    ``tracker``: ``KIND[:ARGS]`` of a registered tracker (``eyetribe[:HOST[:PORT]]``,
    ``gazepoint[:HOST[:PORT]]``, ``lsl[:type=Gaze]``, ``sim``, ``mouse``, ``none`` ...);
    ``voice``: ``keys``, ``default`` or ``vosk:MODEL_DIR``;
    ``resolution``: ``WIDTHxHEIGHT``; ``order``: ``random``, ``latin`` or ``fixed``.
    """
    s = settings or Settings()
    try:
        spec = parse_tracker_spec(tracker)
    except TrackerSpecError as exc:
        raise SessionSetupError(str(exc)) from exc
    t = dataclasses.replace(
        s.tracker,
        kind=spec.kind,
        host=spec.host or s.tracker.host,
        port=spec.port if spec.port is not None else s.tracker.port,
        stream=spec.stream if spec.stream is not None else s.tracker.stream,
    )
    vkind, _, model = voice.partition(":")
    if vkind not in ("keys", "default", "pocketsphinx", "whisper", "vosk"):
        raise SessionSetupError(
            f"voice {voice!r}: use keys, default, pocketsphinx, whisper[:MODEL] or vosk:MODEL_DIR"
        )
    v = dataclasses.replace(s.voice, backend=vkind, vosk_model=model or s.voice.vosk_model)
    if vkind == "whisper":
        v = dataclasses.replace(
            s.voice, backend=vkind, whisper_model=model or s.voice.whisper_model
        )
    display = s.display
    if diagonal_in is not None or resolution is not None or distance_cm is not None:
        res = display.resolution_px
        if resolution is not None:
            try:
                w, h = (int(a) for a in resolution.lower().split("x"))
                res = (w, h)
            except ValueError as exc:
                raise SessionSetupError(
                    f"resolution {resolution!r}: write WIDTHxHEIGHT, e.g. 2560x1440"
                ) from exc
        diag = diagonal_in
        if diag is None:
            diag = math.hypot(display.width_mm, display.height_mm) / 25.4
        dist = distance_cm if distance_cm is not None else display.distance_mm / 10.0
        display = geometry_from(diag, res, dist)
    if order is not None:
        if order not in ("random", "latin", "fixed"):
            raise SessionSetupError(f"order {order!r}: use random, latin or fixed")
        s = dataclasses.replace(s, protocol=dataclasses.replace(s.protocol, order=order))
    s = dataclasses.replace(s, tracker=t, voice=v, display=display)
    return SessionConfig(Path(store), participant, images, s, resume)


def __getattr__(name: str) -> Any:
    """``annotation.session.AnnotationSession`` (the name the architecture uses) is the controller's class;
    imported on first use, since the controller builds on this module."""
    if name == "AnnotationSession":
        from gazelab.annotation.controller import AnnotationSession

        return AnnotationSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
