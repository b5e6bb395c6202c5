"""``[analysis] human_pairs``: every ordered pair of annotators (``all``) or each annotator
against the pooled map of the others (``others``), in the rows, the baselines, the settings
and the command line."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from gazelab.analysis.baselines import baseline_rows
from gazelab.analysis.compare import (
    METRICS,
    AnnotatorGaze,
    Comparison,
    ImageAnalysis,
    kept_images,
    lower_mmap_threshold,
)
from gazelab.analysis.metrics import PreparedMap, map_scores
from gazelab.analysis.scoring import fixation_map, leave_one_out_sums, score_image
from gazelab.gaze.heatmaps import fixation_heatmap
from gazelab.settings import AnalysisSettings, Settings, SettingsError

SHAPE = (32, 40)
C, RADIUS = 2.0, 5.0
# four annotators, each fixating a few points with durations (the maps' weights)
LOOKS = {
    "A": ([[8.0, 8.0], [20.0, 14.0]], [200.0, 400.0]),
    "B": ([[9.5, 8.5], [30.0, 20.0], [20.0, 15.0]], [150.0, 250.0, 300.0]),
    "C": ([[25.0, 25.0]], [500.0]),
    "D": ([[10.0, 9.0], [33.0, 6.0]], [100.0, 600.0]),
}


def shifted(dx: float) -> dict[str, AnnotatorGaze]:
    """The four annotators' gaze (their looks moved ``dx`` px right), heatmaps built with
    their durations as weights."""
    out = {}
    for k, (a, (pts, dur)) in enumerate(LOOKS.items()):
        p = np.array(pts, dtype=np.float64) + np.array([dx, 0.0])
        w = np.array(dur, dtype=np.float64)
        heat = fixation_heatmap(p, SHAPE, C, RADIUS, w)
        out[a] = AnnotatorGaze(a, k + 1, "happy", p, p, heat, weights=w,
                               kernel_px=(C, RADIUS), image_hw=SHAPE)  # fmt: skip
    return out


def image(i: int, dx: float = 0.0) -> ImageAnalysis:
    return ImageAnalysis(f"im{i}", "happy", np.zeros(SHAPE, np.uint8), None, shifted(dx),
                         kernel_px=(C, RADIUS))  # fmt: skip


def relevance() -> np.ndarray:
    r = np.zeros((8, 8), np.float32)
    r[2, 3], r[5, 6] = 1.0, 0.5
    return r


def hand_others(humans: dict[str, AnnotatorGaze], a: str) -> dict[str, float]:
    """map_scores of annotator a's map against the sum of the other three's maps."""
    rest = sum(g.heatmap for b, g in humans.items() if b != a)
    fixated = fixation_map(humans[a].points, SHAPE)
    return map_scores(PreparedMap(humans[a].heatmap), PreparedMap(rest), fixated)


# The pooled map sums the others in another order than the hand's sum (prefix + suffix):
# the same to a few ulp; every metric, Spearman's ranks too, agrees to 1e-9 here.
TOLERANCE: dict[str, float] = {}


def test_others_rows_equal_the_hand_computation_for_every_metric() -> None:
    im = score_image(image(0), relevance(), 3, human_pairs="others")
    human = [r for r in im.rows if r["kind"] == "human"]
    assert [r["annotator"] for r in human] == list("ABCD")
    assert {r["reference"] for r in human} == {"others"}
    assert len([r for r in im.rows if r["kind"] == "model"]) == 4
    for r in human:
        want = hand_others(im.humans, r["annotator"])
        for m in METRICS:
            if math.isnan(want[m]):
                assert math.isnan(r[m]), (r["annotator"], m)
            else:
                tol = TOLERANCE.get(m, 1e-9)
                assert r[m] == pytest.approx(want[m], rel=tol, abs=1e-12), (r["annotator"], m)
    # the pooled map is no single annotator's: A's score against it is not A's against B
    all_rows = score_image(image(0), relevance(), 3).rows
    ab = next(r for r in all_rows if r["annotator"] == "A" and r["reference"] == "B")
    ao = next(r for r in human if r["annotator"] == "A")
    assert ao["cc"] != pytest.approx(ab["cc"], abs=1e-3)


def test_the_pooled_maps_are_the_sums_of_the_others() -> None:
    maps = [g.heatmap for g in shifted(0.0).values()]
    before = [m.copy() for m in maps]
    pooled = list(leave_one_out_sums(maps))
    assert len(pooled) == 4
    for k, p in enumerate(pooled):
        rest = sum(m for j, m in enumerate(maps) if j != k)
        np.testing.assert_allclose(p, rest, rtol=1e-14, atol=0)
        assert np.array_equal(p == 0, rest == 0)  # the same support
    assert all(np.array_equal(m, b) for m, b in zip(maps, before, strict=True))  # untouched
    assert np.array_equal(next(leave_one_out_sums(maps[:1])), np.zeros(SHAPE))
    assert list(leave_one_out_sums([])) == []


def test_all_rows_are_those_of_before() -> None:
    """``all`` (the default) is the pairing of every ordered pair: 4 x 3 human rows, each
    map_scores of a against b."""
    default = score_image(image(0), relevance(), 3).rows
    assert score_image(image(0), relevance(), 3, human_pairs="all").rows == default
    human = [r for r in default if r["kind"] == "human"]
    assert len(human) == 12
    humans = shifted(0.0)
    for r in human:
        a, b = r["annotator"], r["reference"]
        fixated = fixation_map(humans[a].points, SHAPE)
        want = map_scores(PreparedMap(humans[a].heatmap), PreparedMap(humans[b].heatmap), fixated)
        assert {m: r[m] for m in METRICS} == pytest.approx(want, nan_ok=True)


def test_a_bad_pairing_is_refused() -> None:
    with pytest.raises(ValueError, match="human_pairs 'pairs'.*all, others"):
        score_image(image(0), None, 0, human_pairs="pairs")


def comparison(pairs: str, dxs: list[float]) -> Comparison:
    images = [score_image(image(i, dx), relevance(), 3, human_pairs=pairs)
              for i, dx in enumerate(dxs)]  # fmt: skip
    return Comparison(images, list("ABCD"), [1, 2, 3, 4], AnalysisSettings(human_pairs=pairs),
                      3, 3.0, {"c": C, "radius": RADIUS}, "m", "h", "")  # fmt: skip


def test_shuffled_baseline_pairs_each_annotator_with_the_others_on_the_partners() -> None:
    dxs = [0.0, 3.0, -2.0]
    comp = comparison("others", dxs)
    rows = baseline_rows(comp, draws=2, human_pairs="others")
    shuffled = [r for r in rows if r["baseline"] == "shuffled" and r["versus"] == "human"]
    assert len(shuffled) == 3 * 4  # one per (image, annotator), not per pair
    assert {r["reference"] for r in shuffled} == {"others"}
    assert all(r["draws"] == 2 for r in shuffled)
    # by hand: image 0's annotator B against the pooled others on each partner image
    from gazelab.analysis.baselines import partner_indices

    partners = partner_indices([SHAPE] * 3, draws=2)[0]
    b = comp.images[0].humans["B"]
    fixated = fixation_map(b.points, SHAPE)
    draws = [hand_scores(b.heatmap, comp.images[j].humans, "B", fixated) for j in partners]
    row = next(r for r in shuffled if r["image_id"] == "im0" and r["annotator"] == "B")
    for m in METRICS:
        want = np.mean([d[m] for d in draws])
        assert row[m] == pytest.approx(want, rel=TOLERANCE.get(m, 1e-9), abs=1e-12), m
    # the centre and model rows are those of the pairing "all"
    every = baseline_rows(comparison("all", dxs), draws=2)
    assert len([r for r in every if r["versus"] == "human"]) == 3 * 12
    same = [r for r in every if r["versus"] != "human"]
    assert [r for r in rows if r["versus"] != "human"] == pytest.approx(same, nan_ok=True)


def hand_scores(ref, humans, a, fixated):  # type: ignore[no-untyped-def]
    rest = sum(g.heatmap for b, g in humans.items() if b != a)
    return map_scores(PreparedMap(ref), PreparedMap(rest), fixated)


def test_kept_maps_are_bounded() -> None:
    big = ((560, 560), 20)  # 21 maps of 2.4 MiB: 50 MiB an image
    assert kept_images([big] * 24, 24, max_mb=200) == 3
    assert kept_images([((64, 64), 2)] * 30, 24) == 24
    assert kept_images([((64, 64), 2)] * 5, 24) == 5
    assert isinstance(lower_mmap_threshold(), bool)


def test_the_setting_round_trips_and_a_bad_value_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert AnalysisSettings().human_pairs == "all"
    s = Settings().replace(analysis=AnalysisSettings(human_pairs="others"))
    assert Settings.from_toml(s.to_toml()).analysis.human_pairs == "others"
    with pytest.raises(SettingsError, match="human_pairs"):
        Settings.from_toml('[analysis]\nhuman_pairs = "some"\n')


def test_the_command_line_option(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import argparse

    from gazelab.app.commands import analysis_settings

    cfg = tmp_path / "s.toml"
    cfg.write_text('[analysis]\nhuman_pairs = "others"\ncache_max_mb = 7\n')
    ns = argparse.Namespace(analyzer=None, point_source=None, human_pairs=None, config=str(cfg))
    an = analysis_settings(ns)
    assert an.human_pairs == "others" and an.cache_max_mb == 7
    ns.human_pairs = "all"
    assert analysis_settings(ns).human_pairs == "all"
    # a bad value: one line, exit 2, before anything is read
    out = subprocess.run([sys.executable, "-m", "gazelab.app.cli", "compare", "--store", "x.sqlite",
                          "--human-pairs", "some"], capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2
    errors = [ln for ln in out.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "--human-pairs" in errors[0] and "'some'" in errors[0]
    assert "Traceback" not in out.stderr


def test_a_figure_of_many_annotators_draws_their_pooled_map() -> None:
    from gazelab.analysis.report import MAX_ANNOTATOR_PANELS, image_panels

    few = image(0)
    assert [t for t, _ in image_panels(few, list("ABCD"))][1:5] == [
        "A: happy", "B: happy", "C: happy", "D: happy"
    ]  # fmt: skip
    many = image(1)
    base = many.humans["A"]
    names = [f"P{k:02d}" for k in range(MAX_ANNOTATOR_PANELS + 1)]
    many.humans = {n: base for n in names}
    titles = [t for t, _ in image_panels(many, names)]
    assert titles == ["im1 (happy)", f"{len(names)} annotators pooled", "contours"]


def uneven(pairs: str) -> Comparison:
    """Five images; image 2 without annotator C, image 4 seen by A alone: partners where
    an annotator did not look (scored against all of the partner's maps) and where only
    the annotator did (no draw)."""
    comp = comparison(pairs, [0.0, 3.0, -2.0, 1.0, 4.0])
    del comp.images[2].humans["C"]
    comp.images[4].humans = {"A": comp.images[4].humans["A"]}
    return comp


def plain_others_rows(comp: Comparison, draws: int) -> dict[tuple[str, str], dict[str, float]]:
    """The shuffled human rows of ``others`` the plain way: every (image, annotator, partner)
    pools and prepares the partner's maps afresh (no window, no kept sorts)."""
    from gazelab.analysis.baselines import partner_indices
    from gazelab.analysis.scoring import pooled_total

    partners = partner_indices([SHAPE] * len(comp.images), draws=draws)
    out = {}
    for i, im in enumerate(comp.images):
        if len(im.humans) < 2:
            continue
        for a, g in im.humans.items():
            ref, fixated = PreparedMap(g.heatmap), fixation_map(g.points, SHAPE)
            scores = []
            for j in partners[i]:
                theirs = {b: h.heatmap for b, h in comp.images[j].humans.items()}
                if a not in theirs:
                    pooled = pooled_total(theirs.values())
                elif len(theirs) > 1:
                    pooled = list(leave_one_out_sums(list(theirs.values())))[list(theirs).index(a)]
                else:
                    continue
                scores.append(map_scores(ref, PreparedMap(pooled), fixated))
            mean = {}
            for m in METRICS:
                v = np.array([s[m] for s in scores], dtype=np.float64)
                v = v[np.isfinite(v)]
                mean[m] = float(v.mean()) if v.size else math.nan
            out[im.image_id, a] = {"draws": len(scores), **mean}
    return out


def test_others_baseline_rows_are_those_of_the_plain_path_bit_for_bit() -> None:
    """The window of pooled partner maps and their sorts kept in memory change no bit."""
    comp = uneven("others")
    rows = baseline_rows(comp, draws=3, human_pairs="others")
    want = plain_others_rows(comp, 3)
    human = [r for r in rows if r["versus"] == "human"]
    assert {(r["image_id"], r["annotator"]) for r in human} == set(want)
    assert len(human) == 3 * 4 + 3  # image 4 (A alone) has no human row
    for r in human:
        w = want[r["image_id"], r["annotator"]]
        assert r["draws"] == w["draws"]
        for m in METRICS:
            assert r[m] == w[m] or (math.isnan(r[m]) and math.isnan(w[m])), (r, m)
    # a partner without the annotator counts (all its maps), one seen by the annotator
    # alone does not
    assert {r["draws"] for r in human} == {2, 3}


def test_centre_and_model_baseline_rows_are_one_helper_for_both_pairings() -> None:
    """The centre and shuffled-model rows of ``others`` are those of ``all``, bit for bit."""
    a = [r for r in baseline_rows(uneven("all"), draws=3) if r["versus"] != "human"]
    o = baseline_rows(uneven("others"), draws=3, human_pairs="others")
    o = [r for r in o if r["versus"] != "human"]
    assert len(a) == len(o) == 2 * (4 + 4 + 3 + 4 + 1)
    for x, y in zip(a, o, strict=True):
        assert x.keys() == y.keys()
        assert all(x[k] == y[k] or (isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k]))
                   for k in x)  # fmt: skip


def test_memory_orders_keep_the_most_recent_sorts() -> None:
    from gazelab.analysis.baselines.rows import MemoryOrders

    store = MemoryOrders(2)
    for k in "abc":
        store.put_order(k, np.array([0, 1], dtype=np.int32))
    assert store.get_order("a") is None  # the oldest let go
    assert store.get_order("b") is not None
    store.put_order("d", np.array([1, 0], dtype=np.int32))  # b was used last: c goes
    assert store.get_order("c") is None and store.get_order("b") is not None
    assert (store.hits, store.misses) == (2, 2)
    # a prepared map reads its sort back, checked, and scores the same
    m = image(0).humans["A"].heatmap + image(0).humans["B"].heatmap
    first = PreparedMap(m, store)
    again = PreparedMap(m, store)
    fixated = fixation_map(image(0).humans["C"].points, SHAPE)
    ref = PreparedMap(image(0).humans["C"].heatmap)
    assert map_scores(ref, first, fixated) == map_scores(ref, again, fixated)
    assert store.hits == 3


@pytest.mark.parametrize("pairs", ["all", "others"])
def test_the_viewer_s_one_image_baseline_follows_human_pairs(pairs: str) -> None:
    """image_baseline_rows (the viewer's tab) pairs annotators as baseline_rows does."""
    from gazelab.analysis.baselines import CentreTotals, image_baseline_rows, partner_indices

    comp = uneven(pairs)
    rows = baseline_rows(comp, draws=2, human_pairs=pairs)
    totals = CentreTotals()
    for im in comp.images:
        totals.add([g.heatmap for g in im.humans.values()])
    partners = partner_indices([SHAPE] * len(comp.images), draws=2)
    for i, im in enumerate(comp.images):
        own = [g.heatmap for g in im.humans.values()]
        cmap = totals.centre_for_image(SHAPE, own, "mean")
        got = image_baseline_rows(im, [comp.images[j] for j in partners[i]], cmap, pairs)
        want = [r for r in rows if r["image_id"] == im.image_id]
        key = ("annotator", "versus", "reference", "baseline", "draws")
        assert [tuple(r[k] for k in key) for r in got] == [tuple(r[k] for k in key) for r in want]
        for g, w in zip(got, want, strict=True):
            assert {m: g[m] for m in METRICS} == pytest.approx(
                {m: w[m] for m in METRICS}, rel=1e-12, abs=1e-15, nan_ok=True
            )
    refs = {r["reference"] for r in rows if r["versus"] == "human"}
    assert refs == ({"others"} if pairs == "others" else set("ABCD"))
    with pytest.raises(ValueError, match="human_pairs"):
        image_baseline_rows(comp.images[0], [], None, "pairs")
