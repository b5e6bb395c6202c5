"""The run of a session: practice trials (not stored), the trials, labels, advancing,
pauses, breaks and the end (everything committed, the lease released).
"""

from __future__ import annotations

from gazelab.annotation.controller.validation import ValidationMixin
from gazelab.annotation.protocol import (
    STORE_FAULTS,
    LabelAnswer,
    LabelingProtocol,
    ListSink,
    Phase,
    PhaseChange,
    ProtocolError,
)
from gazelab.gaze.geometry import PLACEMENT_EVENT, StimulusPlacement
from gazelab.models.datasets.registry import open_image_set


class TrialsMixin(ValidationMixin):
    """Practice, trials and the end of a session."""

    # -- practice ---------------------------------------------------------------------------
    PRACTICE_IMAGES = "synthetic:{n}:90210"
    """Practice faces: synthetic, never the study's own images (no priming), not stored."""

    def start_practice(self) -> list[PhaseChange]:
        """Run ``protocol.practice_trials`` practice trials before the study's own: the same
        screens and keys, but nothing of them is stored (labels, phases, gaze)."""
        n = self.settings.protocol.practice_trials
        if n <= 0 or self.practising:
            raise ProtocolError("no practice trials to start (protocol.practice_trials = 0)")
        images = open_image_set(self.PRACTICE_IMAGES.format(n=n))
        self._main = (self.protocol, self.images, self._shapes)
        self.images, self._shapes = images, {}
        self.protocol = LabelingProtocol(images.ids, self.settings.protocol, clock=self.clock,
                                         sink=ListSink())  # fmt: skip
        changes = self.protocol.start()
        self.steer_observer()
        self._notify("practice", n=n)
        return changes

    def end_practice(self) -> None:
        """Back to the study's own trials (they start with :meth:`start_trials`)."""
        if self._main is None:
            return
        self.protocol, self.images, self._shapes = self._main
        self._main = None
        self.event("practice_done", n=self.settings.protocol.practice_trials)
        self._notify("practice_done")

    # -- trials -----------------------------------------------------------------------------
    def start_trials(self) -> list[PhaseChange]:
        """Start the trials, or continue them after a pause (the trial starts again).

        Refused (:class:`ProtocolError`) while the last validation failed its thresholds
        and was not overridden (:meth:`override`)."""
        if not self.may_start():
            v = self.validation
            raise ProtocolError(
                f"the validation did not pass ({'; '.join(v.problems if v else ())}):"
                " recalibrate, measure the failing targets again, or override"
            )
        changes: list[PhaseChange] = []
        if self.protocol.phase is Phase.IDLE:
            changes = self.protocol.start()
        elif self.protocol.phase is Phase.PAUSED:
            self.paused_for_store = False
            self.protocol.resume()
        self.check_store()
        self.steer_observer()
        self._notify("phase", phase=self.protocol.phase)
        return changes

    def tick(self, until: float | None = None) -> list[PhaseChange]:
        """Enter every timed phase that is due (by ``until``, when given:
        :meth:`LabelingProtocol.tick`); steers a simulated participant."""
        if self.protocol.phase is Phase.PAUSED:
            return []
        changes = self.protocol.tick(until)
        for ch in changes:
            if ch.phase is Phase.IMAGE:
                self._record_placement(ch.trial_index, ch.start_s)
        if changes:
            self.steer_observer()
            self._notify("phase", phase=self.protocol.phase)
        return changes

    def _record_placement(self, trial_index: int, local_s: float) -> None:
        """Record where the image of ``trial_index`` is shown (the centred square), in the
        fields an imported trial's ``image_rect_px`` has (:mod:`gazelab.analysis.placement`
        reads both). Not in practice; the image's shape is looked up when the write runs
        (after the onset's paint, in the window)."""
        if self.practising or trial_index < 0 or trial_index >= len(self.protocol.order):
            return
        image_id = self.protocol.order[trial_index]
        sid = self.record.id

        def write() -> None:
            placement = StimulusPlacement.centred_square(
                self.settings.display, self.settings.stimulus.square_px,
                self.image_shape(image_id), self.screen_px,
            )  # fmt: skip
            self.store.add_event(sid, PLACEMENT_EVENT, local_s, trial_index=trial_index,
                                 payload=placement.to_payload(image_id))  # fmt: skip

        self.commit(write)

    def give_label(self, answer: LabelAnswer) -> bool:
        ok = self.protocol.give_label(answer)
        if ok:
            self.last_label = answer.label
            self._notify("label", label=answer.label, text=answer.text, source=answer.source)
        return ok

    def advance(self, *, flush: bool = True) -> str:
        """The advance key. Returns ``""`` (refused: no label yet), ``"next"``, ``"validate"``
        (a periodic validation is due; the protocol is paused), ``"break"`` (a rest is due,
        every ``protocol.break_every_n_trials``; paused), ``"practice_done"`` (the last
        practice trial; back to the study's trials, not started) or ``"done"``.

        ``flush=False``: the ended trial's samples are left for :meth:`flush_trial`, which
        a view calls once it has painted the blank the key brought (a store write is not
        part of that onset)."""
        if not self.protocol.advance(self.settings.protocol.advance_key):
            return ""
        if self.practising:
            if not self.protocol.finished:
                self.steer_observer()
                return "next"
            self.end_practice()
            return "practice_done"
        if flush:
            self.flush_trial()
        self.steer_observer()
        self._notify("phase", phase=self.protocol.phase)
        if self.protocol.finished:
            return "done"
        n = self.settings.protocol.validate_every_n_trials
        if n and self.protocol.trials_done % n == 0:
            self.protocol.pause()
            return "validate"
        b = self.settings.protocol.break_every_n_trials
        if b and self.protocol.trials_done % b == 0:
            self.protocol.pause()
            self.event("break", trial_index=self.protocol.trial_index)
            return "break"
        return "next"

    def flush_trial(self) -> None:
        """Write the samples taken so far (the ended trial's are on disk before the next
        trial's image); on a store fault they stay pending and the session pauses."""
        if self.practising:
            return
        try:
            self.capture.flush()
        except STORE_FAULTS as exc:
            self.on_store_fault(exc)

    def pause(self) -> bool:
        ok = self.protocol.pause()
        if ok:
            self._notify("phase", phase=self.protocol.phase)
        return ok

    # -- the end ----------------------------------------------------------------------------
    def finish(self) -> list[str]:
        """End (or interrupt) the session: commit everything, release the lease, close the
        tracker. Returns what could not be written (empty when everything is on disk)."""
        if self.finished_at is not None:
            return []
        self.finished_at = self.clock()
        lease_lost = self.lease_lost
        if not self.protocol.finished and not lease_lost:
            self.protocol.quit()
        lost: list[str] = []
        try:
            self.tracker.tracker.stop()
            if not lease_lost:
                lost = self._last_writes()
        finally:
            self.tracker.close()
        self._notify("finished")
        return lost

    def _last_writes(self) -> list[str]:
        """Commit what is pending; if the store still fails, say what is lost."""
        try:
            self.capture.close()
        except STORE_FAULTS as exc:
            self.recorder.fault = self.recorder.fault or exc
        self.recorder.retry()
        try:
            self.store.release_lease(self.lease)
        except STORE_FAULTS as exc:  # it goes stale when this process ends
            self.recorder.fault = self.recorder.fault or exc
        held, pending = len(self.recorder.held), self.capture.writer.pending
        if held or pending:
            return [
                f"{held} records and {pending} gaze samples of session {self.record.id} could"
                f" not be written to {self.store.path} ({self.recorder.fault}); the session"
                " resumes at its first unlabelled image"
            ]
        return []
