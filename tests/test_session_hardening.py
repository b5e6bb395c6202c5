"""The live session, the store and exported files: faults never lose or hide data.

A full disk pauses a running session with a message and it resumes once space is
back, nothing lost; a corrupt image is refused before calibration; one session
cannot run twice at once (leases); BIDS and mask exports are atomic and
resumable; temporary files never outlive their writer; a mistyped or damaged
store is one clear line, never a new empty store or a traceback.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gazelab import CLASSES
from gazelab.annotation.bids import MARKER, BidsExportError, export_session, read_marker
from gazelab.annotation.session import SessionConfig, SessionSetupError
from gazelab.annotation.store import LeaseLostError, SessionStore, StoreError
from gazelab.app.cli import main
from gazelab.fileio import atomic_write, clean_stale_temporaries
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.base import GazeSample
from gazelab.settings import Settings

W, H, SQUARE = 640, 360, 300


# -- helpers -----------------------------------------------------------------------------------
def small_settings(kind: str = "sim") -> Settings:
    s = Settings()
    return dataclasses.replace(
        s,
        display=DisplayGeometry.from_diagonal(27.0, (W, H), 700.0),
        stimulus=dataclasses.replace(s.stimulus, square_px=SQUARE),
        protocol=dataclasses.replace(s.protocol, seed=5),
        tracker=dataclasses.replace(s.tracker, kind=kind, rate_hz=120),
    )


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def recorded_session(path: Path, *, n_samples: int = 50, participant: str = "P01") -> int:
    """A store with one finished-looking session: samples, events and labels."""
    with SessionStore(path, create=True) as store:
        rec = store.create_session(
            participant, settings_toml=Settings().to_toml(), seed=1, image_source="t",
            stimulus_order=["a", "b"], start_local_s=100.0,
        )  # fmt: skip
        samples = [GazeSample(100.0 * 1000 + i * 8, 100.0 + i * 0.008, 10.0 + i, 20.0, True,
                              7, True) for i in range(n_samples)]  # fmt: skip
        store.add_samples(rec.id, samples, trial_index=0, phase="image")
        store.add_event(rec.id, "image", 100.0, trial_index=0)
        store.add_label(rec.id, 0, "happy", local_s=100.5)
        store.add_event(rec.id, "label", 100.5, trial_index=0, payload={"label": "happy"})
        return rec.id


def one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


class FullDisk:
    """Stands in for the store's connection: while ``full``, every write fails as SQLite
    fails on a full disk (``database or disk is full``); reads pass."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.full = False
        self.refused = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if self.full and sql.lstrip().upper().startswith(("BEGIN", "INSERT", "UPDATE")):
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


# -- item 7: a full disk pauses the session, nothing is lost, it resumes ------------------------
@pytest.mark.gui
def test_disk_full_pauses_the_session_and_it_resumes_with_nothing_lost(qtbot, tmp_path, out_dir):  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from gazelab.annotation.protocol import Phase
    from gazelab.app.annotate import AnnotationWindow, Autopilot

    path = tmp_path / "study.sqlite"
    cfg = SessionConfig(path, "P01", "synthetic:4:3", small_settings())
    win = AnnotationWindow(cfg, autopilot=Autopilot(view_s=0.3), skip_calibration=True,
                           microphone=False)  # fmt: skip
    qtbot.addWidget(win)
    win.resize(W, H)
    win.show()
    qtbot.waitExposed(win)
    disk = FullDisk(win.store._db)
    win.store._db = disk  # type: ignore[assignment]
    sid = win.session.id
    win.begin()
    qtbot.waitUntil(lambda: len(win.store.labels(sid)) >= 2, timeout=20_000)

    disk.full = True
    qtbot.waitUntil(lambda: win.store_fault is not None, timeout=5000)
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.PAUSED, timeout=5000)
    assert "Session paused" in win.store_message and "disk is full" in win.store_message
    assert "Free disk space" in win.store_message
    win.grab().save(str(out_dir / "paused_disk_full.png"))
    trial = win.protocol.trial_index
    with SessionStore(path) as other:  # another reader sees every label committed before
        committed = other.labels(sid)
    assert len(committed) >= 2
    qtbot.wait(2500)  # stays paused while the disk is full, retrying every second
    assert win.protocol.phase is Phase.PAUSED and win.protocol.trial_index == trial
    assert disk.refused >= 2 and win.mode == "trials"

    disk.full = False  # space freed: within a second it writes what waited and goes on
    qtbot.waitUntil(lambda: win.store_fault is None, timeout=5000)
    assert win.store_message == ""
    qtbot.waitUntil(lambda: win.mode == "done", timeout=30_000)
    win.finish()

    with SessionStore(path) as store:
        final = store.final_labels(sid)
        assert sorted(final) == [0, 1, 2, 3]
        assert store.labels(sid)[: len(committed)] == committed
        order = store.session(sid).stimulus_order
        src_labels = win.images.labels
        assert [final[i] for i in range(4)] == [CLASSES[src_labels[i]] for i in order]
        kinds = [e["kind"] for e in store.events(sid)]
        assert "store_fault" in kinds and "pause" in kinds and "resume" in kinds
        t = np.sort(store.samples(sid)["time_ms"])
        # the samples of the outage were kept in memory: no hole in the recording
        assert t.size > 0 and np.diff(t).max() < 100, np.diff(t).max()
        assert store.lease_holder(sid) is None  # released at the end


def test_records_and_samples_wait_in_memory_through_a_full_disk(tmp_path) -> None:
    from gazelab.annotation.protocol import (
        FakeClock,
        LabelAnswer,
        Phase,
        StoreRecorder,
        protocol_for_session,
    )
    from gazelab.annotation.store import BatchedSampleWriter
    from gazelab.settings import ProtocolSettings

    store = SessionStore(tmp_path / "s.sqlite", create=True)
    rec = store.create_session("P01", settings_toml="", seed=1, image_source="t",
                               stimulus_order=["a", "b"], start_local_s=0.0)  # fmt: skip
    disk = FullDisk(store._db)
    store._db = disk  # type: ignore[assignment]
    clock = FakeClock()
    p = protocol_for_session(store, rec.id, ProtocolSettings(), clock=clock, hold_on_fault=True)
    p.start()
    while p.phase is not Phase.IMAGE:
        clock.advance(0.1)
        p.tick()
    disk.full = True
    p.give_label(LabelAnswer("fear"))  # the disk is full: held, the protocol goes on
    p.advance()
    rec_ = p.sink
    assert isinstance(rec_, StoreRecorder)
    assert isinstance(rec_.fault, StoreError) and "disk is full" in str(rec_.fault)
    assert len(rec_.held) == 4 and store.labels(rec.id) == []  # label, its event, key, blank1
    assert rec_.retry() is False and len(rec_.held) == 4  # still full: nothing written twice
    disk.full = False
    assert rec_.retry() is True and rec_.fault is None and not rec_.held
    assert store.final_labels(rec.id) == {0: "fear"}
    kinds = [e["kind"] for e in store.events(rec.id)]
    assert kinds[-3:] == ["label", "keypress", "blank1"]  # written in the order they happened

    now = [0.0]
    w = BatchedSampleWriter(store, rec.id, batch_ms=100, clock=lambda: now[0])
    disk.full = True
    batch = [GazeSample(i * 8.0, i * 0.008, 1.0, 2.0) for i in range(30)]
    now[0] = 0.2
    with pytest.raises(StoreError, match="disk is full"):
        w.add(batch, 0, "image")
    refused = disk.refused
    now[0] = 0.7
    w.add(batch[:1], 0, "image")  # within a second of the failure: no new attempt
    assert disk.refused == refused and w.pending == 31
    disk.full = False
    now[0] = 1.3
    w.poll()  # a second later: written, in order
    assert w.pending == 0 and store.sample_count(rec.id) == 31
    store.close()


# -- item 8: a corrupt image is refused before calibration -------------------------------------
def _faces_folder(root: Path) -> Path:
    from gazelab.models.synthetic import synthetic_faces, write_folder

    write_folder(synthetic_faces(4, size=64, seed=2), root)
    return root


def test_corrupt_image_is_refused_before_calibration(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from gazelab.annotation.session import check_images
    from gazelab.models.datasets.registry import open_image_set

    folder = _faces_folder(tmp_path / "faces")
    bad = sorted(folder.rglob("*.png"))[1]
    bad.write_bytes(bad.read_bytes()[:80])  # truncated mid-stream
    src = open_image_set(f"folder:{folder}")
    with pytest.raises(SessionSetupError, match=bad.name) as err:
        check_images(src, src.ids)
    assert "1 of the session's 4 images" in str(err.value) and "\n" not in str(err.value)

    store = tmp_path / "s.sqlite"
    code = main(["annotate", "--no-dialog", "--store", str(store), "--participant", "P01",
                 "--images", f"folder:{folder}", "--tracker", "none", "--windowed"])  # fmt: skip
    assert code == 2
    one_line_error(capsys, bad.name, "cannot be shown")
    assert not store.exists()  # refused before anything was recorded, not even a store


@pytest.mark.gui
def test_resume_checks_the_images_still_to_show(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from gazelab.app.annotate import AnnotationWindow

    folder = _faces_folder(tmp_path / "faces")
    cfg = SessionConfig(tmp_path / "s.sqlite", "P01", f"folder:{folder}", small_settings("none"))
    win = AnnotationWindow(cfg, microphone=False)
    qtbot.addWidget(win)
    sid, first = win.session.id, win.session.stimulus_order[0]
    win.finish()  # nothing labelled: a resume shows every image again
    bad = next(folder.rglob(f"{Path(first).stem}.png"))
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(SessionSetupError, match=bad.name):
        AnnotationWindow(dataclasses.replace(cfg, resume=sid), microphone=False)
    with SessionStore(cfg.store) as store:
        assert store.lease_holder(sid) is None


# -- item 9: one session, one running window (leases) ------------------------------------------
def test_second_resume_is_refused_while_the_first_holds_the_lease(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    sid = recorded_session(path)
    first, second = SessionStore(path), SessionStore(path)
    lease = first.acquire_lease(sid)
    with pytest.raises(StoreError, match="already running") as err:
        second.acquire_lease(sid)
    assert f"process {os.getpid()}" in str(err.value) and lease.acquired_utc in str(err.value)
    assert "close that session first" in str(err.value)
    first.renew_lease(lease)
    first.release_lease(lease)  # at the end of the run: free again
    again = second.acquire_lease(sid)
    second.release_lease(again)

    # a holder whose process is gone (a crash) is taken over at once
    lease = first.acquire_lease(sid)
    first._db.execute("UPDATE session_leases SET pid = ? WHERE session_id = ?", (dead_pid(), sid))
    taken = second.acquire_lease(sid)
    with pytest.raises(LeaseLostError, match="taken over"):
        first.renew_lease(lease)  # the old holder learns it lost the session
    # a holder that stopped renewing (hung, or on another host) is taken over after 30 s
    second._db.execute(
        "UPDATE session_leases SET host = 'elsewhere', renewed_epoch_s = ? WHERE session_id = ?",
        (time.time() - 31, sid),
    )
    first.acquire_lease(sid)
    takeovers = [e["payload"] for e in first.events(sid) if e["kind"] == "lease_takeover"]
    assert [t["why"] for t in takeovers] == ["holder gone", "not renewed"]
    assert taken.token != lease.token
    first.close()
    second.close()


@pytest.mark.gui
def test_resuming_a_running_session_is_one_line_exit_2(qtbot, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from gazelab.app.annotate import AnnotationWindow

    path = tmp_path / "s.sqlite"
    cfg = SessionConfig(path, "P01", "synthetic:4:3", small_settings("none"))
    win = AnnotationWindow(cfg, skip_calibration=True, microphone=False)
    qtbot.addWidget(win)
    sid = win.session.id
    args = ["annotate", "--no-dialog", "--store", str(path), "--participant", "P01",
            "--images", "synthetic:4:3", "--tracker", "none", "--resume", str(sid)]  # fmt: skip
    assert main(args) == 2
    one_line_error(capsys, f"session {sid}", "already running", f"process {os.getpid()}")
    with pytest.raises(StoreError, match="already running"):
        AnnotationWindow(dataclasses.replace(cfg, resume=sid), microphone=False)
    win.finish()  # releases the lease: now it resumes
    again = AnnotationWindow(dataclasses.replace(cfg, resume=sid), microphone=False)
    qtbot.addWidget(again)
    assert again.session.id == sid
    again.finish()


# -- item 12 (store share): resume with the wrong participant or images ------------------------
@pytest.mark.gui
def test_resume_with_wrong_participant_or_images_is_one_clear_error(
    qtbot, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from gazelab.app.annotate import AnnotationWindow

    path = tmp_path / "s.sqlite"
    win = AnnotationWindow(SessionConfig(path, "P01", "synthetic:4:3", small_settings("none")),
                           microphone=False)  # fmt: skip
    qtbot.addWidget(win)
    sid = win.session.id
    win.finish()
    base = ["annotate", "--no-dialog", "--store", str(path), "--tracker", "none",
            "--resume", str(sid)]  # fmt: skip
    assert main([*base, "--participant", "P02", "--images", "synthetic:4:3"]) == 2
    one_line_error(capsys, "belongs to participant 'P01'", "--participant P01")
    assert main([*base, "--participant", "P01", "--images", "synthetic:4:9"]) == 2
    one_line_error(capsys, "are not in synthetic:4:9", "--images synthetic:4:3")
    assert main([*base[:-2], "--resume", "99", "--participant", "P01"]) == 2
    one_line_error(capsys, "no session 99")
    missing = tmp_path / "typo.sqlite"
    assert main(["annotate", "--no-dialog", "--store", str(missing), "--tracker", "none",
                 "--participant", "P01", "--resume", "1"]) == 2  # fmt: skip
    one_line_error(capsys, "no store at")
    assert not missing.exists()  # a resume never creates a store
    with SessionStore(path) as store:
        assert store.lease_holder(sid) is None  # refused resumes hold nothing


# -- item 10: the BIDS export is atomic --------------------------------------------------------
_KILL_MID_EXPORT = """
import json, os, signal, sys
from gazelab.annotation import bids
from gazelab.annotation.store import SessionStore

real = bids.json.dumps
def dumps(obj, *a, **k):
    if isinstance(obj, dict) and "TaskName" in obj:  # the gaze file is written: die now
        os.kill(os.getpid(), signal.SIGKILL)
    return real(obj, *a, **k)
bids.json.dumps = dumps
bids.export_session(SessionStore(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
"""


def _beh_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and p.parent.name == "beh")


def test_bids_export_killed_midway_leaves_no_partial_files(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    sid = recorded_session(path, n_samples=2000)
    out = tmp_path / "bids"
    proc = subprocess.run([sys.executable, "-c", _KILL_MID_EXPORT, str(path), str(sid), str(out)],
                          capture_output=True, timeout=120)  # fmt: skip
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    left = _beh_files(out)
    assert left and all(p.name.endswith(".tmp") for p in left), left  # only temporaries
    with SessionStore(path) as store:  # marked unfinished, still as this store's session
        uuid = store.session(sid).uuid
    assert read_marker(out)["sessions"][str(sid)] == {"complete": False, "session_uuid": uuid}

    with SessionStore(path) as store:
        paths = export_session(store, sid, out)  # the rerun finishes it
    assert not [p for p in out.rglob("*.tmp")]  # the killed run's temporaries are gone
    assert sorted(paths.values()) == _beh_files(out)
    with gzip.open(paths["gaze"], "rt") as fh:
        assert len(fh.read().splitlines()) == 2001
    entry = read_marker(out)["sessions"][str(sid)]
    assert entry["complete"] is True and entry["samples"] == 2000
    for rel, sha in entry["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == sha
    assert (out / MARKER).exists()


def test_bids_export_on_a_full_disk_keeps_the_previous_files(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gazelab.annotation import bids

    path = tmp_path / "s.sqlite"
    sid = recorded_session(path)
    out = tmp_path / "bids"
    with SessionStore(path) as store:
        paths = export_session(store, sid, out)
        before = {p: p.read_bytes() for p in paths.values()}
        real = bids.json.dumps

        def full(obj: Any, *a: Any, **k: Any) -> str:
            if isinstance(obj, dict) and "TaskName" in obj:  # after the gaze file
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(obj, *a, **k)

        monkeypatch.setattr(bids.json, "dumps", full)
        with pytest.raises(BidsExportError, match="No space left on device") as err:
            export_session(store, sid, out)
        assert str(out) in str(err.value) and "run the export again" in str(err.value)
    assert {p: p.read_bytes() for p in paths.values()} == before  # old, whole files
    assert not list(out.rglob("*.tmp"))
    with SessionStore(path) as store:  # marked unfinished, still as this store's session
        uuid = store.session(sid).uuid
    assert read_marker(out)["sessions"][str(sid)] == {"complete": False, "session_uuid": uuid}


def test_bids_export_never_mixes_two_stores_in_one_folder(tmp_path) -> None:
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    sid = recorded_session(first)
    assert recorded_session(second) == sid  # both stores number their session 1
    out = tmp_path / "bids"
    with SessionStore(first) as store:
        export_session(store, sid, out)
        uuid = store.session(sid).uuid
        export_session(store, sid, out)  # the same session again: fine
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with SessionStore(second) as store, pytest.raises(BidsExportError, match="another store"):
        export_session(store, sid, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert read_marker(out)["sessions"][str(sid)]["session_uuid"] == uuid


# -- item 11: temporaries and the resumed mask export ------------------------------------------
def test_atomic_write_failure_leaves_no_temporary(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "report.json"
    target.write_text("old")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, "new" * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]

    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new")
    monkeypatch.undo()
    assert sorted(tmp_path.iterdir()) == [target]


def test_stale_temporaries_of_dead_writers_are_cleaned(tmp_path) -> None:
    dead = tmp_path / f".masks.npz.{dead_pid()}.tmp"
    live = tmp_path / f".manifest.csv.{os.getpid()}.tmp"  # a writer still at work
    other = tmp_path / ".notes.tmp"  # not ours: no pid
    for p in (dead, live, other):
        p.write_bytes(b"x")
    assert clean_stale_temporaries(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()

    from gazelab.models.export import export_masks, jobs_from_relevance

    out = tmp_path / "export"
    (out / "masks").mkdir(parents=True)
    killed = [out / f".export.json.{dead_pid()}.tmp", out / "masks" / f".img0.png.{dead_pid()}.tmp"]
    for p in killed:
        p.write_bytes(b"half")
    rel = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    jobs = jobs_from_relevance(["img0", "img1"], rel, "mean", settings=Settings(), n=3)
    export_masks(jobs, out, request={"algorithm": "mean"})
    assert not any(p.exists() for p in killed)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_resumed_mask_export_equals_an_uninterrupted_one(tmp_path) -> None:
    from gazelab.models.export import MaskJob, export_masks, jobs_from_relevance, load_masks

    rel = np.random.default_rng(1).random((6, 16, 16)).astype(np.float32)
    ids = [f"img{i}" for i in range(6)]
    jobs = jobs_from_relevance(ids, rel, "negative", settings=Settings(), n=5)
    request = {"algorithm": "negative"}
    export_masks(jobs, tmp_path / "clean", request=request)

    def dies_at_3(k: int, job: MaskJob) -> MaskJob:
        def compute():  # type: ignore[no-untyped-def]
            if k == 3:
                raise KeyboardInterrupt("killed")
            return job.compute()

        return dataclasses.replace(job, compute=compute)

    with pytest.raises(KeyboardInterrupt):
        export_masks([dies_at_3(k, j) for k, j in enumerate(jobs)], tmp_path / "run",
                     request=request)  # fmt: skip
    time.sleep(2.1)  # zip entry times have 2 s resolution: a later run must not show it
    export_masks(jobs, tmp_path / "run", request=request)
    clean, run = _tree(tmp_path / "clean"), _tree(tmp_path / "run")
    assert clean.keys() == run.keys()
    differ = [k for k in clean if clean[k] != run[k]]
    assert differ == ["export.json"]  # masks.npz, manifest and PNGs byte-identical
    a, b = json.loads(clean["export.json"]), json.loads(run["export.json"])
    assert {k for k in a if a[k] != b[k]} == {"reused"}  # the one documented field
    assert (a["reused"], b["reused"]) == (0, 3)
    assert load_masks(tmp_path / "run").ids == ids


# -- item 13 and 12: a missing or damaged store ------------------------------------------------
def test_missing_store_is_refused_and_never_created(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "studdy.sqlite"
    with pytest.raises(StoreError, match="no store at"):
        SessionStore(typo)
    assert main(["export", "--store", str(typo), "--out", str(tmp_path / "bids")]) == 2
    one_line_error(capsys, "no store at", str(typo), "only 'gazelab annotate' creates")
    assert main(["heatmaps", "--store", str(typo), "--session", "1", "--images",
                 str(_faces_folder(tmp_path / "faces")), "--out", str(tmp_path / "hm")]) == 2  # fmt: skip
    one_line_error(capsys, "no store at")
    assert not typo.exists() and not (tmp_path / "bids").exists()
    with SessionStore(tmp_path / "new" / "study.sqlite", create=True) as store:  # annotate's way
        assert store.sessions() == []


def test_damaged_store_is_one_line_for_export(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.sqlite"
    recorded_session(path, n_samples=3000)
    size = path.stat().st_size
    assert not Path(str(path) + "-wal").exists() and size > 20 * 4096
    with open(path, "r+b") as f:  # garbage over the pages after the first (the header)
        rng = np.random.default_rng(0)
        for page in range(2, size // 4096, 3):
            f.seek(page * 4096)
            f.write(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert main(["export", "--store", str(path), "--out", str(tmp_path / "bids")]) == 2
    one_line_error(capsys, str(path), "damaged", ".recover")


def test_bad_json_in_a_stored_session_is_one_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.sqlite"
    sid = recorded_session(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE sessions SET stimulus_order = '[\"a\", ' WHERE id = ?", (sid,))
    db.commit()
    db.close()
    assert main(["export", "--store", str(path), "--out", str(tmp_path / "bids")]) == 2
    one_line_error(capsys, str(path), f"image order of session {sid}", "not valid JSON")

    db = sqlite3.connect(path)
    db.execute("UPDATE sessions SET stimulus_order = '[\"a\"]', settings_toml = 'x = [' ")
    db.execute("UPDATE events SET payload = '{' WHERE kind = 'label'")
    db.commit()
    db.close()
    assert main(["export", "--store", str(path), "--out", str(tmp_path / "bids")]) == 2
    one_line_error(capsys, f"session {sid}")
    with SessionStore(path) as store, pytest.raises(StoreError, match="'label' event"):
        store.events(sid)
