"""Fixation detection: the tracker's ``fix`` flag, I-DT and I-VT (SPEC §4).

Input is a tidy sample table (mapping of column -> ``(N,)`` array) in the one
sample schema, the fields of :class:`~gazelab.gaze.trackers.base.GazeSample`:
``time_ms`` (tracker clock, ms — the clock fixations are detected on),
``x``, ``y`` (screen px), ``valid`` and, for the flag method, ``fix``.
``local_s`` (reception time) is for synchronisation only: TCP delivers samples
in bursts, so reception times say nothing about gaze velocity. Invalid samples
split the signal: no fixation spans one. Thresholds are given in degrees and
converted with the session geometry.

The result is a table of fixations with ``onset_ms``, ``offset_ms`` (times of
the first and last sample), ``duration_ms``, ``x_px``, ``y_px`` (mean position,
screen px), ``n_samples`` and ``first_sample`` (row index).

Detectors live one per module in :mod:`gazelab.gaze.detectors` (``idt``,
``ivt``, ``flag``) and register themselves in :data:`DETECTORS` with
:func:`register_detector`; settings choices and CLI help read that registry.

Examples
--------
>>> import numpy as np
>>> t = np.arange(30) * 10.0
>>> x = np.r_[np.full(15, 100.0), np.full(15, 600.0)]
>>> fx = detect_fixations({"time_ms": t, "x": x, "y": x * 0, "valid": t == t}, "idt")
>>> fx["onset_ms"].tolist(), fx["x_px"].tolist()
([0.0, 150.0], [100.0, 600.0])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.geometry import DisplayGeometry, StimulusLayout

FixationTable = dict[str, NDArray[Any]]
Segments = list[tuple[int, int]]  # inclusive (first, last) sample rows

COLUMNS = ("onset_ms", "offset_ms", "duration_ms", "x_px", "y_px", "n_samples", "first_sample")


@dataclass(frozen=True)
class SampleArrays:
    """The columns a detector reads, as float64 / bool arrays of one length."""

    time_ms: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    valid: NDArray[np.bool_]
    fix: NDArray[np.bool_] | None


@dataclass(frozen=True)
class Thresholds:
    """Detector thresholds in degrees and ms (SPEC §4; ``FixationSettings``)."""

    dispersion_deg: float = 1.0
    min_duration_ms: float = 100.0
    velocity_deg_s: float = 30.0
    flag_min_duration_ms: float = 0.0


DetectorFunction = Callable[[SampleArrays, DisplayGeometry, Thresholds], Segments]


@dataclass(frozen=True)
class Detector:
    name: str
    detect: DetectorFunction
    help: str


DETECTORS: dict[str, Detector] = {}
"""Fixation detectors by name; filled by the modules of :mod:`gazelab.gaze.detectors`."""


def register_detector(name: str, help: str) -> Callable[[DetectorFunction], DetectorFunction]:
    """Register ``detect(samples, geometry, thresholds) -> segments`` under ``name``."""

    def add(fn: DetectorFunction) -> DetectorFunction:
        if name in DETECTORS:
            raise ValueError(f"fixation detector {name!r} is registered twice")
        DETECTORS[name] = Detector(name, fn, help)
        return fn

    return add


def detector_names() -> tuple[str, ...]:
    """The registered detector names (settings choices, CLI help)."""
    return tuple(DETECTORS)


def valid_runs(valid: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, stop) half-open index ranges of consecutive true values."""
    v = np.concatenate([[False], valid, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(v))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def sample_arrays(samples: Mapping[str, Any]) -> SampleArrays:
    """The detector columns of a sample table; ``valid`` defaults to finite positions and
    non-finite positions or times are never valid."""
    if "time_ms" not in samples:
        raise KeyError(
            "sample table needs a 'time_ms' column (tracker clock, ms); reception times "
            "('local_s') are not used for detection"
        )
    t = np.asarray(samples["time_ms"], dtype=np.float64)
    x = np.asarray(samples["x"], dtype=np.float64)
    y = np.asarray(samples["y"], dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(t)
    valid = finite & np.asarray(samples.get("valid", finite), dtype=bool)
    fix = np.asarray(samples["fix"], dtype=bool) if "fix" in samples else None
    return SampleArrays(t, x, y, valid, fix)


def detect_fixations(
    samples: Mapping[str, Any],
    method: str = "idt",
    geometry: DisplayGeometry | None = None,
    *,
    dispersion_deg: float = 1.0,
    min_duration_ms: float = 100.0,
    velocity_deg_s: float = 30.0,
    flag_min_duration_ms: float = 0.0,
) -> FixationTable:
    """Detect fixations with ``method`` (a name in :data:`DETECTORS`: ``"idt"``, ``"ivt"``,
    ``"flag"``, ...).

    Parameters
    ----------
    samples : mapping of column -> (N,) array
        ``time_ms`` (tracker clock); ``x``, ``y`` (screen px); optional ``valid``
        (default: finite positions) and ``fix`` (for ``"flag"``).
    geometry : DisplayGeometry
        Converts degree thresholds to pixels (default: reference set-up).
    dispersion_deg, min_duration_ms : I-DT thresholds (SPEC §4: 1.0°, 100 ms).
    velocity_deg_s : I-VT threshold (SPEC §4: 30 °/s); ``min_duration_ms`` applies too.

    Returns
    -------
    dict of (F,) arrays, columns :data:`COLUMNS`.
    """
    if method not in DETECTORS:
        raise ValueError(f"unknown fixation method {method!r}; choose one of {sorted(DETECTORS)}")
    s = sample_arrays(samples)
    if len(s.time_ms) > 1 and np.any(np.diff(s.time_ms[s.valid]) < 0):
        raise ValueError("sample times must be non-decreasing; sort the samples by time first")
    th = Thresholds(dispersion_deg, min_duration_ms, velocity_deg_s, flag_min_duration_ms)
    segs = DETECTORS[method].detect(s, geometry or DisplayGeometry.from_diagonal(), th)
    return _table(segs, s.time_ms, s.x, s.y)


def _table(
    segs: Segments, t: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64]
) -> FixationTable:
    a = np.array([s[0] for s in segs], dtype=np.int64)
    b = np.array([s[1] for s in segs], dtype=np.int64)
    return {
        "onset_ms": t[a] if len(a) else np.zeros(0),
        "offset_ms": t[b] if len(b) else np.zeros(0),
        "duration_ms": (t[b] - t[a]) if len(a) else np.zeros(0),
        "x_px": np.array([x[i : j + 1].mean() for i, j in segs], dtype=np.float64),
        "y_px": np.array([y[i : j + 1].mean() for i, j in segs], dtype=np.float64),
        "n_samples": (b - a + 1) if len(a) else np.zeros(0, dtype=np.int64),
        "first_sample": a,
    }


def add_frames(fixations: FixationTable, layout: StimulusLayout) -> FixationTable:
    """Add stimulus-frame (``x_stim``, ``y_stim``) and image (``x_img``, ``y_img``) columns."""
    xy = np.stack([fixations["x_px"], fixations["y_px"]], axis=-1).reshape(-1, 2)
    stim = layout.screen_to_stimulus(xy)
    img = layout.stimulus_to_image(stim)
    return {
        **fixations,
        "x_stim": stim[:, 0],
        "y_stim": stim[:, 1],
        "x_img": img[:, 0],
        "y_img": img[:, 1],
        "in_image": layout.inside_image(xy),
    }


# Register the detectors (they import this module's names, defined above).
importlib.import_module("gazelab.gaze.detectors")
