"""``gazelab import`` and the store: the BIDS round trip bit for bit, a file imported twice,
an import that fails part-way (nothing half-imported), and the commands downstream
(``sessions``, ``heatmaps``) on an imported session."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.bids import _FIELD_TO_COLUMN, export_session
from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.gaze.importers import ImportFormatError, ImportOptions
from gazelab.gaze.importers.ingest import import_file
from gazelab.gaze.trackers.base import SAMPLE_FIELDS, GazeSample
from gazelab.models.datasets import open_image_set
from tests.gaze_project import write_gaze_session

DATA = Path(__file__).parent / "data" / "recordings"
BINO = DATA / "pymovements_eyelink_binocular_example.asc"
SPEC = "synthetic:3:7:48"


def _gaze_rows(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def test_bids_round_trip_is_bit_identical(tmp_path: Path) -> None:
    ids = open_image_set(SPEC).ids
    rng = np.random.default_rng(5)
    with SessionStore(tmp_path / "a.sqlite", create=True) as a:
        sid = write_gaze_session(a, "P01", SPEC, {ids[0]: [(10.0, 12.0)],
                                                  ids[1]: [(8.0, 8.0), (40.0, 40.0)]}, {})  # fmt: skip
        extra = [GazeSample(5000.0 + i * 16.7, 60.0 + i * 0.0167, *rng.normal(300, 50, 2),
                            bool(i % 2), 7, True, *rng.normal(300, 50, 12))
                 for i in range(40)]  # fmt: skip
        a.add_samples(sid, extra, trial_index=None, phase="blank1")
        for k in (0, 1):  # a session's image onsets name each trial's image in the export
            a.add_event(sid, "image", 0.3 * k, trial_index=k)
        a.add_event(sid, "label", 61.0, trial_index=1, payload={"label": "happy"})
        first = export_session(a, sid, tmp_path / "e1")["gaze"]
        n_a = a.sample_count(sid)
    store_b = tmp_path / "b.sqlite"
    assert main(["import", "bids", str(tmp_path / "e1"), "--store", str(store_b)]) == 0
    with SessionStore(store_b) as b:
        (rec,) = b.sessions()
        assert rec.participant == "P01" and rec.stimulus_order[:2] == tuple(ids[:2])
        assert b.sample_count(rec.id) == n_a == len(_gaze_rows(first)) - 1
        table = b.samples(rec.id)
        second = export_session(b, rec.id, tmp_path / "e2")["gaze"]
        labels = [e for e in b.events(rec.id) if e["kind"] == "label"]
    # every stored value is the exported one, bit for bit; the re-export is the same text
    rows = [r.split("\t") for r in _gaze_rows(first)]
    header, body = rows[0], rows[1:]
    columns = {**_FIELD_TO_COLUMN, "local_s": "t_s"}
    for field, col in columns.items():
        cells = [r[header.index(col)] for r in body]
        want = np.array([np.nan if c == "n/a" else float(c) for c in cells])
        got = table[field].astype(np.float64)
        assert np.array_equal(got, want, equal_nan=True), field
    assert _gaze_rows(second) == _gaze_rows(first)
    assert labels[0]["payload"] == {"label": "happy"} and labels[0]["trial_index"] == 1
    assert set(SAMPLE_FIELDS) <= set(table)


def test_the_same_file_twice_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "s.sqlite"
    copy = tmp_path / "renamed.asc"
    copy.write_bytes(BINO.read_bytes())
    assert main(["import", "eyelink", str(BINO), "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["import", "eyelink", str(copy), "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "was imported already (session 1, same SHA-256" in err
    with SessionStore(store) as st:
        assert len(st.sessions()) == 1 and st.sample_count(1) == 368
    # twice in one command: the first is imported, the second refused
    other = tmp_path / "o.sqlite"
    assert main(["import", "eyelink", str(BINO), str(copy), "--store", str(other)]) == 2
    assert "was imported already (session 1" in capsys.readouterr().err
    with SessionStore(other) as st:
        assert len(st.sessions()) == 1 and st.sample_count(1) == 368


def test_a_failure_mid_file_leaves_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store_path = tmp_path / "s.sqlite"
    with SessionStore(store_path, create=True) as st:
        import_file(st, "eyelink", DATA / "pymovements_raccoons.asc", ImportOptions())
        before = (len(st.sessions()), st.sample_count(1), len(st.events(1)))
        calls = {"n": 0}
        original = st.add_sample_columns

        def failing(session_id, trial_index, phase, columns):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            original(session_id, trial_index, phase, columns)  # written ... then the disk fails
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(st, "add_sample_columns", failing)
        with pytest.raises(OSError):
            import_file(st, "eyelink", BINO, ImportOptions())
        assert calls["n"] == 1
        monkeypatch.undo()
        assert (len(st.sessions()), st.sample_count(1), len(st.events(1))) == before
        assert st.sample_count(2) == 0 and [r.id for r in st.sessions()] == [1]
    # the failed file was not recorded as imported: it imports now
    with SessionStore(store_path) as st:
        (sid,) = import_file(st, "eyelink", BINO, ImportOptions())
        assert st.sample_count(sid) == 368


def test_sessions_and_heatmaps_run_on_an_imported_session(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ids = open_image_set(SPEC).ids
    f = tmp_path / "gaze.csv"
    lines = ["t,x,y,image"]
    t = 0.0
    for image, (x, y) in ((ids[0], (1200.0, 700.0)), (ids[1], (1300.0, 760.0))):
        for _ in range(60):  # 1 s of a still gaze at 60 Hz: one fixation per image
            lines.append(f"{t:.3f},{x},{y},{image}")
            t += 1000.0 / 60.0
    f.write_text("\n".join(lines) + "\n")
    store = tmp_path / "s.sqlite"
    assert main(["import", "csv", str(f), "--store", str(store), "--participant", "P03",
                 "--resolution", "2560x1440", "--images", SPEC, "--image", "image",
                 "--time", "t"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["sessions", "--store", str(store), "--csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and ",P03," in out[1]
    assert main(["heatmaps", "--store", str(store), "--session", "1",
                 "--out", str(tmp_path / "h")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"{ids[0]}: 1 fixations" in out and f"{ids[1]}: 1 fixations" in out
    heat = np.load(tmp_path / "h" / "session1_heatmaps.npz")
    assert sorted(heat.files) == sorted(ids[:2])


def test_unknown_format_and_missing_file_are_one_line(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "s.sqlite", create=True) as st:
        with pytest.raises(ImportFormatError, match="unknown import format 'edf'"):
            import_file(st, "edf", BINO, ImportOptions())
        with pytest.raises(ImportFormatError, match="no such file"):
            import_file(st, "eyelink", tmp_path / "nope.asc", ImportOptions())


def test_a_kill_mid_file_leaves_nothing(tmp_path: Path) -> None:
    """SIGKILL while the file's transaction is being written (its pages already spilling
    into the write-ahead log): the store reopens with exactly what it held before."""
    import os
    import signal
    import subprocess
    import sys
    import time

    store = tmp_path / "s.sqlite"
    assert main(["import", "eyelink", str(BINO), "--store", str(store)]) == 0
    f = tmp_path / "big.csv"
    with open(f, "w") as fh:
        fh.write("time,x,y\n")
        fh.writelines(
            f"{i * 3.333:.3f},{500 + i % 97}.5,{400 + i % 89}.25\n" for i in range(400_000)
        )
    wal = Path(str(store) + "-wal")
    start = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen([sys.executable, "-m", "gazelab.app.cli", "import", "csv", str(f),
                             "--store", str(store), "--resolution", "1920x1080"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while proc.poll() is None and (wal.stat().st_size if wal.exists() else 0) < start + (
            8 << 20
        ):
            time.sleep(0.01)  # polling, not a timed assertion
        if proc.poll() is not None:
            pytest.skip("the import finished before its pages reached the write-ahead log")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    with SessionStore(store) as st:
        assert [r.id for r in st.sessions()] == [1] and st.sample_count(1) == 368
        assert st.sample_count(2) == 0


def test_store_transaction_and_sample_rows(tmp_path: Path) -> None:
    """The store's ``transaction()`` keeps all of its writes or none; ``add_sample_rows``
    and ``add_sample_columns`` store what ``add_tagged_samples`` stores for the same
    samples."""
    from gazelab.annotation.store import StoreError
    from gazelab.settings import Settings

    s = GazeSample(10.0, 0.5, 1.5, 2.5, True, 7, True, *([np.nan] * 12))
    with SessionStore(tmp_path / "s.sqlite", create=True) as st:
        kw = dict(settings_toml=Settings().to_toml(), seed=0, image_source="",
                  stimulus_order=["a"], start_local_s=0.0)  # fmt: skip
        with pytest.raises(RuntimeError), st.transaction():
            sid = st.create_session("P01", **kw).id
            st.add_sample_rows(sid, [(0, "image", *(getattr(s, f) for f in SAMPLE_FIELDS))])
            st.add_event(sid, "x", 0.0)
            raise RuntimeError("stop")
        assert st.sessions() == [] and st.sample_count(sid) == 0
        with st.transaction():
            a = st.create_session("P01", **kw).id
            b = st.create_session("P02", **kw).id
            c = st.create_session("P03", **kw).id
            st.add_tagged_samples(a, [(s, 0, "image")])
            st.add_sample_rows(b, [(0, "image", *(getattr(s, f) for f in SAMPLE_FIELDS))])
            assert st.add_sample_columns(c, [0], ["image"],
                                         [[getattr(s, f)] for f in SAMPLE_FIELDS]) == 1  # fmt: skip
        ta, tb, tc = st.samples(a), st.samples(b), st.samples(c)
        assert all(np.array_equal(ta[k], tb[k], equal_nan=True) for k in ta if k != "phase")
        assert all(np.array_equal(ta[k], tc[k], equal_nan=True) for k in ta if k != "phase")
        assert list(ta["phase"]) == list(tb["phase"]) == list(tc["phase"]) == ["image"]
        with pytest.raises(StoreError, match="sample columns of different lengths"):
            st.add_sample_columns(a, [0, 1], ["image"], [[1.0, 2.0]] * len(SAMPLE_FIELDS))
        with pytest.raises(StoreError, match=f"3 sample columns, not {len(SAMPLE_FIELDS)}"):
            st.add_sample_columns(a, [0], ["image"], [[1.0]] * 3)
        with pytest.raises(StoreError, match="a sample row has 3 values, not 21"):
            st.add_sample_rows(a, [(0, "image", 1.0)])


def test_sample_columns_null_and_shared_columns_store_the_same_rows(tmp_path: Path) -> None:
    """``add_sample_columns`` with a ``None`` (NULL) column, one list given for two fields
    and 0/1 ints for the flags stores, value for value and type for type, what
    ``add_sample_rows`` stores for the same samples given in full (NaN, bools)."""
    import struct

    from gazelab.gaze.importers.ingest import _batch_columns
    from gazelab.settings import Settings

    rng = np.random.default_rng(3)
    n = 257
    x, y = rng.normal(600, 50, n), rng.normal(500, 40, n)
    x[5] = np.nan
    valid = rng.random(n) > 0.1
    by_field = {"time_ms": np.arange(n) * 3.3333 + 10.0, "x": x, "y": y, "raw_x": x,
                "raw_y": y, "valid": valid, "fix": ~valid, "state": np.where(valid, 0, 2),
                "left_x": x + 1.0}  # fmt: skip
    by_field["local_s"] = by_field["time_ms"] / 1000.0
    nan = np.full(n, np.nan)
    cols = [by_field.get(f, nan) for f in SAMPLE_FIELDS]
    trial = [None if k < 3 else k // 100 for k in range(n)]
    phase = [None if k < 3 else "image" for k in range(n)]
    fields = ", ".join(["trial_index", "phase", *SAMPLE_FIELDS])
    with SessionStore(tmp_path / "s.sqlite", create=True) as st:
        kw = dict(settings_toml=Settings().to_toml(), seed=0, image_source="",
                  stimulus_order=["a"], start_local_s=0.0)  # fmt: skip
        a, b = st.create_session("P01", **kw).id, st.create_session("P02", **kw).id
        full = [[bool(v) if f in ("fix", "valid") else int(v) if f == "state" else float(v)
                 for v in c] for f, c in zip(SAMPLE_FIELDS, cols, strict=True)]  # fmt: skip
        st.add_sample_rows(a, list(zip(trial, phase, *full, strict=True)))
        lists = _batch_columns(SAMPLE_FIELDS, cols, 0, n)
        assert sum(c is None for c in lists) == 9  # the NaN columns: NULL in the statement
        assert lists[SAMPLE_FIELDS.index("raw_x")] is lists[SAMPLE_FIELDS.index("x")]
        assert st.add_sample_columns(b, trial, phase, lists) == n

        def rows(sid: int) -> list[tuple[object, ...]]:
            typed = ", ".join(f"{c}, typeof({c})" for c in fields.split(", "))
            got = st._query(f"SELECT {typed} FROM gaze_samples WHERE session_id = ? "
                            "ORDER BY rowid", (sid,))  # fmt: skip
            return [tuple(struct.pack("<d", v) if isinstance(v, float) else v for v in r)
                    for r in got]  # fmt: skip

        ra, rb = rows(a), rows(b)
    assert len(ra) == n and ra == rb
    assert ra[5][2 * (2 + SAMPLE_FIELDS.index("x")) + 1] == "null"  # NaN is stored as NULL
    assert ra[0][:4] == (None, "null", None, "null")


@pytest.mark.parametrize("name", ["pymovements_raccoons.asc", BINO.name])
def test_import_stores_each_trials_quality_and_sessions_reads_it(
    tmp_path: Path, monkeypatch, capsys, name: str
) -> None:  # type: ignore[no-untyped-def]
    from gazelab.annotation import sessions

    store = tmp_path / "s.sqlite"
    assert main(["import", "eyelink", str(DATA / name), "--store", str(store)]) == 0
    capsys.readouterr()
    with SessionStore(store) as st:
        ids = [r.id for r in st.sessions()]
        for sid in ids:
            stored = st.trial_quality(sid)
            measured = sessions.compute_trial_quality(st, sid, save=False)  # from the store
            assert stored and stored == measured  # one row per trial, the same numbers
            assert len(stored) == len({e["trial_index"] for e in st.events(sid)
                                       if e["kind"] == "import_trial"})  # fmt: skip
            assert any(0.0 < q.loss_pct < 100.0 or q.rms_s2s_deg > 0 for q in stored)
    calls: list[int] = []
    compute = sessions.compute_trial_quality

    def counting(store, session_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(session_id)
        return compute(store, session_id, *args, **kwargs)

    monkeypatch.setattr(sessions, "compute_trial_quality", counting)
    assert main(["sessions", "--store", str(store), "--csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + len(ids)
    assert calls == []  # read, not measured
