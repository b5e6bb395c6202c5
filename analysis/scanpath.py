"""Scanpaths: one annotator's fixations on one image in time order, and their replay
(docs/algorithms.md#fixations; the layer eye-tracking viewers such as EyeLink Data Viewer draw).

A :class:`Scanpath` holds the fixations (image px, ms from the image onset) and the
valid gaze samples of one trial. :func:`scanpath_at` says what a replay shows at
time ``t_ms``: the fixations begun by then (the last one still growing), the
samples seen so far and the current gaze position. :func:`fixation_radii` makes
circle radii proportional to fixation duration. Pure numpy; painting is the
viewer's job (:func:`gazelab.analysis.overlays.scanpath_overlay`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class Scanpath:
    """One trial's gaze in image pixels, times in ms from the image onset.

    Attributes
    ----------
    x_px, y_px : (F,) float64
        Fixation centroids, image px, in time order.
    onset_ms, duration_ms : (F,) float64
        Fixation start and duration, ms (onset relative to the first image-phase sample).
    t_ms, sample_x_px, sample_y_px : (S,) float64
        Valid gaze samples, ms from the image onset and image px, in time order.
    """

    x_px: NDArray[np.float64]
    y_px: NDArray[np.float64]
    onset_ms: NDArray[np.float64]
    duration_ms: NDArray[np.float64]
    t_ms: NDArray[np.float64]
    sample_x_px: NDArray[np.float64]
    sample_y_px: NDArray[np.float64]

    @classmethod
    def from_arrays(
        cls,
        fixations_xy: ArrayLike,
        onset_ms: ArrayLike,
        duration_ms: ArrayLike,
        samples_txy: ArrayLike | None = None,
    ) -> Scanpath:
        """Build from ``(F, 2)`` fixation points, ``(F,)`` onsets and durations and optional
        ``(S, 3)`` samples ``(t_ms, x, y)``; fixations and samples are sorted by time."""
        xy = np.asarray(fixations_xy, dtype=np.float64).reshape(-1, 2)
        on = np.asarray(onset_ms, dtype=np.float64).reshape(-1)
        du = np.asarray(duration_ms, dtype=np.float64).reshape(-1)
        if not (len(xy) == len(on) == len(du)):
            raise ValueError(f"{len(xy)} fixations but {len(on)} onsets and {len(du)} durations")
        o = np.argsort(on, kind="stable")
        s = np.zeros((0, 3)) if samples_txy is None else np.asarray(samples_txy, dtype=np.float64)
        s = s.reshape(-1, 3)
        s = s[np.argsort(s[:, 0], kind="stable")]
        return cls(xy[o, 0], xy[o, 1], on[o], du[o], s[:, 0], s[:, 1], s[:, 2])

    def __len__(self) -> int:
        return len(self.x_px)

    @property
    def points(self) -> NDArray[np.float64]:
        """Fixation centroids ``(F, 2)`` of ``(x, y)``."""
        return np.column_stack([self.x_px, self.y_px])

    @property
    def end_ms(self) -> float:
        """When the trial's gaze record ends: the last sample or fixation offset (0 if empty)."""
        ends = [0.0]
        if len(self.t_ms):
            ends.append(float(self.t_ms[-1]))
        if len(self):
            ends.append(float(np.max(self.onset_ms + self.duration_ms)))
        return max(ends)


@dataclass(frozen=True)
class ReplayFrame:
    """What a replay shows at one time.

    Attributes
    ----------
    t_ms : float
        The time shown.
    index : (K,) int
        Fixations begun by ``t_ms`` (indices into the scanpath, time order); fixation
        ``index[k]`` is numbered ``index[k] + 1``.
    elapsed_ms : (K,) float64
        How long each shown fixation has lasted at ``t_ms`` (its full duration once over).
    samples_xy : (M, 2) float64
        Samples recorded at or before ``t_ms``.
    gaze_xy : (2,) float64 or None
        The latest sample at or before ``t_ms`` (None before the first sample).
    """

    t_ms: float
    index: NDArray[np.int64]
    elapsed_ms: NDArray[np.float64]
    samples_xy: NDArray[np.float64]
    gaze_xy: NDArray[np.float64] | None


def scanpath_at(scanpath: Scanpath, t_ms: float) -> ReplayFrame:
    """The replay of ``scanpath`` at ``t_ms``: fixations with ``onset <= t``, each shown
    with ``min(duration, t - onset)`` elapsed, samples with ``t_sample <= t``, and the gaze
    at the latest such sample. ``t_ms = inf`` gives the whole scanpath."""
    t = float(t_ms)
    idx = np.flatnonzero(scanpath.onset_ms <= t).astype(np.int64)
    elapsed = np.minimum(scanpath.duration_ms[idx], t - scanpath.onset_ms[idx])
    m = int(np.searchsorted(scanpath.t_ms, t, side="right"))
    xy = np.column_stack([scanpath.sample_x_px[:m], scanpath.sample_y_px[:m]])
    gaze = xy[-1].copy() if m else None
    return ReplayFrame(t, idx, elapsed.astype(np.float64), xy, gaze)


def fixation_radii(
    duration_ms: ArrayLike, max_radius_px: float, longest_ms: float | None = None
) -> NDArray[np.float64]:
    """Circle radii proportional to fixation duration: ``max_radius_px * d / longest_ms``
    (``longest_ms`` defaults to the longest duration given, so it gets ``max_radius_px``;
    pass one value for every annotator of an image so their circles compare)."""
    d = np.asarray(duration_ms, dtype=np.float64).reshape(-1)
    longest = float(np.max(d)) if longest_ms is None and len(d) else float(longest_ms or 0.0)
    if longest <= 0:
        return np.zeros_like(d)
    return np.clip(d, 0.0, None) * (float(max_radius_px) / longest)


def saccades(points_xy: ArrayLike) -> NDArray[np.float64]:
    """Saccade segments between consecutive fixations, ``(F-1, 2, 2)``: ``[k] = (from, to)``."""
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if len(p) < 2:
        return np.zeros((0, 2, 2))
    return np.stack([p[:-1], p[1:]], axis=1)
