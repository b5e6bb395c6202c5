"""Pre-flight checks before a session starts, without Qt.

Everything that would otherwise fail mid-session is tried in the set-up, each
check returning one line per problem (empty = fine):

- :func:`check_images`: every image of the session decodes
  (:func:`gazelab.annotation.session.check_images`);
- :func:`check_tracker`: the tracker is reachable and streams at its nominal rate
  (opened, read for ``read_s``, rate measured from the samples' own timestamps);
- :func:`check_microphone`: when the voice backend is not ``keys``, the microphone
  opens (sounddevice, as :class:`~gazelab.annotation.speech.AnswerRecorder`) and
  delivers audio, whose level (dBFS) the set-up shows as a meter;
- :func:`check_screen`: the actual screen (the GUI passes what Qt reports) matches
  the settings' resolution and size.

:func:`preflight` runs them all for a :class:`~gazelab.annotation.session.SessionConfig`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gazelab.annotation.screen import reported_size_problem
from gazelab.annotation.session import SessionConfig, SessionSetupError, open_tracker
from gazelab.annotation.session import check_images as _decode_images
from gazelab.annotation.speech import SAMPLE_RATE, AnswerRecorder, SpeechError, UtteranceDetector
from gazelab.errors import GazelabError
from gazelab.gaze.trackers.registry import is_eye_tracker
from gazelab.settings import Settings


@dataclass(frozen=True)
class TrackerCheck:
    """What :func:`check_tracker` measured."""

    kind: str
    n_samples: int = 0
    rate_hz: float = math.nan
    valid_pct: float = math.nan
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class MicrophoneCheck:
    """What :func:`check_microphone` measured: the level for the set-up's meter."""

    level_dbfs: float = -math.inf
    n_frames: int = 0
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreflightResult:
    """All checks; :attr:`problems` is empty when the session may start."""

    problems: tuple[str, ...] = ()
    tracker: TrackerCheck | None = None
    microphone: MicrophoneCheck | None = None
    notes: tuple[str, ...] = field(default=())


def check_images(config: SessionConfig) -> list[str]:
    """One line naming every image of the session's source that does not decode."""
    from gazelab.models.datasets.registry import open_image_set

    try:
        source = open_image_set(config.images)
        _decode_images(source, list(source.ids))
    except GazelabError as exc:
        return [f"images: {exc}"]
    return []


def check_tracker(
    settings: Settings,
    *,
    read_s: float = 0.5,
    rate_tolerance: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TrackerCheck:
    """Open the tracker the settings name, read it for ``read_s`` and measure its rate.

    Problems: it cannot be reached; it sends nothing; its rate (from the samples' own
    timestamps) is more than ``rate_tolerance`` off ``tracker.rate_hz``.
    """
    t = settings.tracker
    if not is_eye_tracker(t.kind):  # the mouse follows the pointer, none is silent
        return TrackerCheck(t.kind)
    where = t.stream or f"{t.host}:{t.port or 'default port'}"
    try:
        opened = open_tracker(settings, clock=clock)
    except (GazelabError, OSError) as exc:
        return TrackerCheck(t.kind, problems=(f"tracker {t.kind} ({where}) unreachable: {exc}",))
    local: list[float] = []
    valid = 0
    try:
        opened.tracker.start()
        end = clock() + read_s
        while clock() < end:
            sleep(0.02)
            for s in opened.tracker.drain():
                local.append(s.local_s)
                valid += bool(s.valid)
    except (GazelabError, OSError) as exc:
        why = f"tracker {t.kind} ({where}) failed while streaming: {exc}"
        return TrackerCheck(t.kind, len(local), problems=(why,))
    finally:
        try:
            opened.close()
        except (GazelabError, OSError):
            pass  # closing a tracker that failed: its fault is already reported
    n = len(local)
    if n < 2:
        return TrackerCheck(t.kind, n, problems=(
            f"tracker {t.kind} ({where}) connected but sent {n} samples in {read_s:.1f} s;"
            " is it tracking (eyes found, streaming on)?",))  # fmt: skip
    span = max(local) - min(local)
    rate = (n - 1) / span if span > 0 else math.inf
    problems: tuple[str, ...] = ()
    if abs(rate - t.rate_hz) > rate_tolerance * t.rate_hz:
        problems = (
            f"tracker {t.kind} streams at {rate:.0f} Hz but tracker.rate_hz is {t.rate_hz};"
            " set the tracker (or the settings) to the same rate",
        )
    return TrackerCheck(t.kind, n, rate, 100.0 * valid / n, problems)


def microphone_level_dbfs(
    *,
    read_s: float = 0.3,
    device: int | str | None = None,
    rate: int = SAMPLE_RATE,
    timeout_s: float = 1.5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[float, int]:
    """``(level_dbfs, n_frames)`` of ``read_s`` of microphone audio, recorded the way the
    session records (:class:`AnswerRecorder`). Audio servers take a moment to deliver
    the first frames, so it waits up to ``read_s + timeout_s`` for ``read_s`` of audio.
    A microphone that cannot be opened is a :class:`SpeechError`."""
    rec = AnswerRecorder(rate=rate, device=device)
    rec.start()
    parts: list[Any] = []
    n = 0
    try:
        end = clock() + read_s + timeout_s
        while n < read_s * rate and clock() < end:
            sleep(0.02)
            parts.append(rec.read())
            n += parts[-1].size
    finally:
        parts.append(rec.stop())
    audio = np.concatenate(parts)
    return (UtteranceDetector.dbfs(audio) if audio.size else -math.inf), int(audio.size)


def check_microphone(
    settings: Settings,
    *,
    read_s: float = 0.3,
    device: int | str | None = None,
    level: Callable[..., tuple[float, int]] = microphone_level_dbfs,
) -> MicrophoneCheck:
    """Open the microphone when ``voice.backend`` is not ``keys`` and read its level."""
    if settings.voice.backend == "keys":
        return MicrophoneCheck()
    try:
        dbfs, n = level(read_s=read_s, device=device)
    except (SpeechError, OSError, ValueError) as exc:
        text = str(exc) if isinstance(exc, SpeechError) else f"cannot open the microphone: {exc}"
        return MicrophoneCheck(problems=(f"microphone: {text}",))
    if n == 0:
        return MicrophoneCheck(dbfs, 0, (
            f"microphone: opened but delivered no audio in {read_s:.1f} s; check the input"
            " device (or use --voice keys)",))  # fmt: skip
    return MicrophoneCheck(dbfs, n)


def check_screen(
    settings: Settings,
    actual_px: tuple[int, int] | None,
    actual_mm: tuple[float, float] | None = None,
    *,
    size_tolerance: float = 0.1,
) -> list[str]:
    """The actual screen (as the GUI reads it) against ``settings.display``.

    A different resolution is a problem (gaze would be mapped to the wrong pixels); a
    physical size more than ``size_tolerance`` off the settings' one too (degrees of
    visual angle would be wrong). Sizes a screen does not report, or reports implausibly
    (:func:`~gazelab.annotation.screen.reported_size_problem`), are skipped.
    """
    g = settings.display
    out: list[str] = []
    if actual_px is not None and tuple(actual_px) != tuple(g.resolution_px):
        out.append(
            f"screen: the display is {actual_px[0]}x{actual_px[1]} px but the settings say "
            f"{g.resolution_px[0]}x{g.resolution_px[1]}; give the screen's own resolution"
        )
    if (
        actual_mm is not None
        and actual_px is not None
        and not reported_size_problem(actual_px, actual_mm)
    ):  # a size the system computed from a nominal dpi says nothing: not compared
        w, h = actual_mm
        off = max(abs(w - g.width_mm) / g.width_mm, abs(h - g.height_mm) / g.height_mm)
        if off > size_tolerance:
            diag_in = math.hypot(w, h) / 25.4
            set_in = math.hypot(g.width_mm, g.height_mm) / 25.4
            out.append(
                f'screen: the display reports {w:.0f}x{h:.0f} mm ({diag_in:.1f}") but the'
                f' settings say {g.width_mm:.0f}x{g.height_mm:.0f} mm ({set_in:.1f}");'
                " give the screen's own diagonal"
            )
    return out


def preflight(
    config: SessionConfig,
    *,
    screen_px: tuple[int, int] | None = None,
    screen_mm: tuple[float, float] | None = None,
    tracker_read_s: float = 0.5,
    microphone_read_s: float = 0.3,
    microphone_device: int | str | None = None,
    skip: Sequence[str] = (),
) -> PreflightResult:
    """Every pre-flight check for ``config``; ``skip`` names checks not to run
    (``"images"``, ``"tracker"``, ``"microphone"``, ``"screen"``)."""
    s = config.settings
    problems: list[str] = list(config.problems())
    notes: list[str] = []
    if "images" not in skip and not any(p.startswith("images:") for p in problems):
        problems += check_images(config)
    tracker = None
    if "tracker" not in skip:
        tracker = check_tracker(s, read_s=tracker_read_s)
        problems += tracker.problems
        if not is_eye_tracker(s.tracker.kind):
            notes.append(f"tracker {s.tracker.kind}: no eye tracker, no gaze data quality")
    mic = None
    if "microphone" not in skip:
        mic = check_microphone(s, read_s=microphone_read_s, device=microphone_device)
        problems += mic.problems
    if "screen" not in skip:
        problems += check_screen(s, screen_px, screen_mm)
    return PreflightResult(tuple(problems), tracker, mic, tuple(notes))


def start_blocked(result: PreflightResult | None, *, override: bool = False) -> str:
    """Why a session may not start after this pre-flight ("" = it may).

    It may once a pre-flight ran and found nothing, or found problems the operator chose
    to start despite (``override``; the session records them as a ``preflight_override``
    event). Without a pre-flight it may not: the set-up runs one first."""
    if result is None:
        return "run the pre-flight check first"
    if result.problems and not override:
        n = len(result.problems)
        return (
            f"the pre-flight found {n} problem{'s' if n > 1 else ''}: fix "
            f"{'them' if n > 1 else 'it'}, or tick 'start despite' (recorded with the session)"
        )
    return ""


def require(result: PreflightResult) -> None:
    """Raise :class:`SessionSetupError` listing the problems, if any."""
    if result.problems:
        raise SessionSetupError("pre-flight failed:\n  - " + "\n  - ".join(result.problems))


__all__ = [
    "MicrophoneCheck",
    "PreflightResult",
    "TrackerCheck",
    "check_images",
    "check_microphone",
    "check_screen",
    "check_tracker",
    "microphone_level_dbfs",
    "preflight",
    "require",
    "start_blocked",
]
