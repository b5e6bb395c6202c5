"""benchmarks/bench_trainee.py: mean ± 95 % CI over seeds."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_trainee.py"


def _mean_ci():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_trainee", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.mean_ci


def test_mean_ci_uses_students_t() -> None:
    mean_ci = _mean_ci()
    # 1, 2, 3: mean 2, sd 1, n 3 → half-width t(0.975, 2) / √3 = 4.302653 / 1.732051
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    # n = 5, sd = √2.5 (values 0..4): t(0.975, 4) = 2.776445
    m, h = mean_ci([0, 1, 2, 3, 4])
    assert m == 2.0 and h == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    # a 90 % interval is narrower: t(0.95, 2) = 2.919986
    assert mean_ci([1.0, 2.0, 3.0], 0.90)[1] == pytest.approx(2.919986 / math.sqrt(3), rel=1e-6)
    assert mean_ci([5.0, 5.0, 5.0]) == (5.0, 0.0)
    one = mean_ci([0.4])
    assert one[0] == 0.4 and math.isnan(one[1])
    assert all(math.isnan(v) for v in mean_ci([]))
