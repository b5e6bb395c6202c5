"""Running a stored session: where a new or restarted one starts (:func:`resume_plan`), the
protocol that records into the store (:func:`protocol_for_session`) and where its answer
recordings live (:func:`audio_dir`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gazelab.annotation.protocol.machine import LabelingProtocol
from gazelab.annotation.protocol.sinks import StoreRecorder
from gazelab.annotation.store import SessionRecord, SessionStore
from gazelab.settings import ProtocolSettings


@dataclass(frozen=True)
class SessionPlan:
    """What a (new or resumed) session needs to run: its record and where to start."""

    record: SessionRecord
    start_trial: int
    labels: dict[int, str]


def resume_plan(store: SessionStore, session_id: int) -> SessionPlan:
    """Where a restarted session continues: the first unlabelled image
    (docs/running-a-session.md#the-protocol)."""
    rec = store.session(session_id)
    first = store.first_unlabelled_trial(session_id)
    start = len(rec.stimulus_order) if first is None else first
    return SessionPlan(rec, start, store.final_labels(session_id))


def protocol_for_session(
    store: SessionStore,
    session_id: int,
    timings: ProtocolSettings,
    *,
    clock: Callable[[], float] = time.monotonic,
    hold_on_fault: bool = False,
) -> LabelingProtocol:
    """A protocol recording into the store, resuming wherever the session stands.

    ``hold_on_fault``: records the store cannot take are held for
    :meth:`StoreRecorder.retry` (a live session) instead of raising."""
    plan = resume_plan(store, session_id)
    return LabelingProtocol(
        plan.record.stimulus_order,
        timings,
        clock=clock,
        sink=StoreRecorder(store, session_id, hold_on_fault=hold_on_fault),
        start_trial=plan.start_trial,
        labels=plan.labels,
    )


def audio_dir(store_path: str | Path, session_uuid: str) -> Path:
    """Where a session's answer WAVs live: next to the store, one folder per session."""
    p = Path(store_path)
    return p.parent / f"{p.stem}-audio" / session_uuid
