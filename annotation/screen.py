"""The screen a session is shown on: what is recorded as its geometry (no Qt).

A session stores the geometry of the screen its stimuli were drawn on, so every pixel →
degree conversion of its gaze is right. The set-up reads the screen (the GUI passes what
Qt's ``QScreen`` reports, as a :class:`ScreenInfo`) and :func:`screen_geometry` decides:

- the **resolution** is the screen's own (the full-screen window covers it);
- the **physical size** is the screen's own when it reports a plausible one
  (:func:`reported_size_problem`: a display without EDID, or a virtual one, reports a
  size computed from a nominal 96 or 100 dpi, which says nothing about the glass);
  else the size the operator gave for this screen before (:class:`ScreenMemory`, one
  entry per screen); else the settings' size when the settings describe a screen of
  this resolution; else it must be asked (``needs_size``), and meanwhile the settings'
  diagonal stands in at the screen's resolution;
- the **viewing distance** is always the settings' (no screen knows it).

A resumed session keeps its recorded geometry and may only run on a screen of the
recorded resolution (:func:`resume_screen_problem`).

Units: pixels, millimetres, inches for diagonals (25.4 mm each).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gazelab.gaze.geometry import MM_PER_INCH, DisplayGeometry

NOMINAL_DPI = (72.0, 96.0, 100.0, 120.0)
"""Dots per inch an X server or Qt assumes for a screen that reports no size of its own."""

DIAGONAL_RANGE_IN = (10.0, 110.0)
"""Diagonals a lab screen plausibly has, inches (a laptop to a large wall display)."""


@dataclass(frozen=True)
class ScreenInfo:
    """A screen as the GUI reads it.

    Attributes
    ----------
    name, manufacturer, model, serial : str
        What the system calls the screen (any may be empty).
    resolution_px : (int, int)
        Device pixels, ``(width, height)``.
    size_mm : (float, float) or None
        The physical size the screen reports (None or zeros: none).
    """

    name: str
    resolution_px: tuple[int, int]
    size_mm: tuple[float, float] | None = None
    manufacturer: str = ""
    model: str = ""
    serial: str = ""

    @property
    def key(self) -> str:
        """The screen's identity for :class:`ScreenMemory`: make, model, serial, name and
        resolution (a monitor at another resolution is asked again)."""
        w, h = self.resolution_px
        parts = [p.strip() for p in (self.manufacturer, self.model, self.serial, self.name)]
        return " ".join([p for p in parts if p] + [f"{w}x{h}"])

    def describe(self) -> str:
        w, h = self.resolution_px
        who = " ".join(p for p in (self.manufacturer, self.model) if p) or self.name
        return f"{w}x{h} px" + (f" ({who})" if who else "")


def reported_size_problem(
    resolution_px: tuple[int, int], size_mm: tuple[float, float] | None
) -> str:
    """Why a screen's reported physical size cannot be trusted ("" = it can).

    Not trusted: no size (None, zero); a diagonal outside :data:`DIAGONAL_RANGE_IN`;
    pixels that would not be square (the width and height pitch differ by more than 5 %,
    e.g. a size in the wrong unit or of another mode); a size that is the resolution at a
    nominal dpi of :data:`NOMINAL_DPI` within 1 mm (computed by the system, not measured).
    """
    if size_mm is None or not all(math.isfinite(v) and v > 0 for v in size_mm):
        return "the screen reports no physical size"
    (w, h), (wm, hm) = resolution_px, size_mm
    diag = math.hypot(wm, hm) / MM_PER_INCH
    if not DIAGONAL_RANGE_IN[0] <= diag <= DIAGONAL_RANGE_IN[1]:
        return f"the screen reports {wm:.0f}x{hm:.0f} mm ({diag:.1f}\"), not a lab screen's size"
    pitch_w, pitch_h = wm / w, hm / h
    if abs(pitch_w - pitch_h) > 0.05 * max(pitch_w, pitch_h):
        return (
            f"the screen reports {wm:.0f}x{hm:.0f} mm for {w}x{h} px: its pixels would not"
            " be square"
        )
    for dpi in NOMINAL_DPI:
        if abs(wm - w * MM_PER_INCH / dpi) <= 1.0 and abs(hm - h * MM_PER_INCH / dpi) <= 1.0:
            return (
                f"the screen reports {wm:.0f}x{hm:.0f} mm, its pixels at a nominal {dpi:.0f}"
                " dpi (computed by the system, not measured)"
            )
    return ""


@dataclass(frozen=True)
class ScreenGeometry:
    """What :func:`screen_geometry` decided.

    Attributes
    ----------
    display : DisplayGeometry
        The geometry to record with the session.
    size_source : str
        Where the physical size came from: ``screen`` (reported), ``remembered`` (given
        for this screen before), ``operator`` (given now), ``settings`` (the settings
        describe a screen of this resolution), ``assumed`` (nothing known: the settings'
        diagonal at the screen's resolution, until the operator gives one).
    needs_size : bool
        The operator must give the screen's diagonal (``size_source == "assumed"``).
    notes : tuple of str
        One line each, for the operator and the session's ``screen`` event.
    """

    display: DisplayGeometry
    size_source: str
    needs_size: bool
    notes: tuple[str, ...] = ()

    @property
    def diagonal_in(self) -> float:
        return math.hypot(self.display.width_mm, self.display.height_mm) / MM_PER_INCH


def screen_geometry(
    settings_display: DisplayGeometry,
    screen: ScreenInfo | None,
    *,
    remembered_mm: tuple[float, float] | None = None,
    operator_diagonal_in: float | None = None,
) -> ScreenGeometry:
    """The geometry a new session on ``screen`` records (see the module docstring).

    Parameters
    ----------
    settings_display : the settings' ``[display]`` (its distance is always used).
    screen : the screen the session is shown on; None: unknown (a window, a test), the
        settings are used as they are.
    remembered_mm : the size given for this screen before (:class:`ScreenMemory`).
    operator_diagonal_in : a diagonal the operator gives now, inches (wins over all).
    """
    d = settings_display
    if screen is None:
        return ScreenGeometry(d, "settings", False)
    res = (int(screen.resolution_px[0]), int(screen.resolution_px[1]))
    dist = d.distance_mm
    set_in = math.hypot(d.width_mm, d.height_mm) / MM_PER_INCH
    notes: list[str] = []
    if tuple(d.resolution_px) != res:
        notes.append(
            f"resolution {res[0]}x{res[1]} px from the screen (the settings say"
            f" {d.resolution_px[0]}x{d.resolution_px[1]})"
        )
    why = reported_size_problem(res, screen.size_mm)
    if operator_diagonal_in is not None and operator_diagonal_in > 0:
        g = DisplayGeometry.from_diagonal(operator_diagonal_in, res, dist)
        notes.append(f'size {g.width_mm:.0f}x{g.height_mm:.0f} mm ({operator_diagonal_in:.1f}")'
                     " given by the operator")  # fmt: skip
        return ScreenGeometry(g, "operator", False, tuple(notes))
    if not why:
        assert screen.size_mm is not None
        wm, hm = screen.size_mm
        g = DisplayGeometry(float(wm), float(hm), res, dist)
        notes.append(f"size {wm:.0f}x{hm:.0f} mm as the screen reports it")
        return ScreenGeometry(g, "screen", False, tuple(notes))
    if remembered_mm is not None and all(v > 0 for v in remembered_mm):
        wm, hm = remembered_mm
        g = DisplayGeometry(float(wm), float(hm), res, dist)
        notes.append(f"size {wm:.0f}x{hm:.0f} mm as given for this screen before ({why})")
        return ScreenGeometry(g, "remembered", False, tuple(notes))
    if tuple(d.resolution_px) == res:
        notes.append(f'size {d.width_mm:.0f}x{d.height_mm:.0f} mm ({set_in:.1f}") from the'
                     f" settings ({why})")  # fmt: skip
        return ScreenGeometry(d, "settings", False, tuple(notes))
    g = DisplayGeometry.from_diagonal(set_in, res, dist)
    notes.append(f"{why}: give its diagonal (the settings' {set_in:.1f}\" is assumed until then)")
    return ScreenGeometry(g, "assumed", True, tuple(notes))


def resume_screen_problem(
    recorded: DisplayGeometry, screen: ScreenInfo | None, session_id: int
) -> str:
    """Why session ``session_id``, recorded on ``recorded``, cannot go on on ``screen``
    ("" = it can): another resolution would map its gaze to other pixels."""
    if screen is None or tuple(screen.resolution_px) == tuple(recorded.resolution_px):
        return ""
    a, b = screen.resolution_px, recorded.resolution_px
    return (
        f"this screen is {a[0]}x{a[1]} px but session {session_id} was recorded on"
        f" {b[0]}x{b[1]}: resume it on a {b[0]}x{b[1]} screen, or its gaze would not match"
        " the stimuli"
    )


def memory_path() -> Path:
    """Where screen sizes are remembered: ``$GAZELAB_SCREENS``, else
    ``$XDG_CONFIG_HOME/gazelab/screens.json`` (``~/.config`` when unset)."""
    if os.environ.get("GAZELAB_SCREENS"):
        return Path(os.environ["GAZELAB_SCREENS"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gazelab" / "screens.json"


class ScreenMemory:
    """Physical sizes the operator gave, one per screen (:attr:`ScreenInfo.key`), in a
    small JSON file (:func:`memory_path`); a missing or unreadable file is empty."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or memory_path()

    def _read(self) -> dict[str, dict[str, float]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def size_mm(self, key: str) -> tuple[float, float] | None:
        entry = self._read().get(key)
        if not isinstance(entry, Mapping):
            return None
        try:
            w, h = float(entry["width_mm"]), float(entry["height_mm"])
        except (KeyError, TypeError, ValueError):
            return None
        return (w, h) if w > 0 and h > 0 and math.isfinite(w + h) else None

    def remember(self, key: str, size_mm: tuple[float, float]) -> None:
        """Keep ``size_mm`` for the screen ``key`` (written atomically)."""
        from gazelab.fileio import atomic_write

        data = self._read()
        w, h = size_mm
        data[key] = {"width_mm": round(float(w), 1), "height_mm": round(float(h), 1),
                     "diagonal_in": round(math.hypot(w, h) / MM_PER_INCH, 2)}  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


__all__ = [
    "ScreenGeometry",
    "ScreenInfo",
    "ScreenMemory",
    "memory_path",
    "reported_size_problem",
    "resume_screen_problem",
    "screen_geometry",
]
