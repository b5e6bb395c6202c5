"""Tracker clock segments: a sample table split where the tracker's clock jumps.

A tracker's clock (``time_ms``) is what fixations are detected on, and it is expected to
run forward with the session's reception clock (``local_s``, monotonic). It does not when
the tracker restarts (the Eye Tribe server's clock starts again at 0: time goes
*backwards* inside a trial) or when its clock is reset or re-synchronised forward. A
*clock jump* between two consecutive samples (reception order) is

- **backward**: ``time_ms`` decreases at all (:math:`\\Delta t_{trk} < 0`), or
- **forward**: the tracker clock advances more than the reception clock plus a
  tolerance, :math:`\\Delta t_{trk} - 1000\\,\\Delta t_{loc} > J` with
  :math:`J` = ``max_jump_ms`` (default :data:`MAX_JUMP_MS`); without reception times,
  :math:`\\Delta t_{trk} > J`.

A real gap in the data (a lost connection, a blink) advances both clocks alike and is
not a jump. Each jump starts a new *clock segment*; analysis detects fixations per
segment (no fixation spans a restart) and places the segments on one trial timeline
(:func:`continuous_time_ms`): the tracker clock inside each segment, the reception-clock
interval between segments. The session records every jump as a recording gap
(:class:`ClockJumpWatch`, used by the gaze capture). See ``docs/clock-segments.md``.

Examples
--------
>>> import numpy as np
>>> t = np.array([0.0, 16.7, 33.3, 5.0, 21.7])  # the tracker restarted after row 2
>>> local = np.array([0.0, 0.0167, 0.0333, 0.5, 0.5167])
>>> clock_segments(t, local).tolist()
[[0, 3], [3, 5]]
>>> continuous_time_ms(t, local).round(1).tolist()
[0.0, 16.7, 33.3, 500.0, 516.7]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

MAX_JUMP_MS = 1000.0
"""Default tolerance of a forward jump, ms: how far the tracker clock may run ahead of
the reception clock between two samples. Reception is bursty (TCP batches, a loaded
machine delays a read by a few hundred ms), so a late-read sample followed by a prompt
one looks like the tracker ran ahead by that delay; one second is well above it and well
below any clock reset worth splitting."""


def jump_rows(
    time_ms: ArrayLike, local_s: ArrayLike | None = None, *, max_jump_ms: float = MAX_JUMP_MS
) -> NDArray[np.int64]:
    """Rows that start a new clock segment (the first sample after each jump), ascending.

    Parameters
    ----------
    time_ms : (N,) array
        Tracker clock, ms, in reception order. Non-finite times are skipped: the jump
        is judged between the finite times around them.
    local_s : (N,) array, optional
        Reception clock, seconds (monotonic). Without it a forward step over
        ``max_jump_ms`` is a jump.
    max_jump_ms : float
        Forward tolerance, ms (see the module docstring).

    Returns
    -------
    (J,) int64 array of row indices in ``1..N-1``.
    """
    t = np.asarray(time_ms, dtype=np.float64).reshape(-1)
    rows = np.flatnonzero(np.isfinite(t))
    if rows.size < 2:
        return np.zeros(0, dtype=np.int64)
    dt = np.diff(t[rows])
    ahead = dt
    if local_s is not None:
        loc = np.asarray(local_s, dtype=np.float64).reshape(-1)
        if loc.shape != t.shape:
            raise ValueError(f"local_s has {loc.size} values for {t.size} times")
        dloc = np.diff(loc[rows]) * 1000.0
        ahead = np.where(np.isfinite(dloc), dt - dloc, dt)
    jump = (dt < 0) | (ahead > max_jump_ms)
    return rows[1:][jump].astype(np.int64)


def clock_segments(
    time_ms: ArrayLike, local_s: ArrayLike | None = None, *, max_jump_ms: float = MAX_JUMP_MS
) -> NDArray[np.int64]:
    """Half-open row ranges ``[start, stop)`` of the clock segments, ``(S, 2)`` int64.

    One segment (``[[0, N]]``) when the clock never jumps; none for an empty table.
    Inside a segment the finite times never decrease.
    """
    n = int(np.asarray(time_ms).size)
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64)
    starts = np.r_[0, jump_rows(time_ms, local_s, max_jump_ms=max_jump_ms)].astype(np.int64)
    stops = np.r_[starts[1:], n].astype(np.int64)
    return np.stack([starts, stops], axis=-1)


def continuous_time_ms(
    time_ms: ArrayLike,
    local_s: ArrayLike | None = None,
    segments: NDArray[np.int64] | None = None,
    *,
    max_jump_ms: float = MAX_JUMP_MS,
) -> NDArray[np.float64]:
    """One trial timeline, ms, ``(N,)``: the tracker clock of the first segment as is, every
    later segment shifted to start where the reception clock says it did.

    Segment ``k`` starts at the previous segment's last time plus the reception-clock
    interval between those two samples (ms); without ``local_s``, plus the median
    tracker step of the previous segment (one sample period). Inside a segment the
    tracker's own steps are kept, so velocities and durations are the tracker's.
    Non-finite times stay non-finite.
    """
    t = np.asarray(time_ms, dtype=np.float64).reshape(-1)
    loc = None if local_s is None else np.asarray(local_s, dtype=np.float64).reshape(-1)
    segs = clock_segments(t, loc, max_jump_ms=max_jump_ms) if segments is None else segments
    out = t.copy()
    prev_last: int | None = None  # row of the previous segment's last finite time
    for a, b in np.asarray(segs, dtype=np.int64).reshape(-1, 2).tolist():
        fin = np.flatnonzero(np.isfinite(t[a:b])) + a
        if fin.size == 0:
            continue
        first, last = int(fin[0]), int(fin[-1])
        if prev_last is not None:
            step = _segment_step(t, loc, prev_last, first, out)
            out[a:b] = t[a:b] - t[first] + out[prev_last] + step
        prev_last = last
    return out


def _segment_step(
    t: NDArray[np.float64],
    loc: NDArray[np.float64] | None,
    prev: int,
    first: int,
    out: NDArray[np.float64],
) -> float:
    """The interval placed between row ``prev`` (end of one segment) and row ``first``
    (start of the next), ms: the reception-clock interval when known, else one period."""
    if loc is not None and np.isfinite(loc[prev]) and np.isfinite(loc[first]):
        return max(0.0, float(loc[first] - loc[prev]) * 1000.0)
    before = np.diff(out[: prev + 1][np.isfinite(out[: prev + 1])])
    before = before[before > 0]
    return float(np.median(before)) if before.size else 0.0


def split_by_clock(
    samples: Mapping[str, Any], *, max_jump_ms: float = MAX_JUMP_MS
) -> list[tuple[int, dict[str, NDArray[Any]]]]:
    """A sample table as its clock segments: ``[(first_row, table), ...]``.

    Each table holds the segment's rows of every column; its ``time_ms`` is on the
    one trial timeline of :func:`continuous_time_ms` (the first segment's times are
    unchanged) and ``tracker_time_ms`` keeps the clock as recorded. ``local_s`` is used
    when the table has it.
    """
    t = np.asarray(samples["time_ms"], dtype=np.float64)
    loc = samples.get("local_s")
    segs = clock_segments(t, loc, max_jump_ms=max_jump_ms)
    cont = continuous_time_ms(t, loc, segs)
    out: list[tuple[int, dict[str, NDArray[Any]]]] = []
    for a, b in segs.tolist():
        part = {k: np.asarray(v)[a:b] for k, v in samples.items()}
        part["tracker_time_ms"] = t[a:b]
        part["time_ms"] = cont[a:b]
        out.append((int(a), part))
    return out


@dataclass(frozen=True)
class ClockJump:
    """One clock jump seen while recording: the last sample before it and the first after.

    Attributes
    ----------
    before_ms, after_ms : float
        Tracker clock of the two samples, ms.
    start_s, end_s : float
        Their reception times, seconds (the recorded gap).
    """

    before_ms: float
    after_ms: float
    start_s: float
    end_s: float

    @property
    def reason(self) -> str:
        """The recording gap's reason: which way and how far the clock jumped."""
        step = self.after_ms - self.before_ms
        way = "back" if step < 0 else "forward"
        return (
            f"tracker clock jumped {way} {abs(step):.0f} ms ({self.before_ms:.0f} -> "
            f"{self.after_ms:.0f} ms; tracker restarted?): a new clock segment"
        )


class ClockJumpWatch:
    """Finds clock jumps in a stream of samples fed in reception order, batch by batch
    (the last sample of one batch is compared with the first of the next).

    Parameters
    ----------
    max_jump_ms : forward tolerance, ms (:data:`MAX_JUMP_MS`).
    """

    def __init__(self, max_jump_ms: float = MAX_JUMP_MS) -> None:
        self.max_jump_ms = float(max_jump_ms)
        self._last: tuple[float, float] | None = None  # (time_ms, local_s) of the last sample

    def feed(self, time_ms: ArrayLike, local_s: ArrayLike) -> list[ClockJump]:
        """The jumps in this batch (and between the previous batch and it)."""
        t = np.asarray(time_ms, dtype=np.float64).reshape(-1)
        loc = np.asarray(local_s, dtype=np.float64).reshape(-1)
        keep = np.isfinite(t) & np.isfinite(loc)
        t, loc = t[keep], loc[keep]
        if t.size == 0:
            return []
        if self._last is not None:
            t = np.r_[self._last[0], t]
            loc = np.r_[self._last[1], loc]
        rows = jump_rows(t, loc, max_jump_ms=self.max_jump_ms)
        jumps = [
            ClockJump(float(t[r - 1]), float(t[r]), float(loc[r - 1]), float(loc[r]))
            for r in rows.tolist()
        ]
        self._last = (float(t[-1]), float(loc[-1]))
        return jumps
