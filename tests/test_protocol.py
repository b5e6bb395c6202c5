"""The labeling protocol state machine on a fake clock (docs/running-a-session.md#the-protocol)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gazelab.annotation.protocol import (
    FakeClock,
    LabelAnswer,
    LabelingProtocol,
    ListSink,
    Phase,
    ProtocolError,
    StoreRecorder,
    protocol_for_session,
    resume_plan,
    stimulus_order,
)
from gazelab.annotation.store import SessionStore
from gazelab.settings import ProtocolSettings

IDS = [f"img{i}" for i in range(8)]


def run_to_image(p: LabelingProtocol, clock: FakeClock, step: float = 0.001) -> None:
    while p.phase is not Phase.IMAGE:
        clock.advance(step)
        p.tick()


def test_exact_phase_durations_with_a_fine_tick() -> None:
    clock = FakeClock()
    sink = ListSink()
    p = LabelingProtocol(IDS, ProtocolSettings(), clock=clock, sink=sink)
    t0 = clock()
    p.start()
    run_to_image(p, clock)
    changes = sink.of("phase")
    assert [c.phase for c in changes] == [Phase.BLANK1, Phase.CROSS, Phase.BLANK2, Phase.IMAGE]
    scheduled = [c.scheduled_s - t0 for c in changes]
    assert scheduled == pytest.approx([0.0, 0.5, 0.7, 1.2], abs=1e-12)
    # a 1 ms tick switches within 1 ms of the schedule
    assert all(0 <= c.changed_s - c.scheduled_s < 0.001 + 1e-9 for c in changes)


def test_late_ticks_do_not_shift_the_schedule() -> None:
    clock = FakeClock()
    timings = ProtocolSettings(blank1_ms=300, cross_ms=150, blank2_ms=400)
    p = LabelingProtocol(IDS, timings, clock=clock)
    t0 = clock()
    p.start()
    clock.advance(2.0)  # the app stalled for 2 s: every timed phase is overdue
    changes = p.tick()
    assert [c.phase for c in changes] == [Phase.CROSS, Phase.BLANK2, Phase.IMAGE]
    assert [c.scheduled_s - t0 for c in changes] == pytest.approx([0.3, 0.45, 0.85])
    assert p.next_deadline() is None  # the image has no time limit
    clock.advance(100.0)
    assert p.tick() == [] and p.phase is Phase.IMAGE


def test_a_phase_entered_ahead_keeps_its_schedule() -> None:
    """A view whose frame takes a measured while to reach the screen enters the phase that
    much before its deadline (``tick(until=deadline)``): the change says when it was
    made, the schedule (and so every later deadline) stays where it was."""
    clock = FakeClock()
    timings = ProtocolSettings(blank1_ms=300, cross_ms=150, blank2_ms=400)
    p = LabelingProtocol(IDS, timings, clock=clock)
    t0 = clock()
    p.start()
    clock.advance(0.2995)  # 0.5 ms before the cross is due
    assert p.tick() == [] and p.phase is Phase.BLANK1
    changes = p.tick(until=t0 + 0.3)
    assert [c.phase for c in changes] == [Phase.CROSS]
    assert changes[0].scheduled_s - t0 == pytest.approx(0.3, abs=1e-12)
    assert changes[0].changed_s - t0 == pytest.approx(0.2995, abs=1e-12)
    assert changes[0].start_s == changes[0].scheduled_s  # its records: at the schedule
    assert p.next_deadline() == pytest.approx(t0 + 0.45, abs=1e-12)  # not shifted
    assert p.tick(until=t0 + 0.44) == []  # nothing is due by then
    clock.advance(0.6)  # a stalled view: ``until`` before the clock enters what is due
    assert [c.phase for c in p.tick(until=t0 + 0.3)] == [Phase.BLANK2, Phase.IMAGE]
    # ``until`` reaches one deadline at most: a phase is never skipped by a far ``until``
    q = LabelingProtocol(IDS, timings, clock=clock)
    t1 = clock()
    q.start()
    changes = q.tick(until=t1 + 5.0)
    assert [c.phase for c in changes] == [Phase.CROSS]
    assert changes[0].start_s - t1 == pytest.approx(0.3, abs=1e-12)


def test_order_is_reproducible_from_the_seed() -> None:
    assert stimulus_order(IDS, 7) == stimulus_order(IDS, 7)
    assert stimulus_order(IDS, 7) != stimulus_order(IDS, 8)
    assert sorted(stimulus_order(IDS, 7)) == sorted(IDS)


def test_advance_blocked_without_label_and_relabel_counts_last() -> None:
    clock = FakeClock()
    sink = ListSink()
    p = LabelingProtocol(IDS, clock=clock, sink=sink)
    p.start()
    assert not p.give_label(LabelAnswer("happy"))  # no label before the image shows
    assert not p.advance()  # nor advancing
    run_to_image(p, clock)
    assert not p.advance()  # image without a label: blocked, still on the image
    assert p.phase is Phase.IMAGE and p.trial_index == 0
    assert p.give_label(LabelAnswer("sadness", source="voice", text="sad", confidence=0.8))
    assert p.give_label(LabelAnswer("fear"))  # corrected before advancing
    assert p.advance()
    assert p.trial_index == 1 and p.phase is Phase.BLANK1
    assert p.labels == {0: "fear"}
    presses = [e for e in sink.of("event") if e[0] == "keypress"]
    assert [e[3]["accepted"] for e in presses] == [False, True]
    with pytest.raises(ProtocolError, match="classes"):
        p.give_label(LabelAnswer("bored"))


def test_pause_resume_quit() -> None:
    clock = FakeClock()
    p = LabelingProtocol(IDS, clock=clock)
    p.start()
    clock.advance(0.6)
    p.tick()
    assert p.phase is Phase.CROSS
    assert p.pause() and p.phase is Phase.PAUSED
    clock.advance(30.0)
    assert p.tick() == []  # nothing runs while paused
    assert p.resume() and p.phase is Phase.BLANK1  # the trial restarts from its first blank
    t = clock()
    run_to_image(p, clock)
    assert p.phase_scheduled_s - t == pytest.approx(1.2)
    p.quit()
    assert p.finished and p.phase is Phase.QUIT and not p.advance()


def test_whole_session_and_sample_tagging() -> None:
    clock = FakeClock()
    p = LabelingProtocol(IDS[:3], clock=clock)
    p.start()
    onsets = []
    for _ in range(3):
        run_to_image(p, clock, step=0.01)
        onsets.append(p.phase_scheduled_s)
        clock.advance(1.0)
        p.give_label(LabelAnswer("happy"))
        p.advance()
    assert p.phase is Phase.DONE and p.finished
    assert p.phase_at(onsets[1] + 0.5) == (1, "image")
    assert p.phase_at(onsets[1] - 0.6) == (1, "cross")
    assert p.phase_at(onsets[0] - 10) == (None, None)
    assert p.phase_at(clock() + 1) == (None, "done")


def test_flip_records_onset_error_in_the_store(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.sqlite", create=True)
    rec = store.create_session(
        "P01", settings_toml="", seed=1, image_source="t", stimulus_order=IDS, start_local_s=0.0
    )
    clock = FakeClock()
    p = LabelingProtocol(IDS, clock=clock, sink=StoreRecorder(store, rec.id))
    p.start()
    run_to_image(p, clock)
    p.flipped(Phase.IMAGE, p.phase_scheduled_s + 0.0042)
    p.flipped(Phase.CROSS, clock())  # a late paint of a phase already left: ignored
    trial = store.trials(rec.id)[0]
    assert trial["onset_error_ms"] == pytest.approx(4.2)
    flips = [e for e in store.events(rec.id) if e["kind"] == "flip"]
    assert len(flips) == 1 and flips[0]["payload"]["phase"] == "image"


def test_resume_after_interruption_nothing_duplicated_or_lost(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SessionStore(path, create=True)
    order = stimulus_order(IDS, 3)
    rec = store.create_session(
        "P01", settings_toml="", seed=3, image_source="t", stimulus_order=order, start_local_s=0.0
    )
    clock = FakeClock()
    p = protocol_for_session(store, rec.id, ProtocolSettings(), clock=clock)
    p.start()
    for k in range(3):
        run_to_image(p, clock)
        p.give_label(LabelAnswer("anger" if k != 1 else "fear"))
        p.advance()
    run_to_image(p, clock)  # trial 3 on screen, then the process dies
    store.close()

    store = SessionStore(path)
    plan = resume_plan(store, rec.id)
    assert plan.start_trial == 3 and plan.labels == {0: "anger", 1: "fear", 2: "anger"}
    p2 = protocol_for_session(store, rec.id, ProtocolSettings(), clock=clock)
    assert p2.image_id == order[3]
    p2.start()
    while not p2.finished:
        run_to_image(p2, clock)
        p2.give_label(LabelAnswer("happy"))
        p2.advance()
    labels = store.labels(rec.id)
    assert [lab.trial_index for lab in labels] == list(range(8))  # each exactly once
    assert store.final_labels(rec.id) == {0: "anger", 1: "fear", 2: "anger"} | {
        i: "happy" for i in range(3, 8)
    }
    kinds = [(e["kind"], e["trial_index"]) for e in store.events(rec.id)]
    assert kinds.count(("image", 0)) == 1 and kinds.count(("image", 3)) == 2  # shown again
    assert ("session_resume", 3) in kinds and ("session_end", None) in kinds
    # a finished session resumes straight to DONE
    p3 = protocol_for_session(store, rec.id, ProtocolSettings(), clock=clock)
    p3.start()
    assert p3.phase is Phase.DONE
