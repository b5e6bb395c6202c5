"""Gaze during a session: samples into the store, what views show of them (rate, loss,
the last second), and where a simulated participant looks.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from gazelab.annotation.controller.faults import StoreFaultsMixin
from gazelab.annotation.protocol import STORE_FAULTS, Phase
from gazelab.gaze.trackers.base import GazeSample


class _RecentSamples:
    """The session's tracker, seen through: every drained sample is also kept for views
    (the last ``keep_s`` seconds); everything else is the tracker's own."""

    def __init__(self, tracker: Any, keep_s: float = 2.0) -> None:
        self._tracker = tracker
        self.keep_s = keep_s
        self.samples: deque[GazeSample] = deque()
        self.received = 0
        self.valid = 0

    def drain(self) -> list[GazeSample]:
        out: list[GazeSample] = self._tracker.drain()
        if out:
            self.samples.extend(out)
            self.received += len(out)
            self.valid += sum(1 for g in out if g.valid)
            cut = out[-1].local_s - self.keep_s
            while self.samples and self.samples[0].local_s < cut:
                self.samples.popleft()
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracker, name)


class GazeMixin(StoreFaultsMixin):
    """Polling gaze into the store and the live figures a view shows."""

    def poll(self) -> int:
        """Move gaze samples into the store, renew the lease, notice store faults."""
        if self.lease_lost or self.practising:  # another process records it / not data
            self.tracker.tracker.drain()
            if self.practising:
                self._renew_lease()
            return 0
        n = 0
        try:
            n = self.capture.poll()  # a failed batch stays pending in the writer
        except STORE_FAULTS as exc:
            self.on_store_fault(exc)
        self._renew_lease()
        self.check_store()
        return n

    @property
    def tracker_warning(self) -> str:
        return self.capture.warning or ""

    def recent_gaze(self, seconds: float = 1.0) -> list[GazeSample]:
        """The samples of the last ``seconds`` (as received; valid and invalid)."""
        samples = list(self.live.samples)
        if not samples:
            return []
        cut = samples[-1].local_s - seconds
        return [g for g in samples if g.local_s >= cut]

    def sample_rate_hz(self) -> float:
        """Samples per second over the last second received (0 without any)."""
        last = self.recent_gaze(1.0)
        if len(last) < 2:
            return 0.0
        span = last[-1].local_s - last[0].local_s
        return (len(last) - 1) / span if span > 0 else 0.0

    def data_loss_pct(self) -> float:
        """Samples missing or invalid so far, percent of the tracker's nominal rate × the
        time since the session opened (NaN before any time passed)."""
        elapsed = self.clock() - self._opened_s
        expected = self.settings.tracker.rate_hz * elapsed
        if expected <= 0:
            return math.nan
        return 100.0 * max(0.0, expected - self.live.valid) / expected

    def steer_observer(self) -> None:
        """A simulated participant looks where the screen says: the image, else the centre."""
        obs = self.observer
        if obs is None:
            return
        iid = self.protocol.image_id
        if self.protocol.phase is Phase.IMAGE and iid is not None:
            layout = self.layout_for(iid)
            obs.look_at_image(
                self.images.regions.get(iid), layout.image_shape, layout.image_rect_on_screen
            )
        else:
            obs.look_at((self.screen_px[0] / 2, self.screen_px[1] / 2))
