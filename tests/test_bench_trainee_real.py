"""benchmarks/bench_trainee_real.py without data (it says so and exits 0) and its sampling."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_trainee_real.py"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_trainee_real", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_trainee_real"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_without_data_it_skips_and_names_where_to_get_it(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GAZELAB_FACE_DATA", raising=False)
    b = _bench()
    assert b.main(["--data", str(tmp_path)]) == 0  # a folder without fer2013/ and CK+48/
    out = capsys.readouterr().out
    assert out.startswith("skipped: no real face data") and "docs/real-faces.md" in out


def test_trainer_sample_keeps_the_class_proportions() -> None:
    b = _bench()
    y = np.repeat(np.arange(4), [400, 300, 200, 100])
    idx = b.stratified_sample(y, 100, 0)
    assert len(idx) == 100 and np.array_equal(np.bincount(y[idx]), [40, 30, 20, 10])
    assert np.array_equal(idx, np.sort(idx)) and np.array_equal(b.stratified_sample(y, 100, 0), idx)
    assert len(b.stratified_sample(y, 0, 0)) == 1000  # 0: all
