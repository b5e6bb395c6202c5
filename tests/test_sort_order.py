"""``sort_order``: the radix sort of a prepared map's support sorts it as ``argsort`` does
(the same sorted values and average ranks), and the scores are those of ``argsort``'s
order bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import gazelab.analysis.metrics.prepared as prepared
from gazelab.analysis.metrics import PreparedMap, map_scores
from gazelab.analysis.metrics.maps import _average_ranks
from gazelab.analysis.metrics.prepared import RADIX_MIN, sort_order
from gazelab.analysis.scoring import fixation_map
from gazelab.gaze.heatmaps import fixation_heatmap


def values(kind: str, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(RADIX_MIN, 4 * RADIX_MIN))
    v = {
        "normal": lambda: rng.normal(size=n),
        "ties": lambda: np.round(rng.random(n) * 50) + 1,  # 50 tie groups
        "same top bits": lambda: 1 + rng.random(n) * 1e-9,  # one run of equal top 32 bits
        "extremes": lambda: np.concatenate(
            [-rng.random(n // 2) * 1e-300, rng.random(n - n // 2) * 1e300]
        ),  # fmt: skip
        "heatmap": lambda: fixation_heatmap(
            rng.uniform(5, 95, (12, 2)), (100, 100), 4.0, 14.0
        ).ravel(),
    }[kind]()
    return v[v != 0]


@pytest.mark.parametrize("kind", ["normal", "ties", "same top bits", "extremes", "heatmap"])
def test_the_order_sorts_as_argsort(kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    for _ in range(5):
        v = values(kind, rng)
        assert v.size >= RADIX_MIN or kind == "heatmap"
        o, a = sort_order(v), np.argsort(v)
        assert np.array_equal(np.sort(o), np.arange(v.size))  # a permutation
        assert np.array_equal(v[o], v[a])
        assert np.array_equal(_average_ranks(v, o, None), _average_ranks(v, a, None))


def test_scores_are_those_of_argsort_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    shape = (120, 160)
    maps = [fixation_heatmap(rng.uniform(10, 150, (8, 2)), shape, 5.0, 20.0) for _ in range(4)]
    maps.append(sum(maps[1:]))  # a pooled map: near-full support
    assert all(np.count_nonzero(m) >= RADIX_MIN for m in maps)
    fixated = fixation_map(rng.uniform(10, 110, (6, 2)), shape)

    def scores() -> list[dict[str, float]]:
        return [map_scores(PreparedMap(a), PreparedMap(b), fixated)
                for a in maps for b in maps if a is not b]  # fmt: skip

    radix = scores()
    monkeypatch.setattr(prepared, "RADIX_MIN", 10**9)  # argsort everywhere
    assert repr(radix) == repr(scores())
