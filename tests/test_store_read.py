"""The store's columnar sample read equals the row-by-row read it replaced, bit for bit
(``reference_samples``: the benchmark's ``read_rows_old``, the previous ``samples()``)."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gazelab.annotation.store import SessionStore, StoreError
from gazelab.gaze.trackers.base import SAMPLE_FIELDS


def _bench_store_read() -> Any:
    """``benchmarks/bench_store_read.py`` loaded by path (the tests do not rely on the
    repository root being importable)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_store_read.py"
    spec = importlib.util.spec_from_file_location("bench_store_read", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


reference_samples = _bench_store_read().read_rows_old


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name, w in want.items():
        g = got[name]
        assert g.dtype == w.dtype, name
        assert g.shape == w.shape, name
        if w.dtype == np.float64:
            assert np.array_equal(np.isnan(g), np.isnan(w)), name
            assert np.array_equal(g.view(np.int64), w.view(np.int64)), name  # bit for bit
        else:
            assert g.tolist() == w.tolist(), name


@pytest.fixture
def store_path(tmp_path: Path) -> tuple[Path, list[int]]:
    """Three sessions, trials and phases, NULLs in every nullable column, ties in time."""
    path = tmp_path / "s.sqlite"
    rng = np.random.default_rng(7)
    ids = []
    with SessionStore(path, create=True) as store:
        for p in range(3):
            rec = store.create_session(f"P{p}", settings_toml="", seed=0, image_source="x",
                                       stimulus_order=["a", "b", "c"], start_local_s=0.0)  # fmt: skip
            ids.append(rec.id)
            n = 900
            t = np.sort(rng.integers(0, 400, n)) / 100.0  # repeated times: rowid breaks ties
            trial = [None if k % 11 == 0 else int(k // 300) for k in range(n)]
            phases = [None if k % 13 == 0 else ("image", "blank1", "cross", "interrupted-image")[k % 4]
                      for k in range(n)]  # fmt: skip
            cols: list[list[Any]] = []
            for f in SAMPLE_FIELDS:
                if f == "local_s":
                    cols.append(t.tolist())
                elif f in ("fix", "valid"):
                    cols.append(
                        [None if k % 17 == 0 else int(rng.integers(0, 2)) for k in range(n)]
                    )
                elif f == "state":
                    cols.append(rng.integers(0, 3, n).tolist())
                else:
                    v = rng.normal(500.0, 300.0, n) * np.exp(rng.normal(0, 8, n))
                    cols.append([None if rng.random() < 0.1 else float(x) for x in v])
            store.add_sample_columns(rec.id, trial, phases, cols)
    return path, ids


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"trial_index": 1},
        {"trial_index": 7},  # no such trial: empty columns
        {"since_local_s": 2.5},
        {"phase": "image"},
        {"phase": "no-such-phase"},
        {"trial_index": 0, "since_local_s": 1.0, "phase": "cross"},
    ],
)
def test_columnar_read_equals_row_by_row(store_path: tuple[Path, list[int]], kwargs: dict) -> None:
    path, ids = store_path
    with SessionStore(path) as store:
        for sid in ids:
            want = reference_samples(path, sid, **kwargs)
            got = store.samples(sid, **kwargs)
            assert_same(got, want)
    if not kwargs:
        assert want["x"].size == 900 and np.isnan(want["x"]).sum() > 50
        assert (want["trial_index"] == -1).sum() > 50
        assert sum(v is None for v in want["phase"]) > 50


def test_samples_by_trial_splits_the_columnar_read(store_path: tuple[Path, list[int]]) -> None:
    path, ids = store_path
    with SessionStore(path) as store:
        by_trial = store.samples_by_trial(ids[1], phase="image")
    assert sorted(by_trial) == [0, 1, 2]
    for ti, table in by_trial.items():
        assert_same(table, reference_samples(path, ids[1], ti, phase="image"))


def test_a_subset_of_the_fields_is_those_columns_of_the_whole_read(
    store_path: tuple[Path, list[int]],
) -> None:
    """``fields`` reads only those columns (what compare's gaze stage asks for): each the
    same array as in the read of every field; an unknown field is refused by name."""
    from gazelab.analysis.compare import GAZE_FIELDS

    path, ids = store_path
    with SessionStore(path) as store:
        whole = store.samples_by_trial(ids[1], phase="image")
        some = store.samples_by_trial(ids[1], phase="image", fields=GAZE_FIELDS)
        assert sorted(some) == sorted(whole)
        for ti, table in some.items():
            assert list(table) == ["trial_index", "phase", *GAZE_FIELDS]
            assert_same(table, {k: whole[ti][k] for k in table})
        with pytest.raises(ValueError, match="not sample fields: \\['x; DROP'\\]"):
            store.samples(ids[1], fields=["x; DROP"])


def test_a_text_value_where_a_number_belongs_is_one_store_error(
    store_path: tuple[Path, list[int]],
) -> None:
    path, ids = store_path
    db = sqlite3.connect(path)
    db.execute("UPDATE gaze_samples SET x = 'abc' WHERE rowid = 5")
    db.commit()
    db.close()
    with SessionStore(path) as store, pytest.raises(StoreError, match="not a number"):
        store.samples(ids[0])


def test_a_phase_gazelab_does_not_write_reads_back_as_stored(
    store_path: tuple[Path, list[int]],
) -> None:
    path, ids = store_path
    db = sqlite3.connect(path)
    db.execute("UPDATE gaze_samples SET phase = 'calibration' WHERE rowid IN (3, 4, 900)")
    db.commit()
    db.close()
    with SessionStore(path) as store:
        got = store.samples(ids[0])
        assert_same(got, reference_samples(path, ids[0]))
        assert_same(store.samples(ids[1]), reference_samples(path, ids[1]))
    assert list(got["phase"]).count("calibration") == 3
