"""Mask export: round trip, manifest hashes, crash + restart, human masks from a project."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from gazelab import CLASSES
from gazelab.models.export import (
    ExportError,
    MaskJob,
    export_masks,
    jobs_from_relevance,
    load_masks,
    mask_sha256,
)
from gazelab.settings import Settings


def _relevance(n: int = 6, size: int = 16) -> np.ndarray:
    return np.random.default_rng(3).random((n, size, size)).astype(np.float32)


REQUEST = {"algorithm": "negative", "negative_fraction": 0.1, "size": 16}


def test_round_trip_and_hashes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rel = _relevance()
    ids = [f"img{i}" for i in range(len(rel))]
    jobs = jobs_from_relevance(ids, rel, "negative", settings=Settings(), n=5, dataset="synthetic")
    export_masks(jobs, tmp_path / "ex", request=REQUEST)
    ms = load_masks(tmp_path / "ex")
    assert ms.ids == ids and ms.masks.shape == (6, 16, 16)
    from gazelab.models.masks import negative_mask

    for i, m in enumerate(ms.masks):
        assert np.array_equal(m, negative_mask(rel[i], 0.1))
        assert (~m).sum() == 26  # round(0.1 * 256) distinct values zeroed
    rows = list(csv.DictReader(open(tmp_path / "ex" / "manifest.csv")))
    assert rows[0]["algorithm"] == "negative" and rows[0]["dataset"] == "synthetic"
    assert rows[0]["parameters"] == '{"negative_fraction": 0.1}'
    # plain numpy / PIL can read the files
    from PIL import Image

    png = np.asarray(Image.open(tmp_path / "ex" / rows[2]["png"]))
    assert set(np.unique(png)) <= {0, 255} and np.array_equal(png > 0, ms.masks[2])
    assert rows[2]["mask_sha256"] == mask_sha256(png > 0)

    # tampering is caught
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "ex" / rows[1]["png"])
    with pytest.raises(ExportError, match="PNG differs"):
        load_masks(tmp_path / "ex")
    # another request into the same folder is refused
    with pytest.raises(ExportError, match=r"other settings \(negative_fraction: 0.1 -> 0.2\)"):
        export_masks(jobs, tmp_path / "ex", request={**REQUEST, "negative_fraction": 0.2})


def _files(folder) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "masks.npz":
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_interrupted_export_restarts_to_the_same_result(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rel = _relevance(8)
    ids = [f"img{i}" for i in range(len(rel))]
    jobs = jobs_from_relevance(ids, rel, "negative", settings=Settings(), n=5)
    export_masks(jobs, tmp_path / "clean", request=REQUEST)

    calls = []

    def crash_after(k: int, job: MaskJob) -> MaskJob:
        def compute():  # type: ignore[no-untyped-def]
            if k == 5:
                raise KeyboardInterrupt("killed")
            calls.append(k)
            return job.compute()

        return MaskJob(job.image_id, compute, job.algorithm, job.dataset, job.parameters)

    with pytest.raises(KeyboardInterrupt):
        export_masks([crash_after(k, j) for k, j in enumerate(jobs)], tmp_path / "run",
                     request=REQUEST)  # fmt: skip
    assert not (tmp_path / "run" / "manifest.csv").exists()
    assert not (tmp_path / "run" / "masks.npz").exists()
    with pytest.raises(ExportError, match="incomplete"):
        load_masks(tmp_path / "run")
    assert len(list((tmp_path / "run" / "masks").glob("*.png"))) == 5
    assert not list((tmp_path / "run").rglob("*.tmp"))

    calls.clear()
    counted = []
    export_masks(jobs, tmp_path / "run", request=REQUEST, progress=lambda d, t: counted.append(d))
    assert counted[-1] == 8
    assert _files(tmp_path / "run") == {
        k: v for k, v in _files(tmp_path / "clean").items() if k != "export.json"
    } | {"export.json": _files(tmp_path / "run")["export.json"]}
    a, b = load_masks(tmp_path / "clean"), load_masks(tmp_path / "run")
    assert a.ids == b.ids and np.array_equal(a.masks, b.masks)
    assert b.info["reused"] == 5 and a.info["reused"] == 0


@pytest.mark.tf
def test_human_masks_from_a_project_with_fallback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab.analysis.compare import analyse_project
    from gazelab.annotation.store import SessionStore
    from gazelab.gaze.heatmaps import fixation_heatmap
    from gazelab.models.architectures import build_model
    from gazelab.models.datasets.registry import open_image_set
    from gazelab.models.export import jobs_from_comparison
    from gazelab.settings import AnalysisSettings
    from gazelab.tests.gaze_project import write_gaze_session

    source = "synthetic:3:5:64"
    src = open_image_set(source)
    truth = {i: CLASSES[src.labels[i]] for i in src.ids}
    tf.keras.utils.set_random_seed(0)
    model = build_model("small_cnn", (32, 32, 1), 8)
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        write_gaze_session(store, "A", source, {i: [(16.0, 16.0), (48.0, 40.0)] for i in src.ids},
                           truth)  # fmt: skip
        # B saw only the first two images
        write_gaze_session(store, "B", source, {i: [(32.0, 50.0)] for i in src.ids[:2]}, truth)
        comp = analyse_project(store, model, analysis=AnalysisSettings(analyzer="gradient"))
    jobs = jobs_from_comparison(comp, "human", settings=Settings(), size=32, annotator="B",
                                mixed=True, dataset="synthetic")  # fmt: skip
    export_masks(jobs, tmp_path / "hb", request={"algorithm": "human", "annotator": "B"})
    ms = load_masks(tmp_path / "hb")
    rows = {r["image_id"]: r for r in ms.rows}
    assert rows[src.ids[2]]["fallback"] == "1" and rows[src.ids[2]]["algorithm"] == "perceptive"
    assert rows[src.ids[0]]["fallback"] == "0" and rows[src.ids[0]]["annotator"] == "B"
    # the human mask is the support of B's heatmap at 32 px: fixation (32, 50) -> (16, 25)
    c, r = comp.images[0].kernel_px
    want = fixation_heatmap(np.array([[16.0, 25.0]]), (32, 32), c / 2, r / 2) > 0
    assert np.array_equal(ms.mask(src.ids[0]), want)
    assert want.sum() > 0
    # pooled annotators: A's and B's fixations together
    pooled = jobs_from_comparison(comp, "human", settings=Settings(), size=32)
    m = pooled[0].compute()
    assert m.sum() > want.sum() and (m | want).sum() == m.sum()


def test_triples_for_training(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.models.export import triples

    rel = _relevance(3, 16)
    ids = ["a", "b", "c"]
    export_masks(jobs_from_relevance(ids, rel, "mean", settings=Settings(), n=3), tmp_path / "m",
                 request={"algorithm": "mean"})  # fmt: skip
    ms = load_masks(tmp_path / "m")
    imgs = np.ones((2, 32, 32, 1), np.float32)
    out = list(triples(imgs, [4, 5], ["c", "a"], ms))
    assert [t[2] for t in out] == [4, 5] and out[0][1].shape == (32, 32)
    assert np.array_equal(out[0][1][::2, ::2], ms.mask("c"))  # nearest 2× upsampling
    with pytest.raises(ExportError, match="'zz'"):
        list(triples(imgs, [1], ["zz"], ms))


def test_annotator_names_are_those_compare_uses() -> None:
    from types import SimpleNamespace

    from gazelab.analysis.compare import annotator_keys

    recs = [SimpleNamespace(id=i, participant=p) for i, p in ((1, "P01"), (2, "P02"), (3, "P01"))]
    # a participant with two sessions is named per session, as masks --annotator takes it
    assert annotator_keys(recs) == {1: "P01/s1", 2: "P02", 3: "P01/s3"}  # type: ignore[arg-type]
    assert annotator_keys(recs[:2]) == {1: "P01", 2: "P02"}  # type: ignore[arg-type]
