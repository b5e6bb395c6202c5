"""The tracker's own fixation flag (Eye Tribe ``fix``, GazePoint ``FPOGV``), docs/algorithms.md#fixations."""

from __future__ import annotations

import numpy as np

from gazelab.gaze.fixations import SampleArrays, Segments, Thresholds, register_detector, valid_runs
from gazelab.gaze.geometry import DisplayGeometry


def flag(
    t: np.ndarray, fix: np.ndarray, valid: np.ndarray, *, min_duration_ms: float = 0.0
) -> Segments:
    """Runs of valid samples the tracker flagged as fixation."""
    return [
        (a, b - 1)
        for a, b in valid_runs(np.asarray(fix, dtype=bool) & valid)
        if t[b - 1] - t[a] >= min_duration_ms
    ]


@register_detector("flag", "the tracker's fixation flag (runs of flagged valid samples)")
def detect(s: SampleArrays, geometry: DisplayGeometry, th: Thresholds) -> Segments:
    if s.fix is None:
        raise KeyError("the 'flag' method needs the tracker's 'fix' column")
    return flag(s.time_ms, s.fix, s.valid, min_duration_ms=th.flag_min_duration_ms)
