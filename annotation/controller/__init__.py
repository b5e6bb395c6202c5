"""The annotation session without Qt: create/resume, calibrate, validate, poll, label, advance.

:class:`AnnotationSession` owns everything a session does that is neither
painting nor timing nor keys (docs/architecture.md#data-flow):
the set-up checks, the store record and its lease, the tracker, the protocol
state machine (docs/running-a-session.md#the-protocol), gaze capture, calibration and validation results,
labels, pauses, store faults and the end. The full-screen window
(:mod:`gazelab.app.annotate`) paints its state, times its phases and forwards
keys; the headless runner (:mod:`gazelab.annotation.simulated`) drives the same
object with a sleep loop; the experimenter view observes it. A session with a
real tracker runs from Python without Qt::

    s = AnnotationSession(config)            # checks, connects the tracker, then records
    s.calibrate(dwell_s=0.75)
    s.validate(dwell_s=1.2)                  # blocking; the window steps it with timers
    s.start_trials()
    while not s.finished:
        s.tick(); s.poll()
        ...  s.give_label(LabelAnswer("happy")); s.advance()
    s.finish()

The session row is created only once the tracker is connected, so a tracker
that cannot connect leaves nothing behind in the store.

The package holds one part per module, each building on the one before:
:mod:`.state` (state, observers, queries, the session's own writes),
:mod:`.faults` (store faults and the lease), :mod:`.gaze`, :mod:`.validation`
(calibration and validation), :mod:`.trials` (practice, trials, the end) and
:mod:`.session` (set-up and opening: :class:`AnnotationSession`). Import from here:
``from gazelab.annotation.controller import AnnotationSession``.
"""

from __future__ import annotations

from gazelab.annotation.controller.session import AnnotationSession, participant_index
from gazelab.annotation.controller.state import Listener
from gazelab.annotation.controller.validation import ValidationOutcome

__all__ = ["AnnotationSession", "Listener", "ValidationOutcome", "participant_index"]
