"""A tracker that follows the mouse, for demos without an eye tracker (docs/running-a-session.md#trackers).

The position comes from a callable (the GUI passes the cursor position), so
this module needs no Qt. A background thread samples it at ``rate_hz``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from gazelab.gaze.trackers.base import (
    STATE_OK,
    STATE_TRACKING_LOST,
    CalibrationPoint,
    CalibrationResult,
    GazeSample,
    sample_is_valid,
)
from gazelab.gaze.trackers.registry import (
    OpenTracker,
    TrackerRequest,
    TrackerSpecError,
    register_tracker,
)


def perfect_calibration(points_xy: list[tuple[float, float]]) -> CalibrationResult:
    """The result of a tracker that needs no calibration: every point exact."""
    pts = tuple(CalibrationPoint(x, y, 0.0, 0.0, 0.0, 0.0) for x, y in points_xy)
    return CalibrationResult(True, 0.0, 0.0, 0.0, pts)


class MouseTracker:
    """Samples ``position()`` (screen px) at ``rate_hz``; every sample is a 'fixation' when still."""

    def __init__(
        self,
        position: Callable[[], tuple[float, float] | None],
        *,
        rate_hz: int = 60,
        screen_px: tuple[int, int] = (2560, 1440),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.position = position
        self.period_s = 1.0 / rate_hz
        self.screen_px = screen_px
        self.clock = clock
        self._samples: collections.deque[GazeSample] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = clock()

    def connect(self) -> None:
        pass

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mouse-tracker", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        last: tuple[float, float] | None = None
        next_t = self.clock()
        while not self._stop.is_set():
            pos = self.position()
            now = self.clock()
            if pos is None:  # the pointer has not entered the window yet: a lost sample
                x, y, state = 0.0, 0.0, STATE_TRACKING_LOST
            else:
                (x, y), state = pos, STATE_OK
            self._samples.append(
                GazeSample(
                    time_ms=(now - self._t0) * 1000.0,
                    local_s=now,
                    x=x,
                    y=y,
                    raw_x=x,
                    raw_y=y,
                    fix=last == (x, y),
                    state=state,
                    valid=pos is not None and sample_is_valid(state, x, y, self.screen_px),
                )
            )
            last = (x, y)
            next_t += self.period_s
            self._stop.wait(max(0.0, next_t - self.clock()))

    def drain(self) -> list[GazeSample]:
        out = []
        while self._samples:
            out.append(self._samples.popleft())
        return out

    def calibrate(
        self,
        points_xy: list[tuple[float, float]],
        *,
        dwell_s: float = 0.0,
        on_point: Callable[[int, tuple[float, float]], None] | None = None,
    ) -> CalibrationResult:
        """Nothing to calibrate: a perfect result, so the session flow stays the same."""
        for i, xy in enumerate(points_xy):
            if on_point is not None:
                on_point(i, xy)
            time.sleep(dwell_s)
        return perfect_calibration(points_xy)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def close(self) -> None:
        self.stop()


class NullTracker:
    """No eye tracker (``tracker.kind = 'none'``): labels only, no gaze samples."""

    connected = True

    def connect(self) -> None:
        pass

    def start(self) -> None:
        pass

    def drain(self) -> list[GazeSample]:
        return []

    def calibrate(
        self,
        points_xy: list[tuple[float, float]],
        *,
        dwell_s: float = 0.0,
        on_point: Callable[[int, tuple[float, float]], None] | None = None,
    ) -> CalibrationResult:
        return perfect_calibration(points_xy)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


@register_tracker("mouse", "the mouse pointer as gaze (demos; no eye tracker)", model="mouse",
                  eye_tracker=False)  # fmt: skip
def open_mouse(request: TrackerRequest) -> OpenTracker:
    if request.mouse_position is None:
        raise TrackerSpecError("tracker 'mouse' needs a window to read the pointer from")
    tracker = MouseTracker(
        request.mouse_position, rate_hz=request.rate_hz, screen_px=request.screen_px,
        clock=request.clock,
    )  # fmt: skip
    return OpenTracker(tracker)


@register_tracker("none", "no eye tracker: labels only", model="none", eye_tracker=False)
def open_none(request: TrackerRequest) -> OpenTracker:
    return OpenTracker(NullTracker())
