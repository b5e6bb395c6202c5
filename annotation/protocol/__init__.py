"""The CK+ labeling protocol as a state machine (docs/running-a-session.md#the-protocol), free of
Qt and of wall time.

Each trial runs ``blank1`` → ``cross`` → ``blank2`` → ``image``; the image stays
until the participant has given a label **and** presses the advance key. The
machine is driven by an injected monotonic clock: :meth:`LabelingProtocol.tick`
moves through every timed phase whose scheduled end has passed. Phase ends are
scheduled from the previous *scheduled* onset (not from when ``tick`` happened
to run), so a late tick never shifts the schedule of later phases.

The view reports when a phase actually reached the screen with
:meth:`LabelingProtocol.flipped`; the difference to the schedule is the onset
error stored for every trial. Every change goes to a :class:`ProtocolSink`
(:class:`StoreRecorder` commits it to the session store as it happens, so a
killed session loses nothing it had recorded). A live session's recorder holds
records it cannot write (a full disk) in memory, in order, until
:meth:`StoreRecorder.retry` writes them, so a store fault pauses the session
instead of losing or breaking it.

The package holds one concept per module: :mod:`.records` (what the protocol reports),
:mod:`.sinks` (where it goes: memory or the store), :mod:`.machine` (the state machine),
:mod:`.order` (presentation orders) and :mod:`.sessions` (running a stored session).
Import from here: ``from gazelab.annotation.protocol import LabelingProtocol``.
"""

from __future__ import annotations

from gazelab.annotation.protocol.machine import (
    FakeClock,
    LabelingProtocol,
    ProtocolError,
)
from gazelab.annotation.protocol.order import (
    balanced_latin_row,
    participant_seed,
    session_order,
    stimulus_order,
)
from gazelab.annotation.protocol.records import (
    LabelAnswer,
    Phase,
    PhaseChange,
    ProtocolSink,
)
from gazelab.annotation.protocol.sessions import (
    SessionPlan,
    audio_dir,
    protocol_for_session,
    resume_plan,
)
from gazelab.annotation.protocol.sinks import (
    STORE_FAULTS,
    ListSink,
    StoreRecorder,
)

__all__ = [
    "FakeClock",
    "LabelAnswer",
    "LabelingProtocol",
    "ListSink",
    "Phase",
    "PhaseChange",
    "ProtocolError",
    "ProtocolSink",
    "STORE_FAULTS",
    "SessionPlan",
    "StoreRecorder",
    "audio_dir",
    "balanced_latin_row",
    "participant_seed",
    "protocol_for_session",
    "resume_plan",
    "session_order",
    "stimulus_order",
]
