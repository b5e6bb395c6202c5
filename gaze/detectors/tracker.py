"""The tracker's own fixations of an imported recording, as a detector (``tracker``).

An import (``gazelab import``) stores the tracker's fixation events with the session —
EyeLink ``EFIX``, Tobii's fixation filter (``Fixation`` rows by fixation index),
Gazepoint's ``FPOGID`` while ``FPOGV`` — as ``tracker_fixation`` events, and marks each
sample inside one of them in the ``fix`` column. This detector returns those fixations
as the runs of marked samples, whether or not the sample's gaze is valid (the tracker
decided), so gazelab's detectors can be set beside the tracker's on the same trials.

Two of the tracker's fixations with no sample between them read as one run; the events
(:func:`tracker_fixation_events`) keep them apart. EyeLink and Tobii's I-VT filter always
put saccade samples between fixations; Gazepoint marks a fixation only from its first
``FPOGV`` sample, which follows the previous fixation's last one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gazelab.gaze.fixations import SampleArrays, Segments, Thresholds, register_detector, run_bounds
from gazelab.gaze.geometry import DisplayGeometry


def tracker_runs(fix: np.ndarray) -> Segments:
    """Inclusive ``(first, last)`` rows of each run of the tracker's fixation flag."""
    a, b = run_bounds(np.asarray(fix, dtype=bool))
    return np.stack([a, b - 1], axis=1).astype(np.int64) if a.size else []


@register_detector("tracker", "the tracker's own fixations stored at import (EFIX, Tobii, FPOGID)")
def detect(s: SampleArrays, geometry: DisplayGeometry, th: Thresholds) -> Segments:
    if s.fix is None:
        raise KeyError("the 'tracker' method needs the 'fix' column an import writes")
    return tracker_runs(s.fix)


def tracker_fixation_events(store: Any, session_id: int) -> dict[str, np.ndarray]:
    """The tracker's fixation events of an imported session: ``onset_ms``, ``offset_ms``
    (tracker clock, inclusive), ``x_px``, ``y_px`` (the tracker's position, NaN if none)
    and ``trial_index`` (-1 outside trials), ``(F,)`` each, in time order."""
    rows = [e for e in store.events(session_id) if e["kind"] == "tracker_fixation"]
    p = [r["payload"] for r in rows]

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if q.get(key) is None else q[key] for q in p], dtype=np.float64)

    return {
        "onset_ms": col("onset_ms"),
        "offset_ms": col("offset_ms"),
        "x_px": col("x"),
        "y_px": col("y"),
        "trial_index": np.array(
            [-1 if r["trial_index"] is None else r["trial_index"] for r in rows], dtype=np.int64
        ),
    }
