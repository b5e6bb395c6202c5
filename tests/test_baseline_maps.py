"""``[analysis] baseline_maps``: the chance-level baselines score at most that many
(image, annotator) reference maps, every sampled image in turn and the annotators rotating
in a seeded order; below the bound the rows are those of no bound, bit for bit."""

from __future__ import annotations

from collections import Counter

import pytest

from gazelab.analysis.baselines import baseline_rows, bounded_references
from gazelab.settings import AnalysisSettings, Settings, SettingsError
from tests.test_compare_pairs import comparison, uneven

TWENTY = [f"P{k:02d}" for k in range(1, 21)]


def test_twenty_annotators_on_a_hundred_images_give_two_maps_an_image_ten_an_annotator() -> None:
    refs = bounded_references([TWENTY] * 100, 200, seed=0)
    assert [len(r) for r in refs] == [2] * 100
    counts = Counter(a for r in refs for a in r)
    assert sorted(counts) == TWENTY and set(counts.values()) == {10}
    # an image's annotators keep the image's order; the rotation is the seed's
    assert all(r == sorted(r) for r in refs)
    assert refs == bounded_references([TWENTY] * 100, 200, seed=0)
    assert refs != bounded_references([TWENTY] * 100, 200, seed=1)


def test_below_the_bound_or_without_one_every_map_is_a_reference() -> None:
    two = [["A", "B"]] * 100
    assert bounded_references(two, 200) == two  # the default study: nothing changes
    assert bounded_references([TWENTY] * 100, 0) == [TWENTY] * 100
    assert bounded_references([TWENTY] * 100, None) == [TWENTY] * 100


def test_uneven_images_and_fewer_maps_than_images() -> None:
    # 7 maps over 3 images of 1, 4 and 4 annotators: 1 + 3 + 3, an image never more than it has
    refs = bounded_references([["A"], list("ABCD"), list("ABCD")], 7, seed=3)
    assert [len(r) for r in refs] == [1, 3, 3]
    assert sum(len(r) for r in refs) == 7
    # fewer maps than images: the first images one each, the rest none
    assert [len(r) for r in bounded_references([TWENTY] * 10, 4)] == [1] * 4 + [0] * 6
    # annotators who each skipped some images still take about equal turns
    rows = [[a for k, a in enumerate(TWENTY) if (k + i) % 5] for i in range(100)]
    counts = Counter(a for r in bounded_references(rows, 300, seed=0) for a in r)
    assert len(counts) == 20 and max(counts.values()) - min(counts.values()) <= 2


@pytest.mark.parametrize("pairs", ["all", "others"])
def test_bounded_rows_are_the_unbounded_rows_of_the_chosen_maps(pairs: str) -> None:
    comp = uneven(pairs)  # 5 images, 4 + 4 + 3 + 4 + 1 = 16 maps
    every = baseline_rows(comp, draws=3, human_pairs=pairs)
    # the bound not reached: the same rows, bit for bit (NaN == NaN by repr)
    for bound in (16, 100, None):
        same = baseline_rows(comp, draws=3, human_pairs=pairs, max_maps=bound)
        assert [repr(r) for r in same] == [repr(r) for r in every]
    bounded = baseline_rows(comp, draws=3, human_pairs=pairs, max_maps=7)
    maps = {(r["image_id"], r["annotator"]) for r in bounded}
    assert len(maps) == 7
    per_image = Counter(i for i, _ in maps)
    assert sorted(per_image.values()) == [1, 1, 1, 2, 2]  # every image its turn
    per_annotator = Counter(a for _, a in maps)
    assert max(per_annotator.values()) - min(per_annotator.values()) <= 1
    # each chosen map's rows are its rows without the bound (same partners, centre map)
    mine = [repr(r) for r in every if (r["image_id"], r["annotator"]) in maps]
    assert [repr(r) for r in bounded] == mine


def test_the_bound_with_the_image_sample() -> None:
    comp = comparison("others", [0.0, 3.0, -2.0, 1.0, 4.0, 2.0])  # 6 images x 4 annotators
    rows = baseline_rows(comp, draws=2, human_pairs="others", max_images=3, max_maps=5)
    maps = {(r["image_id"], r["annotator"]) for r in rows}
    assert len(maps) == 5 and len({i for i, _ in maps}) == 3


def test_the_setting_defaults_to_200_and_a_bad_value_is_refused() -> None:
    assert AnalysisSettings().baseline_maps == 200
    s = Settings.from_toml("[analysis]\nbaseline_maps = 0\n", source="p.toml")
    assert s.analysis.baseline_maps == 0
    with pytest.raises(SettingsError, match=r"p.toml: analysis.baseline_maps = -1 is out of range"):
        Settings.from_toml("[analysis]\nbaseline_maps = -1\n", source="p.toml")


def test_the_report_names_the_maps_and_the_bound() -> None:
    from gazelab.analysis.report import baseline_markdown

    bs = {"draws": 3, "seed": 0, "max_images": 100, "max_maps": 200, "maps": 200,
          "maps_by_annotator": {f"P{k}": 10 for k in range(20)}}  # fmt: skip
    text = "\n".join(baseline_markdown({"baselines": [], "baseline_settings": bs}))
    assert "; 200 reference maps of (image, annotator) scored (at most 200, 10–10 per" in text
    text = "\n".join(
        baseline_markdown({"baselines": [], "baseline_settings": {**bs, "max_maps": 0}})
    )
    assert "scored (no bound, 10–10 per annotator)" in text


def test_pooled_of_gives_the_prefix_and_suffix_floats_of_the_wanted_maps_only() -> None:
    import numpy as np

    from gazelab.analysis.baselines.rows import pooled_of
    from gazelab.analysis.scoring import leave_one_out_sums, pooled_total

    rng = np.random.default_rng(1)
    maps = {f"P{k}": rng.random((9, 11)) * (rng.random((9, 11)) > 0.4) for k in range(7)}
    names = list(maps)
    every = dict(zip(names, leave_one_out_sums(list(maps.values())), strict=True))
    built: list[str] = []

    def build(a: str) -> np.ndarray:
        built.append(a)
        return maps[a]

    for wanted in ([], ["P0"], ["P6"], ["P3"], ["P0", "P6"], ["P2", "P4", "P5"], names):
        for total in (False, True):
            got, tot = pooled_of(build, names, wanted, total=total)
            assert sorted(got) == sorted(wanted)
            assert all(np.array_equal(got[a], every[a]) for a in wanted)  # bit for bit
            assert (tot is None) != total
            if total:
                assert np.array_equal(tot, pooled_total(maps.values()))
    assert pooled_of(build, ["P0"], ["P0"]) == ({}, None)  # one annotator: no pooled map


def test_leave_one_out_built_gives_the_prefix_and_suffix_floats() -> None:
    import numpy as np

    from gazelab.analysis.scoring import leave_one_out_built, leave_one_out_sums

    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 5, 6, 7, 10, 20, 21):
        maps = [rng.random((9, 11)) * (rng.random((9, 11)) > 0.4) for _ in range(n)]
        for block in (1, 2, 5, 40):
            built = list(leave_one_out_built(lambda k: maps[k].copy(), n, block))  # noqa: B023
            assert len(built) == n
            for (m, p), want, own in zip(built, leave_one_out_sums(maps), maps, strict=True):
                assert np.array_equal(m, own) and np.array_equal(p, want)  # bit for bit


def test_pooled_stream_holds_few_sums_and_gives_the_same_floats() -> None:
    import numpy as np

    from gazelab.analysis.baselines.rows import pooled_stream
    from gazelab.analysis.scoring import leave_one_out_sums, pooled_total

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 7, 20):
        maps = {f"P{k}": rng.random((9, 11)) * (rng.random((9, 11)) > 0.4) for k in range(n)}
        names = list(maps)
        every = dict(zip(names, leave_one_out_sums(list(maps.values())), strict=True))
        for wanted in (names, names[::3], names[-1:], []):
            for block in (1, 2, 4, 50):
                built: list[str] = []

                def build(a: str) -> np.ndarray:
                    built.append(a)  # noqa: B023
                    return maps[a]  # noqa: B023

                got = list(pooled_stream(build, names, wanted, total=True, block=block))
                want = [a for a in names if a in wanted] if n > 1 else []
                assert [a for a, _ in got] == [*want, None]  # in the maps' order, the total last
                for a, m in got[:-1]:
                    assert np.array_equal(m, every[str(a)])  # bit for bit
                assert np.array_equal(got[-1][1], pooled_total(maps.values()))
                assert len(built) <= 3 * n  # each map built at most three times


def test_the_window_of_pooled_maps_stays_within_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A study of few images, each with several references: the window of pooled partner
    maps never holds more than its budget, makes what it could not keep again, and the rows
    are those of a window that keeps every map, bit for bit."""
    import gazelab.analysis.baselines.rows as rows_module

    comp = comparison("others", [0.0, 3.0, -2.0, 1.0, 4.0, 2.0])  # 6 images x 4 annotators
    windows: list[rows_module.PooledWindow] = []
    init = rows_module.PooledWindow.__init__

    def recording(self: rows_module.PooledWindow, *args: object, **kw: object) -> None:
        init(self, *args, **kw)
        windows.append(self)

    monkeypatch.setattr(rows_module.PooledWindow, "__init__", recording)
    every = baseline_rows(comp, draws=3, human_pairs="others")
    assert windows and all(w.made_again == 0 for w in windows)  # 48 MiB: every map kept
    one_map = comp.images[0].image.shape[0] * comp.images[0].image.shape[1] * 8
    workers = len(windows)
    monkeypatch.setattr(rows_module, "WINDOW_MB", 2.5 * one_map * workers / 2**20)
    windows.clear()
    tight = baseline_rows(comp, draws=3, human_pairs="others")
    assert [repr(r) for r in tight] == [repr(r) for r in every]
    assert all(0 < w.peak <= w.max_bytes < 3 * one_map for w in windows)
    assert sum(w.made_again for w in windows) > 0
    assert all(w.nbytes == 0 for w in windows)  # every map let go after its last draw
