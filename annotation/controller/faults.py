"""Store faults and the session's lease: pause on a fault with nothing lost, retry, and
stop recording when another process took the session over.
"""

from __future__ import annotations

from gazelab.annotation.controller.state import SessionState
from gazelab.annotation.protocol import STORE_FAULTS, Phase
from gazelab.annotation.store import LEASE_RENEW_S, LeaseLostError


class StoreFaultsMixin(SessionState):
    """What a session does when its store fails or its lease is lost."""

    def on_store_fault(self, exc: BaseException) -> None:
        """Pause the session (keeping what is unwritten in memory) and say why."""
        if self._store_fault is None:
            self._store_fault_since = self.clock()
        self._store_fault = exc
        held, pending = len(self.recorder.held), self.capture.writer.pending
        self.store_message = (
            f"Session paused: {exc}.\n\nNothing is lost: {held} records and {pending} gaze"
            " samples wait in memory. Free disk space (or fix the store): the session then"
            " continues by itself. R retries now; Esc ends and loses what waits."
        )
        self._pause_for_store()
        self._notify("store_fault", error=str(exc))

    def _pause_for_store(self) -> None:
        if self.protocol.phase not in (Phase.IDLE, Phase.PAUSED, Phase.DONE, Phase.QUIT):
            self.protocol.pause()
            self.paused_for_store = True

    def check_store(self) -> None:
        """Notice a fault the recorder held (writes inside protocol transitions)."""
        if self.recorder.fault is not None and self._store_fault is None:
            self.on_store_fault(self.recorder.fault)
        elif self._store_fault is not None:
            self._pause_for_store()  # e.g. trials started while the store was failing

    def retry_store(self) -> bool:
        """Write what was held; on success clear the message and resume the session."""
        if self._store_fault is None or self.lease_lost:
            return True
        try:
            ok = self.recorder.retry()
            if ok:
                self.capture.flush()
                self.store.renew_lease(self.lease)
        except LeaseLostError as exc:
            self._on_lease_lost(exc)
            return False
        except STORE_FAULTS as exc:
            self.recorder.fault = exc
            ok = False
        if not ok:
            self.on_store_fault(self.recorder.fault or self._store_fault)
            return False
        fault, since = self._store_fault, self._store_fault_since
        self._store_fault = self._store_fault_since = None
        self.store_message = ""
        now = self.clock()
        self._lease_renewed = now
        self.commit(lambda: self.store.add_event(
            self.record.id, "store_fault", since if since is not None else now,
            trial_index=self.protocol.trial_index,
            payload={"error": str(fault), "recovered_s": now},
        ))  # fmt: skip
        self._notify("store_back")
        return True

    def _renew_lease(self) -> None:
        now = self.clock()
        if self.lease_lost or now - self._lease_renewed < LEASE_RENEW_S:
            return
        try:
            self.store.renew_lease(self.lease)
            self._lease_renewed = now
        except LeaseLostError as exc:
            self._on_lease_lost(exc)
        except STORE_FAULTS as exc:
            self._lease_renewed = now  # retried with the held records, and again in 5 s
            self.on_store_fault(exc)

    def _on_lease_lost(self, exc: BaseException) -> None:
        """Another process runs this session now: stop recording and say so."""
        self.lease_lost = True
        self._store_fault = exc
        self.store_message = f"{exc}. Esc closes this window."
        self._notify("lease_lost", error=str(exc))
