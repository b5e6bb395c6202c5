"""A gaze source replayed from a JSON-lines file of ``{"t_ms", "x", "y", "fix", "state"}``
objects (``gazelab simulate-tracker --replay``); a bad file is one line naming the file,
the line and what to change."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from gazelab.gaze.trackers.base import STATE_OK, TrackerError
from gazelab.gaze.trackers.observer import GazePoint

MAX_REPLAY_BYTES = 256 * 1024 * 1024
"""Largest replay file read (about 2 million frames, over 9 hours at 60 Hz)."""


class ReplaySource:
    """Replays gaze from a JSON-lines file of ``{"t_ms", "x", "y", "fix", "state"}`` objects.

    Frames are looked up by time (last frame at or before ``t``), looping at the end.
    ``t_ms``, ``x`` and ``y`` are required finite numbers, ``t_ms`` increasing;
    ``fix`` (bool, default false) and ``state`` (0..255, default 7) are optional.

    Raises
    ------
    TrackerError
        The file is missing, unreadable, too large, or a line is not such an
        object (the message names the file and line).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        t, x, y, fix, state = _read_replay(path)
        self.t = np.array(t, dtype=np.float64)
        self.x = np.array(x, dtype=np.float64)
        self.y = np.array(y, dtype=np.float64)
        self.fix = np.array(fix, dtype=bool)
        self.state = np.array(state, dtype=np.int64)
        self.period = float(self.t[-1] - self.t[0]) + (
            float(np.median(np.diff(self.t))) if len(self.t) > 1 else 1.0
        )

    def at(self, t_ms: float) -> GazePoint:
        t = self.t[0] + (t_ms - self.t[0]) % self.period if t_ms >= self.t[0] else self.t[0]
        k = max(int(np.searchsorted(self.t, t, side="right")) - 1, 0)
        return GazePoint(float(self.x[k]), float(self.y[k]), bool(self.fix[k]), int(self.state[k]))


_REPLAY_FORMAT = (
    'each line must be a JSON object like {"t_ms": 0, "x": 640, "y": 360, "fix": true, '
    '"state": 7} with t_ms increasing'
)


def _read_replay(
    path: Path,
) -> tuple[list[float], list[float], list[float], list[bool], list[int]]:
    """Read and check a replay file: (t_ms, x, y, fix, state) columns."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise TrackerError(f"replay file {path} is not a file; give a JSON-lines file")
        if size > MAX_REPLAY_BYTES:
            raise TrackerError(
                f"replay file {path} is {size / 2**20:.0f} MiB, over the "
                f"{MAX_REPLAY_BYTES // 2**20} MiB limit; replay a shorter recording"
            )
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TrackerError(
            f"replay file {path} does not exist; give the path of a JSON-lines gaze file"
        ) from None
    except UnicodeDecodeError as exc:
        raise TrackerError(
            f"replay file {path} is not UTF-8 text (byte {exc.start}); {_REPLAY_FORMAT}"
        ) from None
    except OSError as exc:
        raise TrackerError(f"replay file {path} cannot be read ({exc.strerror})") from None
    t: list[float] = []
    x: list[float] = []
    y: list[float] = []
    fix: list[bool] = []
    state: list[int] = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        t_ms, x_px, y_px, fixated, bits = _replay_row(line, path, line_no)
        if t and t_ms <= t[-1]:
            raise TrackerError(
                f"replay file {path}, line {line_no}: t_ms {t_ms:g} does not increase "
                f"(previous {t[-1]:g}); {_REPLAY_FORMAT}"
            )
        t.append(t_ms)
        x.append(x_px)
        y.append(y_px)
        fix.append(fixated)
        state.append(bits)
    if not t:
        raise TrackerError(f"replay file {path} holds no frames; {_REPLAY_FORMAT}")
    return t, x, y, fix, state


def _replay_row(line: str, path: Path, line_no: int) -> tuple[float, float, float, bool, int]:
    def bad(what: str) -> TrackerError:
        return TrackerError(f"replay file {path}, line {line_no}: {what}; {_REPLAY_FORMAT}")

    try:
        r = json.loads(line)
    except (ValueError, RecursionError):
        raise bad("not JSON") from None
    if not isinstance(r, dict):
        raise bad("not a JSON object")
    nums = []
    for key in ("t_ms", "x", "y"):
        v = r.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(f"{key} must be a number")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise bad(f"{key} must be finite")
        nums.append(f)
    fix = r.get("fix", False)
    if not isinstance(fix, bool):
        raise bad("fix must be true or false")
    state = r.get("state", STATE_OK)
    if isinstance(state, bool) or not isinstance(state, int) or not 0 <= state <= 0xFF:
        raise bad("state must be an integer 0..255 (Eye Tribe state bits)")
    return nums[0], nums[1], nums[2], fix, state
