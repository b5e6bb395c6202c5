"""What the operator decides from, without Qt: the drift check after a break and the gaze
of each calibration/validation target for the result plot.

Drift check (as EyeLink labs run one after every break): one target at the screen centre;
the participant looks at it for a moment; the angle between the target and the mean gaze
after the saccade settles (:func:`gazelab.gaze.quality.point_quality`, Holmqvist et al.
2012 accuracy) is compared with ``[quality] drift_check_max_deg``. Within it the trials go
on; above it (or without valid gaze) the tracker is recalibrated and validated again.

Result plot (as Titta and Tobii Pro Lab show it): each target with the gaze samples of its
window (after ``settle_s``) and the offset target → mean gaze (:func:`gaze_per_target`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.quality import point_quality
from gazelab.gaze.trackers.registry import is_eye_tracker


@dataclass(frozen=True)
class DriftCheck:
    """One drift check.

    Attributes
    ----------
    target_px : (x, y) screen px of the target.
    offset_px : (dx, dy) mean gaze minus target, px (NaN without valid gaze).
    error_deg : angle target → mean gaze, degrees (NaN without valid gaze).
    threshold_deg : the limit it was checked against, degrees.
    n_samples : valid samples in the window after the settle time.
    """

    target_px: tuple[float, float]
    offset_px: tuple[float, float]
    error_deg: float
    threshold_deg: float
    n_samples: int

    @property
    def passed(self) -> bool:
        """Valid gaze within ``threshold_deg`` of the target."""
        return math.isfinite(self.error_deg) and self.error_deg <= self.threshold_deg

    def payload(self) -> dict[str, Any]:
        """The ``drift_check`` event's payload (NaN as None: JSON has no NaN)."""

        def num(v: float) -> float | None:
            return round(float(v), 4) if math.isfinite(v) else None

        return {
            "target_px": [num(v) for v in self.target_px],
            "offset_px": [num(v) for v in self.offset_px],
            "error_deg": num(self.error_deg),
            "threshold_deg": self.threshold_deg,
            "n_samples": self.n_samples,
            "passed": self.passed,
        }

    def summary(self) -> str:
        if not math.isfinite(self.error_deg):
            return f"drift check: no valid gaze on the target (limit {self.threshold_deg:.2f}°)"
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"drift check {verdict}: {self.error_deg:.2f}° off the target"
            f" (limit {self.threshold_deg:.2f}°)"
        )


def drift_check_needed(tracker_kind: str, threshold_deg: float) -> bool:
    """A drift check runs after a break when it is on (a limit above 0) and there are eyes
    to check (not the mouse, not 'none')."""
    return threshold_deg > 0 and is_eye_tracker(tracker_kind)


def drift_check(
    samples: Mapping[str, ArrayLike],
    target_px: tuple[float, float],
    window: tuple[float, float],
    geometry: DisplayGeometry,
    threshold_deg: float,
    *,
    settle_s: float = 0.3,
) -> DriftCheck:
    """Check the gaze on one target against ``threshold_deg``.

    Parameters
    ----------
    samples : a store table with ``local_s`` (s), ``x``, ``y`` (screen px), ``valid``.
    target_px : the target, screen px.
    window : ``(start, end)`` local seconds the target was shown; the first ``settle_s``
        (the saccade to it) is left out.
    geometry : the session's screen and viewing distance.
    threshold_deg : the largest angle that passes, degrees.
    """
    t = np.asarray(samples["local_s"], dtype=np.float64)
    m = (t >= window[0] + settle_s) & (t <= window[1])
    x = np.asarray(samples["x"], dtype=np.float64)[m]
    y = np.asarray(samples["y"], dtype=np.float64)[m]
    valid = np.asarray(samples["valid"], dtype=bool)[m]
    q = point_quality(target_px, x, y, valid, geometry)
    dx, dy = q.offset_px
    tx, ty = target_px
    return DriftCheck((float(tx), float(ty)), (float(dx), float(dy)), float(q.accuracy_deg),
                      float(threshold_deg), int(q.n_samples))  # fmt: skip


def gaze_per_target(
    samples: Mapping[str, ArrayLike],
    windows: Sequence[tuple[float, float]],
    *,
    settle_s: float = 0.5,
) -> list[NDArray[np.float64]]:
    """The valid gaze of each target's window after ``settle_s``: one ``(n, 2)`` array of
    screen px per window (what the result plot draws as dots)."""
    t = np.asarray(samples["local_s"], dtype=np.float64)
    xy = np.stack([np.asarray(samples["x"], dtype=np.float64),
                   np.asarray(samples["y"], dtype=np.float64)], axis=-1)  # fmt: skip
    ok = np.asarray(samples["valid"], dtype=bool) & np.isfinite(xy).all(axis=-1)
    return [xy[ok & (t >= t0 + settle_s) & (t <= t1)] for t0, t1 in windows]


OPERATOR_KEYS: dict[str, str] = {
    "space": "go on",
    "r": "recalibrate",
    "f": "redo failing targets",
    "o": "override, start (recorded)",
    "p": "pause / continue",
    "c": "recalibrate (paused)",
}
"""The keys the operator acts with (the participant's window takes the same keys)."""


def operator_keys(
    mode: str, *, may_start: bool = True, failing: int = 0, paused: bool = False,
    calibrated: bool = True,
) -> list[str]:  # fmt: skip
    """The keys that act on a screen of the session (``mode`` of the participant's window):
    what the operator's view offers as buttons.

    ``may_start``: the last validation passed (or was overridden); ``failing``: how many of
    its targets failed; ``paused``: the trials are paused; ``calibrated``: a calibration
    result exists."""
    if mode in ("start", "practice_done", "break"):
        return ["space"]
    if mode == "calibration_result":
        return ["space", "r"] if calibrated else ["r"]
    if mode == "validation_result":
        keys = ["space"] if may_start else []
        keys.append("r")
        if failing:
            keys.append("f")
        if not may_start:
            keys.append("o")
        return keys
    if mode == "trials":
        return ["p", "c"] if paused else ["p"]
    return []


__all__ = [
    "OPERATOR_KEYS",
    "DriftCheck",
    "drift_check",
    "drift_check_needed",
    "gaze_per_target",
    "operator_keys",
]
