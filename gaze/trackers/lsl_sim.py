"""An LSL gaze outlet for tests and demos: the synthetic observer as a *Gaze* stream.

:class:`LSLGazeOutlet` publishes gaze from a
:class:`~gazelab.gaze.trackers.simulator.SyntheticObserver` (or any gaze
source, or scripted rows) as an LSL stream of type ``Gaze`` with the XDF/LSL
gaze meta-data (``desc/channels/channel`` with ``label``, ``type``
``ScreenX`` / ``ScreenY``, ``unit`` ``pixels`` or ``normalized``, ``eye``),
so :class:`~gazelab.gaze.trackers.lsl.LSLTracker` can be run and tested
without hardware. Samples carry explicit timestamps ``t0 + k / rate`` so the
stream hits its nominal rate exactly and a receiver can tell that none was
lost; an optional ``SampleIndex`` channel carries ``k`` too.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.trackers.base import (
    STATE_TRACKING_FAIL,
    STATE_TRACKING_GAZE,
    STATE_TRACKING_LOST,
)
from gazelab.gaze.trackers.lsl import import_pylsl
from gazelab.gaze.trackers.registry import OpenTracker, TrackerRequest, register_tracker
from gazelab.gaze.trackers.simulator import GazeSource, RunsUntilStopped, SyntheticObserver

SIM_STREAM_NAME = "gazelab-sim-gaze"


def gaze_stream_info(
    name: str = SIM_STREAM_NAME,
    *,
    source_id: str = SIM_STREAM_NAME,
    rate_hz: float = 60.0,
    unit: str = "pixels",
    metadata: bool = True,
    counter_channel: bool = True,
    screen_px: tuple[int, int] = (2560, 1440),
) -> Any:
    """A ``pylsl.StreamInfo`` for a gaze stream: x, y (and a sample index), double precision.

    Parameters
    ----------
    unit : ``"pixels"`` (screen px) or ``"normalized"`` (fraction of the screen).
    metadata : write ``desc/channels`` (set ``False`` to test streams without it).
    counter_channel : add a ``SampleIndex`` channel (type ``Counter``) with ``k``.
    """
    pylsl = import_pylsl()

    n = 3 if counter_channel else 2
    info = pylsl.StreamInfo(name, "Gaze", n, rate_hz, pylsl.cf_double64, source_id)
    if not metadata:
        return info
    desc = info.desc()
    desc.append_child_value("manufacturer", "gazelab")
    screen = desc.append_child("screen")
    screen.append_child_value("width_px", str(screen_px[0]))
    screen.append_child_value("height_px", str(screen_px[1]))
    chans = desc.append_child("channels")
    rows = [("ScreenX", "ScreenX", unit), ("ScreenY", "ScreenY", unit)]
    if counter_channel:
        rows.append(("SampleIndex", "Counter", "count"))
    for label, ctype, cunit in rows:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("eye", "both")
        ch.append_child_value("type", ctype)
        ch.append_child_value("unit", cunit)
    return info


class LSLGazeOutlet(RunsUntilStopped):
    """Streams gaze on LSL at a fixed nominal rate.

    Parameters
    ----------
    source : where gaze comes from (default: a :class:`SyntheticObserver` seeded with
        ``seed``); asked with tracker time ``k * 1000 / rate_hz`` ms.
    rows : scripted ``(N, 2)`` screen-px gaze instead of a source, sent once.
    rate_hz : nominal sampling rate, Hz (60 ... 1200 and more).
    unit : ``"pixels"`` or ``"normalized"`` (the positions are scaled by ``screen_px``).
    record : keep every sent sample (:attr:`sent_ts`, :attr:`sent_xy`) to compare
        with what a receiver got.
    wait_for_consumer : start the clock only when an inlet is connected, so a test
        receives the stream from sample 0.
    """

    def __init__(
        self,
        source: GazeSource | None = None,
        *,
        rows: NDArray[np.floating] | None = None,
        name: str = SIM_STREAM_NAME,
        source_id: str = SIM_STREAM_NAME,
        rate_hz: float = 60.0,
        screen_px: tuple[int, int] = (2560, 1440),
        unit: str = "pixels",
        metadata: bool = True,
        counter_channel: bool = True,
        seed: int = 0,
        record: bool = False,
        wait_for_consumer: bool = True,
        chunk_s: float = 0.01,
    ) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz = {rate_hz} must be positive")
        if unit not in ("pixels", "normalized"):
            raise ValueError(f"unit {unit!r} must be 'pixels' or 'normalized'")
        self.source: GazeSource | None = (
            None if rows is not None else source or SyntheticObserver(screen_px, seed=seed)
        )
        self.rows = None if rows is None else np.asarray(rows, dtype=np.float64)
        self.name, self.source_id = name, source_id
        self.rate_hz = float(rate_hz)
        self.screen_px = screen_px
        self.unit = unit
        self.metadata = metadata
        self.counter_channel = counter_channel
        self.record = record
        self.wait_for_consumer = wait_for_consumer
        self.chunk_s = chunk_s
        self.samples_sent = 0
        self.sent_ts: list[float] = []
        self.sent_xy: list[tuple[float, float]] = []
        self.t0: float | None = None
        self._outlet: Any = None
        self._stop = threading.Event()
        self.paused = threading.Event()
        """While set, samples fall due but are not sent (a stalled tracker app): the
        outlet stays on the network and the receiver sees the timestamps jump."""
        self.samples_withheld = 0
        self._thread: threading.Thread | None = None

    def start(self) -> LSLGazeOutlet:
        pylsl = import_pylsl()

        info = gaze_stream_info(
            self.name,
            source_id=self.source_id,
            rate_hz=self.rate_hz,
            unit=self.unit,
            metadata=self.metadata,
            counter_channel=self.counter_channel,
            screen_px=self.screen_px,
        )
        self._outlet = pylsl.StreamOutlet(info)
        self._stop.clear()
        self._thread = threading.Thread(target=self._push_loop, name="lsl-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop streaming and destroy the outlet (receivers see the stream vanish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._outlet = None  # liblsl destroys the outlet with its last reference

    def _sample_xy(self, k: int) -> tuple[float, float]:
        if self.rows is not None:
            return float(self.rows[k, 0]), float(self.rows[k, 1])
        assert self.source is not None
        g = self.source.at(k * 1000.0 / self.rate_hz)
        ok = g.state & STATE_TRACKING_GAZE and not g.state & (
            STATE_TRACKING_FAIL | STATE_TRACKING_LOST
        )
        return (g.x, g.y) if ok else (math.nan, math.nan)

    def _push_loop(self) -> None:
        pylsl = import_pylsl()

        outlet = self._outlet
        if self.wait_for_consumer:
            while not self._stop.is_set() and not outlet.wait_for_consumers(0.1):
                pass
        t0 = pylsl.local_clock()
        self.t0 = t0
        period = 1.0 / self.rate_hz
        scale = (
            np.array(self.screen_px, dtype=np.float64)
            if self.unit == "normalized"
            else np.ones(2, dtype=np.float64)
        )
        limit = len(self.rows) if self.rows is not None else None
        k = 0
        while not self._stop.is_set():
            now = pylsl.local_clock()
            due = int(math.floor((now - t0) / period)) + 1
            if limit is not None:
                due = min(due, limit)
            if due > k and self.paused.is_set():
                self.samples_withheld += due - k
                k = due
            if due > k:
                ks = np.arange(k, due)
                xy = np.array([self._sample_xy(int(i)) for i in ks], dtype=np.float64)
                cols = [xy / scale]
                if self.counter_channel:
                    cols.append(ks[:, None].astype(np.float64))
                chunk = np.hstack(cols)
                stamps = (t0 + ks * period).tolist()
                outlet.push_chunk(chunk, stamps)
                if self.record:
                    self.sent_ts.extend(stamps)
                    self.sent_xy.extend(map(tuple, xy.tolist()))
                self.samples_sent += len(ks)
                k = due
            if limit is not None and k >= limit:
                return
            time.sleep(self.chunk_s)


@register_tracker("lsl-sim", "a simulated LSL gaze stream in-process, through the real inlet",
                  simulated=True, simulates="lsl", model="gazelab LSL gaze simulator")  # fmt: skip
def open_simulated_lsl(request: TrackerRequest) -> OpenTracker:
    import uuid

    from gazelab.gaze.trackers.lsl import LSLTracker

    observer = SyntheticObserver(request.screen_px, seed=request.seed)
    name = f"gazelab-sim-{uuid.uuid4().hex[:8]}"
    sim = LSLGazeOutlet(observer, name=name, source_id=name, rate_hz=request.rate_hz,
                        screen_px=request.screen_px, wait_for_consumer=False).start()  # fmt: skip
    try:
        tracker = LSLTracker(f"lsl:source_id={name}", screen_px=request.screen_px,
                             clock=request.clock)  # fmt: skip
        tracker.connect()
    except BaseException:
        sim.stop()
        raise
    return OpenTracker(tracker, sim, observer)
