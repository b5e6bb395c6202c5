"""compare with its on-disk cache warm gives the rows of a cold run, bit for bit: relevance
maps, the sort of every prepared map and every pair's scores are read back (sorts checked)
and change no number."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from gazelab import CLASSES
from gazelab.analysis.cache import CHECK_MAGIC, SaliencyCache
from gazelab.analysis.compare import analyse_project, blas_threads
from gazelab.analysis.metrics import PreparedMap, map_scores
from gazelab.annotation.store import SessionStore
from gazelab.models.datasets.registry import open_image_set
from gazelab.settings import AnalysisSettings
from gazelab.tests.gaze_project import write_gaze_session

pytestmark = pytest.mark.tf
SOURCE = "synthetic:6:7:64"


class CountingCache(SaliencyCache):
    """A saliency cache that counts the prepared-map orders and the pairs' scores it reads
    and writes."""

    def __init__(self, root: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_sort_values", 0)  # the tests' small maps use the store too
        super().__init__(root, **kwargs)
        self.reads = self.writes = self.score_reads = self.score_writes = 0
        self.result_writes = 0

    def put_result(self, key: str, value: Any) -> None:
        self.result_writes += 1
        super().put_result(key, value)

    def get_scores(self, key: str) -> Any:
        out = super().get_scores(key)
        self.score_reads += out is not None
        return out

    def put_scores(self, key: str, scores: Any) -> None:
        self.score_writes += 1
        super().put_scores(key, scores)

    def get_order(self, key: str) -> Any:
        out = super().get_order(key)
        self.reads += out is not None
        return out

    def put_order(self, key: str, order: Any) -> None:
        self.writes += 1
        super().put_order(key, order)


class OrdersOnlyCache(CountingCache):
    """A cache that keeps sorts but no scores (every pair scored again on a warm run)."""

    get_scores = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def study(tmp_path_factory):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab.models.architectures import build_model

    tf.keras.utils.set_random_seed(0)
    model = build_model("small_cnn", (32, 32, 1), len(CLASSES))
    src = open_image_set(SOURCE)
    rng = np.random.default_rng(3)
    store = SessionStore(tmp_path_factory.mktemp("study") / "project.sqlite", create=True)
    for name in ("A", "B", "C"):
        fix = {iid: [tuple(p) for p in rng.uniform(6, 58, (int(rng.integers(2, 6)), 2))]
               for iid in src.ids}  # fmt: skip
        write_gaze_session(store, name, SOURCE, fix, {iid: "happy" for iid in src.ids})
    yield store, model
    store.close()


def _rows(root: Any, table: str = "scores") -> dict[str, Any]:
    """The rows of the cache's scores file: key -> (names, float64 bytes); with ``table``
    ``sorted``, the maps sorted once: key -> last use."""
    import sqlite3

    path = root / "scores.sqlite"
    if not path.exists():
        return {}
    con = sqlite3.connect(path)
    try:
        if table == "sorted":
            return dict(con.execute("SELECT key, used FROM sorted"))
        return {k: (n, v) for k, n, v in con.execute("SELECT key, names, vals FROM scores")}
    finally:
        con.close()


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Equal rows, floats compared by their bits (NaN equal to NaN)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        if ra.keys() != rb.keys():
            return False
        for k, va in ra.items():
            vb = rb[k]
            if isinstance(va, float) and isinstance(vb, float):
                if not (va == vb or (math.isnan(va) and math.isnan(vb))):
                    return False
                if np.float64(va).tobytes() != np.float64(vb).tobytes() and not math.isnan(va):
                    return False
            elif va != vb:
                return False
    return True


@pytest.mark.parametrize("kept", ["scores", "sorts only"])
def test_rows_with_the_cache_warm_equal_the_rows_cold_bit_for_bit(study, tmp_path, kept) -> None:  # type: ignore[no-untyped-def]
    store, model = study
    an = AnalysisSettings(analyzer="gradient")
    plain = analyse_project(store, model, analysis=an, baseline_images=None)
    # the pairs' layer alone (each image's result kept by its inputs: tests below)
    cache = (CountingCache if kept == "scores" else OrdersOnlyCache)(
        tmp_path / "cache", keep_results=False
    )
    cold = analyse_project(store, model, analysis=an, cache=cache, baseline_images=None)
    # every map sorted once: noted (a sort is written from a map's second sort on: here
    # those the baselines sort again in the same run)
    cold_reads, cold_writes = cache.reads, cache.writes
    assert cold_writes > 0 and len(_rows(tmp_path / "cache", "sorted")) > 0
    pairs = len(_rows(tmp_path / "cache"))  # committed at the compare's end
    cache.reads = cache.writes = 0
    cold_score_reads, cold_score_writes = cache.score_reads, cache.score_writes
    cache.score_reads = cache.score_writes = 0
    warm = analyse_project(store, model, analysis=an, cache=cache, baseline_images=None)
    assert warm.computed_maps == 0
    if kept == "scores":  # every pair read back: no map needs its sort
        assert cold_score_writes > 0 and pairs == cold_score_writes  # one row a pair
        assert cache.score_reads == cold_score_reads + cold_score_writes
        assert cache.score_writes == 0 and cache.reads == 0 and cache.writes == 0
    else:  # every map sorted again (now kept) or read back; a third run reads them all
        assert pairs == 0 and cache.reads + cache.writes == cold_reads + cold_writes
        assert cache.writes > 0
        sorted_twice = len(list((tmp_path / "cache" / "prepared").rglob("*.npy")))
        cache.reads = cache.writes = 0
        third = analyse_project(store, model, analysis=an, cache=cache, baseline_images=None)
        assert cache.writes == 0 and cache.reads == cold_reads + cold_writes
        assert sorted_twice == len(list((tmp_path / "cache" / "prepared").rglob("*.npy")))
        assert _same(cold.rows, third.rows) and _same(cold.baselines, third.baselines)
    assert len(cold.rows) == 6 * 3 * 3  # 6 images x 3 annotators x (model + 2 others)
    assert len(cold.baselines) > 0
    assert _same(cold.rows, warm.rows) and _same(cold.baselines, warm.baselines)
    assert _same(plain.rows, warm.rows) and _same(plain.baselines, warm.baselines)


def test_a_wrong_or_torn_order_file_is_a_miss_not_a_wrong_number(tmp_path) -> None:
    from gazelab.gaze.heatmaps import fixation_heatmap

    rng = np.random.default_rng(0)
    a = fixation_heatmap(rng.uniform(10, 50, (4, 2)), (60, 60), 4.0, 12.0)
    b = fixation_heatmap(rng.uniform(10, 50, (3, 2)), (60, 60), 4.0, 12.0)
    fixated = np.zeros((60, 60), dtype=bool)
    fixated[20, 30] = fixated[40, 12] = True
    want = map_scores(PreparedMap(a), PreparedMap(b), fixated)
    cache = OrdersOnlyCache(tmp_path, keep_sort_after=0)  # every pair scored again, sorts kept
    first = map_scores(PreparedMap(a, cache), PreparedMap(b, cache), fixated)
    assert cache.writes == 2 and first == want
    for p in sorted((tmp_path / "prepared").rglob("*.npy")):
        order = np.load(p)
        np.save(p, order[::-1].copy())  # a permutation, but not the sort: must be refused
        break
    for p in sorted((tmp_path / "prepared").rglob("*.npy"))[1:]:
        p.write_bytes(p.read_bytes()[:40])  # torn
    cache.reads = cache.writes = 0
    again = map_scores(PreparedMap(a, cache), PreparedMap(b, cache), fixated)
    assert cache.writes == 2 and again == want


def test_a_pair_s_scores_are_kept_by_exact_content_and_a_bad_file_is_a_miss(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A pair's scores are read back as the same floats (NaN included) under a key that
    names both maps, the fixated pixels and the metrics' code exactly: one changed pixel,
    one more fixated pixel or another code version is another key; a torn file or one
    that is not metric names and floats is a miss, scored again and rewritten."""
    from gazelab.analysis.metrics import prepared
    from gazelab.gaze.heatmaps import fixation_heatmap

    rng = np.random.default_rng(1)
    a = fixation_heatmap(rng.uniform(10, 50, (4, 2)), (60, 60), 4.0, 12.0)
    b = fixation_heatmap(rng.uniform(10, 50, (3, 2)), (60, 60), 4.0, 12.0)
    fixated = np.zeros((60, 60), dtype=bool)
    fixated[20, 30] = True
    cache = CountingCache(tmp_path)

    def scored(x, y, fix):  # type: ignore[no-untyped-def]
        return map_scores(PreparedMap(x, cache), PreparedMap(y, cache), fix)

    want = map_scores(PreparedMap(a), PreparedMap(b), fixated)
    assert scored(a, b, fixated) == want and cache.score_writes == 1
    again = scored(a, b, fixated)
    assert cache.score_reads == 1 and cache.score_writes == 1
    assert {k: np.float64(v).tobytes() for k, v in again.items()} == {
        k: np.float64(v).tobytes() for k, v in want.items()
    }
    cache.flush()
    ((key, row),) = _rows(tmp_path).items()
    b2 = b.copy()
    b2[30, 30] = np.nextafter(b2[30, 30], 1.0)  # one pixel, one ulp
    fixated2 = fixated.copy()
    fixated2[40, 12] = True
    for x, y, fix in ((a, b2, fixated), (a, b, fixated2), (a, b, None), (b, a, fixated)):
        scored(x, y, fix)
    assert cache.score_writes == 5 and cache.score_reads == 1  # four new keys
    monkeypatch.setattr(prepared, "_CODE_KEY", "another version of the metrics")
    scored(a, b, fixated)
    assert cache.score_writes == 6 and cache.score_reads == 1
    monkeypatch.undo()
    cache.flush()
    names, vals = row
    bad_rows = ((names, vals[:30]), ("iou,spearman", vals), (names.replace("iou", "i-u"), vals),
                (names, "not bytes"), (7, vals))  # fmt: skip
    for bad in bad_rows:
        _set_row(tmp_path, key, bad)
        fresh = CountingCache(tmp_path)  # nothing of the good row left in memory
        assert map_scores(PreparedMap(a, fresh), PreparedMap(b, fresh), fixated) == want
        assert fresh.score_reads == 0 and fresh.score_writes == 1  # a miss: scored again ...
        fresh.flush()
        assert _rows(tmp_path)[key] == row  # ... and rewritten
    nan_pair = scored(np.zeros((60, 60)), b, fixated)  # no mass: SIM, KL NaN
    assert math.isnan(nan_pair["sim"]) and math.isnan(scored(np.zeros((60, 60)), b, fixated)["kld"])


def _set_row(root: Any, key: str, row: tuple[Any, Any]) -> None:
    import sqlite3

    con = sqlite3.connect(root / "scores.sqlite")
    with con:
        con.execute("UPDATE scores SET names = ?, vals = ? WHERE key = ?", (*row, key))
    con.close()


def test_the_code_key_changes_with_one_byte_of_the_metrics_source(tmp_path) -> None:
    """Stored scores are keyed by the bytes of the metrics' source: a copy of maps.py with
    one byte changed gives another key; an unreadable file a key no call repeats; the
    module's own key is that of its three files (with the compiled passes')."""
    from pathlib import Path

    from gazelab.analysis.metrics import prepared

    here = Path(prepared.__file__)
    kernels = here.with_name("kernels.py")
    files = [here, here.with_name("maps.py"), kernels]
    assert prepared.code_key(files) == prepared._CODE_KEY
    copy = tmp_path / "maps.py"
    src = files[1].read_bytes()
    copy.write_bytes(src)
    assert prepared.code_key([here, copy, kernels]) == prepared._CODE_KEY
    copy.write_bytes(src.replace(b"EPS", b"EPs", 1))
    assert prepared.code_key([here, copy, kernels]) != prepared._CODE_KEY
    gone = [here, tmp_path / "missing.py"]
    assert prepared.code_key(gone) != prepared.code_key(gone)


def test_a_cache_that_cannot_be_written_loses_files_not_the_compare(tmp_path) -> None:
    """A read-only cache folder: sorts and scores are not kept (no temporary left behind)
    and the scores are the same."""
    import os

    from gazelab.gaze.heatmaps import fixation_heatmap

    rng = np.random.default_rng(2)
    a = fixation_heatmap(rng.uniform(10, 50, (4, 2)), (60, 60), 4.0, 12.0)
    b = fixation_heatmap(rng.uniform(10, 50, (3, 2)), (60, 60), 4.0, 12.0)
    root = tmp_path / "cache"
    root.mkdir()
    os.chmod(root, 0o500)
    try:
        cache = SaliencyCache(root)
        got = map_scores(PreparedMap(a, cache), PreparedMap(b, cache))
        assert got == map_scores(PreparedMap(a), PreparedMap(b))
        assert list(root.rglob("*")) == [] or os.geteuid() == 0  # root writes anyway
    finally:
        os.chmod(root, 0o700)
    if os.geteuid() == 0:  # root ignores the mode: a file where the folder should be
        blocked = tmp_path / "blocked"
        blocked.write_text("not a folder")
        cache = SaliencyCache(blocked)
        assert map_scores(PreparedMap(a, cache), PreparedMap(b, cache)) == got
        assert blocked.read_text() == "not a folder"


def test_an_order_that_repeats_a_tied_pixel_is_a_miss(tmp_path) -> None:
    """A stored order is used only if it is a permutation that sorts the values: one that
    repeats a pixel of a tie group (the values still read non-decreasing) is refused and
    re-sorted, as is any order of a map without ties that is not the sort."""
    x = np.zeros((4, 4))
    x.flat[[1, 5, 6, 9, 12]] = [1.0, 2.0, 2.0, 3.0, 0.5]  # support order: 1, 5, 6, 9, 12
    cache = CountingCache(tmp_path, keep_sort_after=0)
    want = PreparedMap(x, cache).ranks_centred
    key = PreparedMap(x).content_key()
    cache.put_order(key, np.array([4, 0, 1, 1, 3], dtype=np.int32))  # 2.0's pixel twice
    cache.reads = cache.writes = 0
    got = PreparedMap(x, cache)
    assert sorted(got.order) == [0, 1, 2, 3, 4] and cache.writes == 1  # re-sorted
    assert np.all(np.diff(got.values[got.order]) >= 0)
    assert np.array_equal(got.ranks_centred[0], want[0]) and got.ranks_centred[1:] == want[1:]
    y = x.copy()
    y.flat[6] = 2.5  # no ties: a repeated pixel would break the rise
    cache.put_order(PreparedMap(y).content_key(), np.array([4, 0, 0, 2, 3], dtype=np.int32))
    cache.writes = 0
    assert list(PreparedMap(y, cache).order) == [4, 0, 1, 2, 3] and cache.writes == 1


def test_blas_runs_on_one_thread_inside_the_workers_context() -> None:
    from threadpoolctl import threadpool_info

    with blas_threads(1):
        blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
        assert blas and all(i["num_threads"] == 1 for i in blas)


def test_decoded_images_come_back_from_the_cache_by_file_content(tmp_path) -> None:
    from PIL import Image

    from gazelab.analysis.cache import decoded_image

    folder = tmp_path / "images" / CLASSES[0]
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)).save(folder / f"f{k}.png")
    src = open_image_set(f"folder:{tmp_path / 'images'}")
    assert src.files is not None and len(src.files) == 2
    cache = SaliencyCache(tmp_path / "cache")
    calls = []
    image, read_bytes = src.image, src.read_bytes
    assert read_bytes is not None  # a folder set decodes the bytes the cache hashed
    src.read_bytes = lambda data, path: calls.append(path.name) or read_bytes(data, path)
    iid = src.ids[0]
    first = decoded_image(src, iid, cache)
    again = decoded_image(src, iid, cache)
    assert calls == ["f0.png"]  # decoded once, then read back
    assert isinstance(again, np.memmap) and again.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(again, image(iid))
    # another content under the same name: a new key, decoded anew
    path = src.files[src.index(iid)]
    Image.fromarray(np.zeros((20, 24), dtype=np.uint8)).save(path)
    assert not decoded_image(src, iid, cache).any() and calls == ["f0.png"] * 2
    assert decoded_image(src, iid, None).shape == (20, 24)  # without a cache: the loader


def test_the_derived_files_are_capped_least_recently_used_first(tmp_path) -> None:
    import os

    cache = SaliencyCache(tmp_path, keep_sort_after=0)
    rng = np.random.default_rng(0)
    orders = {f"{k:02x}" * 16: rng.permutation(1000).astype(np.int32) for k in range(5)}
    for t, (key, order) in enumerate(orders.items()):
        cache.put_order(key, order)
        p = tmp_path / "prepared" / key[:2] / f"{key}.npy"
        os.utime(p, ns=(10**18 + t * 10**9, 10**18 + t * 10**9))  # written in key order
    rel = tmp_path / "model" / "gradient" / "x.npy"  # a relevance map: never evicted
    cache.put("model", "gradient", None, "x", np.ones((4, 4), dtype=np.float32))
    st = (tmp_path / "prepared" / "00" / f"{'00' * 16}.npy").stat()
    one = max(st.st_size, st.st_blocks * 512)  # on disk: its blocks
    assert cache.size() == 5 * one
    keys = list(orders)
    got = cache.get_order(keys[0])  # read back: now the most recently used
    assert got is not None and np.array_equal(got, orders[keys[0]])
    assert cache.trim(0) == 0 and cache.size() == 5 * one  # 0: no cap
    freed = cache.trim(3 * one)
    assert freed == 2 * one and cache.size() == 3 * one
    left = {k for k in keys if cache.get_order(k) is not None}
    assert left == {keys[0], keys[3], keys[4]}  # the two oldest unused went first
    assert rel.exists()
    assert cache.trim(1) == 3 * one and cache.size() == 0 and rel.exists()


def test_compare_trims_the_cache_to_its_setting(study, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    store, model = study
    asked: list[int] = []

    class Trimmed(SaliencyCache):
        def trim(self, max_bytes: int) -> int:
            asked.append(max_bytes)
            return super().trim(max_bytes)

    cache = Trimmed(tmp_path / "cache")
    an = AnalysisSettings(analyzer="gradient")
    assert an.cache_max_mb == 2048  # the default cap
    analyse_project(store, model, analysis=replace(an, cache_max_mb=0), cache=cache)
    full = cache.size()
    assert full > 0 and asked == [0]  # no cap: nothing deleted
    analyse_project(store, model, analysis=replace(an, cache_max_mb=3), cache=cache)
    assert asked == [0, 3 * 2**20] and cache.size() == full  # under the cap: kept


def test_prepared_auc_judd_is_the_reference_float_on_odd_maps() -> None:
    """The prepared map counts AUC-Judd's thresholds through its sort with exact bounds and
    only computes the few pixels near each one: the same float as auc_judd, on heatmaps,
    tied maps, a one-pixel support, maps without a zero block or with negative values, and
    fixated pixels on and off the support (few and many thresholds)."""
    from gazelab.analysis.metrics import auc_judd
    from gazelab.gaze.heatmaps import fixation_heatmap

    rng = np.random.default_rng(11)
    checked = 0
    for case in range(60):
        h, w = int(rng.integers(6, 70)), int(rng.integers(6, 70))
        kind = case % 5
        if kind == 0:
            pts = rng.uniform(0, min(h, w), (int(rng.integers(1, 5)), 2))
            m = fixation_heatmap(pts, (h, w), float(rng.uniform(1, 6)), float(rng.uniform(2, 15)))
        elif kind == 1:
            m = np.round(rng.random((h, w)) * 3) * (rng.random((h, w)) < 0.3)  # ties
        elif kind == 2:
            m = np.zeros((h, w))
            m.ravel()[rng.integers(0, h * w)] = 2.0  # one pixel
        elif kind == 3:
            m = rng.random((h, w)) + 0.01  # no zero block
        else:
            m = rng.random((h, w)) * (rng.random((h, w)) < 0.5) - 0.1 * (rng.random((h, w)) < 0.1)
        prepared = PreparedMap(m)
        for k in (1, 5, 30):
            fix = np.zeros((h, w), dtype=bool)
            fix.ravel()[rng.choice(h * w, k, replace=False)] = True
            got = map_scores(prepared, prepared, fix)["auc_judd"]
            assert np.float64(got).tobytes() == np.float64(auc_judd(m, fix)).tobytes()
            checked += 1
    assert checked == 180
    # past 256 thresholds the support's noise is counted by a binary search a pixel
    m = fixation_heatmap(rng.uniform(0, 60, (6, 2)), (60, 60), 4.0, 12.0)
    prepared = PreparedMap(m)
    for k in (256, 257, 2000):
        fix = np.zeros((60, 60), dtype=bool)
        fix.ravel()[rng.choice(3600, k, replace=False)] = True
        got = map_scores(prepared, prepared, fix)["auc_judd"]
        assert np.float64(got).tobytes() == np.float64(auc_judd(m, fix)).tobytes(), k


def test_scores_and_files_are_capped_together_least_recently_used_first(tmp_path) -> None:
    """The scores' rows share the cap with the derived files: the oldest entry of either
    kind goes first (a row counts as its share of the file), and a cap of one byte leaves
    no row and no file."""
    import os
    import sqlite3

    cache = SaliencyCache(tmp_path, keep_sort_after=0)
    rng = np.random.default_rng(0)
    keys = [f"{k:02x}" * 16 for k in range(3)]
    for t, key in enumerate(keys):
        cache.put_order(key, rng.permutation(1000).astype(np.int32))
        p = tmp_path / "prepared" / key[:2] / f"{key}.npy"
        os.utime(p, ns=(10**18 + t * 10**9, 10**18 + t * 10**9))
    pairs = [f"pair{k}" for k in range(3)]
    for k in pairs:
        cache.put_scores(k, {"iou": 0.5, "kld": math.nan})
    cache.flush()
    con = sqlite3.connect(tmp_path / "scores.sqlite")
    with con:  # each pair last used half a second after the file of its number
        for t, k in enumerate(pairs):
            con.execute(
                "UPDATE scores SET used = ? WHERE key = ?", (10**18 + t * 10**9 + 5 * 10**8, k)
            )
    con.close()
    st = (tmp_path / "prepared" / "00" / f"{'00' * 16}.npy").stat()
    one = max(st.st_size, st.st_blocks * 512)  # on disk: its blocks
    full = cache.size()
    assert full > 3 * one  # the files and the scores' file
    cache.trim(full - one - 1)  # the oldest file, then the oldest row
    assert cache.get_order(keys[0]) is None and cache.get_scores(pairs[0]) is None
    assert cache.get_order(keys[1]) is not None
    got = cache.get_scores(pairs[1])
    assert got is not None and got["iou"] == 0.5 and math.isnan(got["kld"])
    cache.trim(1)
    assert _rows(tmp_path) == {} and not list((tmp_path / "prepared").rglob("*.npy"))


def test_a_scores_file_that_is_not_a_database_is_replaced(tmp_path) -> None:
    from gazelab.gaze.heatmaps import fixation_heatmap

    rng = np.random.default_rng(4)
    a = fixation_heatmap(rng.uniform(10, 50, (4, 2)), (60, 60), 4.0, 12.0)
    b = fixation_heatmap(rng.uniform(10, 50, (3, 2)), (60, 60), 4.0, 12.0)
    (tmp_path / "scores.sqlite").write_bytes(b"\x00not a database\xff" * 100)
    cache = SaliencyCache(tmp_path)
    got = map_scores(PreparedMap(a, cache), PreparedMap(b, cache))
    assert got == map_scores(PreparedMap(a), PreparedMap(b))
    cache.flush()
    assert len(_rows(tmp_path)) == 1
    again = SaliencyCache(tmp_path)
    assert map_scores(PreparedMap(a, again), PreparedMap(b, again)) == got


def test_scores_left_in_memory_are_committed_when_the_cache_is_dropped(tmp_path) -> None:
    import gc

    cache = SaliencyCache(tmp_path)
    cache.put_scores("k", {"iou": 0.25})
    assert cache.get_scores("k") == {"iou": 0.25}  # readable before the commit
    del cache
    gc.collect()
    assert list(_rows(tmp_path)) == ["k"]
    assert SaliencyCache(tmp_path).get_scores("k") == {"iou": 0.25}


def test_a_trim_meets_its_cap_with_many_rows(tmp_path) -> None:
    """Rows deleted give their pages back: one trim to half the scores' size leaves at most
    that, and keeps the most recently used half."""
    cache = SaliencyCache(tmp_path)
    for k in range(3000):
        cache.put_scores(f"{k:064x}", {"iou": k / 3000, "spearman": 0.5, "kld": math.nan})
    cache.flush()
    full = cache.size()
    cache.trim(full // 2)
    assert cache.size() <= full // 2
    left = _rows(tmp_path)
    assert 1000 < len(left) < 2000
    assert (tmp_path / "scores.sqlite").stat().st_size <= full // 2 + 4096


def test_a_busy_scores_file_is_a_miss_then_tried_again(tmp_path, monkeypatch) -> None:
    """Another process holding the file's lock: reads miss and rows wait, the store is not
    switched off; once the lock is gone (and the retry time passed) both work."""
    import sqlite3

    from gazelab.analysis import cache as cache_mod

    first = SaliencyCache(tmp_path)
    first.put_scores("a", {"iou": 0.5})
    first.flush()
    monkeypatch.setattr(cache_mod._ScoreDB, "RETRY_S", 0.0)
    other = sqlite3.connect(tmp_path / "scores.sqlite", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # holds the lock: readers and writers wait, then give up
    cache = SaliencyCache(tmp_path)
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: _short(a, k))
    assert cache.get_scores("a") is None  # busy: a miss
    cache.put_scores("b", {"iou": 0.25})
    other.execute("COMMIT")
    other.close()
    monkeypatch.undo()
    assert cache.get_scores("a") == {"iou": 0.5}  # tried again
    cache.flush()
    assert sorted(_rows(tmp_path)) == ["a", "b"]


def _short(args: Any, kwargs: Any) -> Any:
    """sqlite3.connect with a 0.1 s busy timeout (the test's lock is not waited out)."""
    import sqlite3

    connect = sqlite3.dbapi2.connect  # the module's own function, not the patched name
    return connect(*args, **{**kwargs, "timeout": 0.1})


def test_a_sort_is_kept_from_the_second_time_its_map_is_sorted(tmp_path) -> None:
    """By default the first sort of a content is only noted (a rerun whose pairs' scores
    are all kept sorts nothing); the second — in the same process or a later one — is
    written; the notes share the cap with the rest."""
    order = np.arange(500, dtype=np.int32)
    cache = SaliencyCache(tmp_path)
    assert cache.keep_sort_after == 1
    cache.put_order("k1", order)
    assert cache.get_order("k1") is None and not (tmp_path / "prepared").exists()
    cache.flush()
    assert list(_rows(tmp_path, "sorted")) == ["k1"]
    later = SaliencyCache(tmp_path)  # another run
    later.put_order("k1", order)
    got = later.get_order("k1")
    assert got is not None and np.array_equal(got, order)
    cache.put_order("k2", order)
    cache.put_order("k2", order)  # twice in one run
    assert cache.get_order("k2") is not None
    cache.trim(1)
    assert _rows(tmp_path, "sorted") == {} and later.get_order("k1") is None


def _bits(comp: Any) -> list[Any]:
    """What a compare gives an image beyond its rows: class, pointing hit, model points."""
    return [(im.image_id, im.predicted, im.model_hit, im.model_points.tobytes())
            for im in comp.images]  # fmt: skip


def test_a_warm_compare_reads_each_image_s_result_and_builds_no_map(
    study, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Each image's rows and the study's baseline rows are kept by their inputs: a warm
    compare that keeps no map for the report builds no heatmap, scores no pair and sorts
    nothing, and gives the rows, baselines, predicted classes, model points and pointing
    hits of a compare without a cache, bit for bit."""
    from gazelab.gaze import heatmaps

    store, model = study
    an = AnalysisSettings(analyzer="gradient")
    plain = analyse_project(store, model, analysis=an, keep_maps=0, baseline_images=None)
    cache = CountingCache(tmp_path / "cache")
    cold = analyse_project(store, model, analysis=an, cache=cache, keep_maps=1,
                           baseline_images=None)  # fmt: skip
    assert _same(plain.rows, cold.rows) and _same(plain.baselines, cold.baselines)
    assert cache.score_writes == 0 and cache.writes > 0  # results kept: sorts, no pairs
    built: list[int] = []
    real = heatmaps.fixation_heatmap

    def counted(*a: Any, **k: Any) -> Any:
        built.append(1)
        return real(*a, **k)

    monkeypatch.setattr(heatmaps, "fixation_heatmap", counted)
    cache.reads = cache.writes = cache.score_reads = cache.score_writes = 0
    warm = analyse_project(store, model, analysis=an, cache=cache, keep_maps=0,
                           baseline_images=None)  # fmt: skip
    assert built == [] and cache.score_reads == cache.reads == cache.writes == 0
    assert _same(plain.rows, warm.rows) and _same(plain.baselines, warm.baselines)
    assert _bits(plain) == _bits(warm) and plain.baseline_settings == warm.baseline_settings
    assert warm.computed_maps == 0 and len(warm.rows) == 6 * 3 * 3
    # the image whose maps a report draws is scored (its maps kept), its rows the same
    kept = analyse_project(store, model, analysis=an, cache=cache, keep_maps=1,
                           baseline_images=None)  # fmt: skip
    assert len(built) == 4  # its three annotators' maps and the model's
    assert kept.images[0].model_heatmap is not None and kept.images[1].model_heatmap is None
    assert _same(plain.rows, kept.rows) and _same(plain.baselines, kept.baselines)


def test_a_changed_input_code_or_result_is_a_miss(study, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A result is read back only for the same inputs, settings and code: other pairing of
    the annotators, another version of the analysis' code, and a kept result that is not
    what compare writes (damaged, or not rows) are misses, scored again and rewritten."""
    import sqlite3

    from gazelab.analysis import cache as cache_mod

    store, model = study
    an = AnalysisSettings(analyzer="gradient")
    cache = CountingCache(tmp_path / "cache")
    cold = analyse_project(store, model, analysis=an, cache=cache, keep_maps=0)
    cache.flush()
    con = sqlite3.connect(tmp_path / "cache" / "scores.sqlite")
    n_results = con.execute("SELECT count(*) FROM results").fetchone()[0]
    assert n_results == 6 + 1  # each image's, and the baselines'
    others = replace(an, human_pairs="others")
    want = analyse_project(store, model, analysis=others, keep_maps=0)
    cache.result_writes = 0
    got = analyse_project(store, model, analysis=others, cache=cache, keep_maps=0)
    assert cache.result_writes == 7 and _same(want.rows, got.rows)  # scored again
    assert _same(want.baselines, got.baselines) and not _same(cold.rows, got.rows)
    monkeypatch.setattr(cache_mod, "code_key", lambda: b"another version of the analysis")
    cache.result_writes = 0
    again = analyse_project(store, model, analysis=an, cache=cache, keep_maps=0)
    assert cache.result_writes == 7 and _same(cold.rows, again.rows)
    monkeypatch.undo()
    cache.flush()
    bad = ('{"rows": [1]}', "[", '{"rows": []}', "null", '{"rows": {"image_id": "x"}}', "[{}]")
    for data in bad:
        with con:
            con.execute("UPDATE results SET data = ?", (data,))
        fresh = CountingCache(tmp_path / "cache")
        out = analyse_project(store, model, analysis=an, cache=fresh, keep_maps=0)
        assert fresh.result_writes == 7, data  # a miss: scored again ...
        assert _same(cold.rows, out.rows) and _same(cold.baselines, out.baselines)
        assert _bits(cold) == _bits(out)
        fresh.flush()
        rewritten = con.execute("SELECT count(*) FROM results WHERE data != ?", (data,))
        assert rewritten.fetchone() == (n_results,)  # ... and rewritten
    # an image's result of the right shape but not this image's rows; the baselines' rows
    # without their columns; an empty model output file (a crash before it was written)
    import json

    key, good = next(
        (k, json.loads(d))
        for k, d in con.execute("SELECT key, data FROM results WHERE data LIKE '{\"rows\":[{%'")
    )  # an image's result this run wrote (the other runs' are left damaged)

    def changed(**row: Any) -> str:
        return json.dumps({**good, "rows": [{**good["rows"][0], **row}, *good["rows"][1:]]})

    wrong = [changed(image_id="another"), changed(iou="0.5"), changed(annotator="Z"),
             changed(label="sad"), changed(kind="other"), changed(cc=None),
             json.dumps({**good, "rows": good["rows"][1:]}),
             json.dumps({**good, "rows": [{**good["rows"][0], "extra": 1.0}]})]  # fmt: skip
    for data in wrong:
        with con:
            con.execute("UPDATE results SET data = ? WHERE key = ?", (data, key))
            con.execute("UPDATE results SET data = '[{}]' WHERE data LIKE '[%'")  # baselines
        fresh = CountingCache(tmp_path / "cache")
        out = analyse_project(store, model, analysis=an, cache=fresh, keep_maps=0)
        assert _same(cold.rows, out.rows) and _same(cold.baselines, out.baselines), data
        assert _bits(cold) == _bits(out)
        fresh.flush()
        assert con.execute("SELECT data FROM results WHERE key = ?", (key,)).fetchone() != (data,)
    con.close()
    for p in list((tmp_path / "cache").rglob("predictions/*.npy"))[:2]:
        p.write_bytes(b"")  # torn
    out = analyse_project(store, model, analysis=an, cache=CountingCache(tmp_path / "cache"),
                          keep_maps=0)  # fmt: skip
    assert _same(cold.rows, out.rows) and _bits(cold) == _bits(out)


class _Model:
    """A stand-in for a Keras model: a fixed linear map, counting the inputs it predicts."""

    def __init__(self) -> None:
        self.w = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
        self.predicted = 0

    def to_json(self) -> str:
        return '{"stand-in": 1}'

    def get_weights(self) -> list[Any]:
        return [self.w]

    def predict(self, x: Any, batch_size: int = 32, verbose: int = 0) -> Any:
        self.predicted += len(x)
        return np.asarray(x, dtype=np.float32).reshape(len(x), -1) @ self.w


def test_the_model_s_outputs_are_kept_by_model_and_input(tmp_path) -> None:
    from gazelab.analysis.cache import cached_predictions

    model = _Model()
    x = np.random.default_rng(1).random((5, 4, 4, 1)).astype(np.float32)
    want = model.predict(x)
    model.predicted = 0
    cache = SaliencyCache(tmp_path)
    assert np.array_equal(cached_predictions(model, x, cache), want) and model.predicted == 5
    assert np.array_equal(cached_predictions(model, x, cache), want) and model.predicted == 5
    x2 = x.copy()
    x2[3, 0, 0, 0] += 0.5  # one input changed: only it predicted
    got = cached_predictions(model, x2, cache)
    assert model.predicted == 6 and np.array_equal(got[[0, 1, 2, 4]], want[[0, 1, 2, 4]])
    assert np.array_equal(got[3], model.predict(x2[3:4])[0])
    model.w[0, 0] += 1.0  # another model: all predicted again
    model.predicted = 0
    cached_predictions(model, x, cache)
    assert model.predicted == 5


def test_results_share_the_cap_and_bad_values_are_not_kept(tmp_path) -> None:
    """Results count toward the derived data's cap and go least recently used first; a
    value JSON cannot hold is not kept; NaN comes back as NaN."""
    cache = SaliencyCache(tmp_path)
    cache.put_result("a", {"rows": [{"iou": math.nan, "label": None}]})
    cache.put_result("b", [np.int64(3)])  # not JSON: dropped
    got = cache.get_result("a")
    assert math.isnan(got["rows"][0]["iou"]) and got["rows"][0]["label"] is None
    assert cache.get_result("b") is None
    cache.flush()
    assert cache.size() > 0
    cache.trim(1)
    assert SaliencyCache(tmp_path).get_result("a") is None
    from gazelab.analysis import cache as cache_mod

    big = SaliencyCache(tmp_path)
    big.put_result("big", ["x" * 100])
    assert big.get_result("big") == ["x" * 100]
    old = cache_mod.MAX_RESULT_BYTES
    cache_mod.MAX_RESULT_BYTES = 50
    try:
        big.put_result("bigger", ["x" * 100])  # over the bound: not kept
    finally:
        cache_mod.MAX_RESULT_BYTES = old
    assert big.get_result("bigger") is None
    off = SaliencyCache(tmp_path, keep_results=False)
    off.put_result("c", [1])
    assert off.get_result("c") is None and SaliencyCache(tmp_path).get_result("c") is None


def test_a_kept_map_that_a_crash_left_torn_or_zero_filled_is_a_miss(tmp_path) -> None:
    """Relevance maps and model outputs are renamed into place without an fsync: a crash
    may leave a file empty, short, zero-filled or with stale bytes. Each carries a checksum
    of its ``.npy`` bytes, so every such file is a miss (computed again), never a wrong map;
    the file is still one ``np.load`` reads."""
    cache = SaliencyCache(tmp_path)
    rel = np.random.default_rng(2).random((8, 6)).astype(np.float32)
    cache.put("model", "deep_taylor", None, "img", rel)
    p = tmp_path / "model" / "deep_taylor" / "img.npy"
    good = p.read_bytes()
    assert np.array_equal(np.load(p), rel)  # readable as a plain .npy file
    got = cache.get("model", "deep_taylor", None, "img")
    assert got is not None and got.dtype == np.float32 and np.array_equal(got, rel)
    body = good[: -(len(CHECK_MAGIC) + 16)]
    flipped = bytearray(good)
    flipped[len(body) - 3] ^= 0x01  # one bit of the map's last value
    bad = {
        "empty": b"",
        "short": good[:-7],
        "zero-filled": bytes(len(good)),
        "a zeroed block": good[:64] + bytes(len(good) - 64),
        "a flipped bit": bytes(flipped),
        "no checksum (an older cache's file)": body,
        "a checksum of other bytes": body + CHECK_MAGIC + bytes(16),
    }
    for why, data in bad.items():
        p.write_bytes(data)
        assert cache.get("model", "deep_taylor", None, "img") is None, why
    import os

    from gazelab.analysis.cache import MAX_MAP_FILE

    os.truncate(p, MAX_MAP_FILE + 1)  # sparse: a file too big to be a map is not read
    assert cache.get("model", "deep_taylor", None, "img") is None
    p.write_bytes(good)
    assert np.array_equal(cache.get("model", "deep_taylor", None, "img"), rel)


def test_only_maps_with_many_non_zero_pixels_use_the_store_of_sorts(tmp_path) -> None:
    """At a heatmap's ~50 000 values a sort costs about what looking it up and noting it
    does: the store is asked only from ``min_sort_values`` non-zero pixels on."""
    from gazelab.analysis.cache import MIN_SORT_VALUES

    rng = np.random.default_rng(4)
    small = np.zeros(MIN_SORT_VALUES * 2)
    small[rng.choice(small.size, MIN_SORT_VALUES - 1, replace=False)] = rng.random(
        MIN_SORT_VALUES - 1
    )
    big = np.where(small == 0, 0.5, small)  # every pixel non-zero
    cache = CountingCache(tmp_path, keep_sort_after=0, min_sort_values=None)
    assert cache.min_sort_values == MIN_SORT_VALUES
    for x in (small, big):
        p = PreparedMap(x, cache)
        assert np.array_equal(p.values[p.order], np.sort(p.values))
    assert cache.writes == 1  # the big map's sort only
    again = PreparedMap(big, cache)
    assert np.array_equal(again.values[again.order], np.sort(again.values))
    assert cache.reads == 1


def test_a_kept_map_with_a_valid_checksum_and_a_strange_header_is_a_miss(tmp_path) -> None:
    """The digest only catches damage: a file written on purpose passes it. Its header is
    still only the one np.save writes (1–3 dimensions of up to 12 digits), so a
    5 000-digit dimension or a shape np.save never writes is a miss, not an error."""
    import hashlib

    cache = SaliencyCache(tmp_path)
    p = tmp_path / "m" / "deep_taylor" / "k.npy"
    p.parent.mkdir(parents=True)
    for shape in ("(" + "9" * 5000 + ",)", "(1, 2 3)", "(5, 6,)", "(1, 1, 1, 1)", "()"):
        header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
        header += " " * (63 - (len(header) + 10) % 64) + "\n"
        body = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
        body += b"\x00" * 24
        p.write_bytes(body + CHECK_MAGIC + hashlib.blake2b(body, digest_size=16).digest())
        assert cache.get("m", "deep_taylor", None, "k") is None, shape
