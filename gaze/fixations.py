"""Fixation detection: the tracker's ``fix`` flag, I-DT and I-VT (SPEC §4).

Input is a tidy sample table (mapping of column -> ``(N,)`` array) with
``t_ms`` (or ``local_s``), ``x``, ``y`` in screen px, ``valid`` and, for the
flag method, ``fix``. Invalid samples split the signal: no fixation spans one.
Thresholds are given in degrees and converted with the session geometry.

The result is a table of fixations with ``onset_ms``, ``offset_ms`` (times of
the first and last sample), ``duration_ms``, ``x_px``, ``y_px`` (mean position,
screen px), ``n_samples`` and ``first_sample`` (row index). Detectors are
registered by name in :data:`DETECTORS` (``idt``, ``ivt``, ``flag``).

Examples
--------
>>> import numpy as np
>>> t = np.arange(30) * 10.0
>>> x = np.r_[np.full(15, 100.0), np.full(15, 600.0)]
>>> fx = detect_fixations({"t_ms": t, "x": x, "y": x * 0, "valid": t == t}, "idt")
>>> fx["onset_ms"].tolist(), fx["x_px"].tolist()
([0.0, 150.0], [100.0, 600.0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.geometry import DisplayGeometry, StimulusLayout

FixationTable = dict[str, NDArray[Any]]
Segments = list[tuple[int, int]]  # inclusive (first, last) sample rows

COLUMNS = ("onset_ms", "offset_ms", "duration_ms", "x_px", "y_px", "n_samples", "first_sample")


def _times_ms(samples: Mapping[str, Any]) -> NDArray[np.float64]:
    if "t_ms" in samples:
        return np.asarray(samples["t_ms"], dtype=np.float64)
    if "local_s" in samples:
        return np.asarray(samples["local_s"], dtype=np.float64) * 1000.0
    raise KeyError("sample table needs a 't_ms' or 'local_s' column")


def _valid_runs(valid: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, stop) half-open index ranges of consecutive valid samples."""
    v = np.concatenate([[False], valid, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(v))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def idt(
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    dispersion_px: float,
    min_duration_ms: float,
) -> Segments:
    """Dispersion-threshold identification (Salvucci & Goldberg 2000).

    A window of at least ``min_duration_ms`` whose dispersion
    ``(max x - min x) + (max y - min y)`` is at most ``dispersion_px`` is grown
    while the dispersion stays under the threshold; it becomes a fixation.
    """
    out: Segments = []
    for start, stop in _valid_runs(valid):
        i = start
        while i < stop:
            # smallest window covering the minimum duration
            j = int(np.searchsorted(t[i:stop], t[i] + min_duration_ms, side="left")) + i
            if j >= stop:
                break
            xs, ys = x[i : j + 1], y[i : j + 1]
            if (xs.max() - xs.min()) + (ys.max() - ys.min()) > dispersion_px:
                i += 1
                continue
            xmin, xmax, ymin, ymax = xs.min(), xs.max(), ys.min(), ys.max()
            while j + 1 < stop:
                nx, ny = x[j + 1], y[j + 1]
                d = (max(xmax, nx) - min(xmin, nx)) + (max(ymax, ny) - min(ymin, ny))
                if d > dispersion_px:
                    break
                xmin, xmax, ymin, ymax = min(xmin, nx), max(xmax, nx), min(ymin, ny), max(ymax, ny)
                j += 1
            out.append((i, j))
            i = j + 1
    return out


def ivt(
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    velocity_px_per_ms: float,
    min_duration_ms: float,
) -> Segments:
    """Velocity-threshold identification: runs of samples slower than the threshold.

    A sample's velocity is that of the step from the previous sample (the first
    sample of a valid run takes the step to the next one).
    """
    out: Segments = []
    for start, stop in _valid_runs(valid):
        n = stop - start
        if n < 2:
            continue
        ts, xs, ys = t[start:stop], x[start:stop], y[start:stop]
        dt = np.diff(ts)
        dist = np.hypot(np.diff(xs), np.diff(ys))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(dt > 0, dist / dt, np.inf)
        vel = np.concatenate([[v[0]], v])
        slow = vel < velocity_px_per_ms
        for a, b in _valid_runs(slow):
            if ts[b - 1] - ts[a] >= min_duration_ms:
                out.append((start + a, start + b - 1))
    return out


def flag(
    t: NDArray[np.float64],
    fix: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    *,
    min_duration_ms: float = 0.0,
) -> Segments:
    """Runs of valid samples the tracker flagged as fixation."""
    return [
        (a, b - 1)
        for a, b in _valid_runs(np.asarray(fix, dtype=bool) & valid)
        if t[b - 1] - t[a] >= min_duration_ms
    ]


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
    """Detect fixations with ``method`` (``"idt"``, ``"ivt"`` or ``"flag"``).

    Parameters
    ----------
    samples : mapping of column -> (N,) array
        ``t_ms`` or ``local_s``; ``x``, ``y`` (screen px); optional ``valid``
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
    geometry = geometry or DisplayGeometry.from_diagonal()
    t = _times_ms(samples)
    x = np.asarray(samples["x"], dtype=np.float64)
    y = np.asarray(samples["y"], dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(t)
    valid = finite & np.asarray(samples.get("valid", finite), dtype=bool)
    if len(t) > 1 and np.any(np.diff(t[valid]) < 0):
        raise ValueError("sample times must be non-decreasing; sort the samples by time first")
    if method == "idt":
        segs = idt(
            t,
            x,
            y,
            valid,
            dispersion_px=geometry.deg_to_px(dispersion_deg),
            min_duration_ms=min_duration_ms,
        )
    elif method == "ivt":
        segs = ivt(
            t,
            x,
            y,
            valid,
            velocity_px_per_ms=geometry.deg_to_px(velocity_deg_s) / 1000.0,
            min_duration_ms=min_duration_ms,
        )
    else:
        if "fix" not in samples:
            raise KeyError("the 'flag' method needs the tracker's 'fix' column")
        segs = flag(t, np.asarray(samples["fix"]), valid, min_duration_ms=flag_min_duration_ms)
    return _table(segs, t, x, y)


DETECTORS: dict[str, Callable[..., Segments]] = {"idt": idt, "ivt": ivt, "flag": flag}


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
