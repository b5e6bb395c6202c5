"""Whole-dataset relevance (analysis/dataset_relevance.py): shards, resume, the mask exporter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gazelab.analysis.dataset_relevance import (
    DatasetRelevanceError,
    explain_dataset,
    load_dataset_relevance,
)
from gazelab.models.datasets.registry import open_image_set

pytestmark = pytest.mark.tf
SPEC = "synthetic:200:5:32"


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab.models.architectures import build_model

    tf.keras.utils.set_random_seed(0)
    return build_model("small_cnn", (32, 32, 3), 8)


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


class Stop(Exception):
    pass


def test_interrupted_run_resumes_to_identical_output(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = open_image_set(SPEC)
    whole = explain_dataset(model, src, tmp_path / "a", shard_size=64, batch_size=32)
    assert len(whole) == 200 and whole.shape == (200, 32, 32)
    assert whole.meta["n_shards"] == 4 and whole.meta["complete"]

    def stop_in_shard_3(done: int, total: int) -> None:
        if done > 150:
            raise Stop

    with pytest.raises(Stop):
        explain_dataset(model, src, tmp_path / "b", shard_size=64, batch_size=32,
                        progress=stop_in_shard_3)  # fmt: skip
    partial = files(tmp_path / "b")
    assert sorted(k for k in partial if k.startswith("shards")) == [
        "shards/shard-00000.npz", "shards/shard-00001.npz"]  # fmt: skip
    assert partial["index.csv"].count(b"\n") == 1 + 128  # finished shards only
    assert not [k for k in partial if k.endswith(".tmp")]
    with pytest.raises(DatasetRelevanceError, match="incomplete.*2 of 4"):
        load_dataset_relevance(tmp_path / "b")

    computed: list[int] = []
    explain_dataset(model, src, tmp_path / "b", shard_size=64, batch_size=32,
                    progress=lambda d, t: computed.append(d))  # fmt: skip
    assert computed[:2] == [64, 128]  # the two finished shards skipped in one step each
    assert files(tmp_path / "b") == files(tmp_path / "a")  # byte-identical

    # the stored maps are the analyzer's, rounded to float16
    from gazelab.analysis.saliency import relevance
    from gazelab.models.architectures import to_model_input

    ids = whole.ids[130:140]
    direct = relevance(model, to_model_input([src.image(i) for i in ids], (32, 32, 3)))
    stored = np.stack([whole.by_id(i) for i in ids])
    assert np.allclose(stored, direct, rtol=1e-3, atol=1e-3 * np.abs(direct).max())
    assert [int(r["label"]) for r in whole.rows[:5]] == [src.labels[i] for i in whole.ids[:5]]


def test_another_request_is_refused(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = open_image_set("synthetic:20:1:32")
    explain_dataset(model, src, tmp_path, shard_size=8)
    before = files(tmp_path)
    with pytest.raises(DatasetRelevanceError, match="differs in analyzer"):
        explain_dataset(model, src, tmp_path, "lrp_epsilon", shard_size=8)
    with pytest.raises(DatasetRelevanceError, match="shard_size"):
        explain_dataset(model, src, tmp_path, shard_size=16)
    assert files(tmp_path) == before  # nothing overwritten
    # a damaged shard is written again on the next identical run
    (tmp_path / "shards" / "shard-00001.npz").write_bytes(b"broken")
    explain_dataset(model, src, tmp_path, shard_size=8)
    assert files(tmp_path) == before


def test_cli_dataset_then_masks_from_the_shards(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.cli import main
    from gazelab.models.export import load_masks

    model.save(tmp_path / "m.keras")
    spec = "synthetic:24:2:32"
    rel_dir = tmp_path / "rel"
    args = ["saliency", "--model", str(tmp_path / "m.keras"), "--dataset", spec,
            "--out", str(rel_dir), "--shard-size", "10"]  # fmt: skip
    assert main(args) == 0
    assert len(load_dataset_relevance(rel_dir)) == 24
    masks = ["masks", "--images", spec, "--model", str(tmp_path / "m.keras"),
             "--algorithm", "negative", "--out"]  # fmt: skip
    assert main([*masks, str(tmp_path / "from_shards"), "--relevance", str(rel_dir)]) == 0
    assert main([*masks, str(tmp_path / "computed")]) == 0
    a, b = load_masks(tmp_path / "from_shards"), load_masks(tmp_path / "computed")
    assert a.ids == b.ids and len(a.ids) == 24
    # the same masks up to the float16 rounding of the stored maps (ties at the cut)
    agree = np.mean([np.mean(a.mask(i) == b.mask(i)) for i in a.ids])
    assert agree > 0.99
    # shards of another image set are refused with the reason
    other = [*masks, str(tmp_path / "x"), "--relevance", str(rel_dir)]
    other[2] = "synthetic:24:3:32"
    assert main(other) == 2


WORKER_SCRIPT = """
import sys
import tensorflow as tf
from gazelab.analysis.dataset_relevance import explain_dataset, worker_from_tf_config
from gazelab.models.datasets.registry import open_image_set
model = tf.keras.models.load_model(sys.argv[1], compile=False)
maps = explain_dataset(model, open_image_set(sys.argv[2]), sys.argv[3], shard_size=64,
                       batch_size=32, worker=worker_from_tf_config())
print("FINISHED" if maps is not None else "PART DONE")
"""


# slow tier: quick: test_interrupted_run_resumes_to_identical_output (the shards, resumed)
@pytest.mark.slow
def test_two_hosts_share_the_shards_and_their_union_equals_one_host(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`saliency --dataset` across hosts: each worker (index/count from
    TF_CONFIG) computes its shards into the shared folder; the union, index and
    metadata are byte-identical to a one-host run."""
    import json
    import os
    import subprocess
    import sys

    model_path = tmp_path / "m.keras"
    model.save(model_path)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    one, shared = tmp_path / "one", tmp_path / "shared"
    run = [sys.executable, "-c", WORKER_SCRIPT, str(model_path), SPEC]
    subprocess.run([*run, str(one)], env=env, check=True, capture_output=True, timeout=300)
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    procs = []
    for i in range(2):
        task = {"cluster": cluster, "task": {"type": "worker", "index": i}}
        worker_env = {**env, "TF_CONFIG": json.dumps(task)}
        procs.append(subprocess.Popen([*run, str(shared)], env=worker_env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))  # fmt: skip
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert any("FINISHED" in o for o in outs)
    assert files(shared) == files(one)
    assert load_dataset_relevance(shared).meta["complete"]


def test_a_worker_alone_leaves_the_run_incomplete_until_the_rest_is_computed(
    model, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from gazelab.analysis.dataset_relevance import worker_from_tf_config

    src = open_image_set(SPEC)
    assert explain_dataset(model, src, tmp_path, shard_size=64, worker=(1, 2)) is None
    names = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert names == ["shard-00001.npz", "shard-00003.npz"]
    with pytest.raises(DatasetRelevanceError, match="incomplete"):
        load_dataset_relevance(tmp_path)
    done = explain_dataset(model, src, tmp_path, shard_size=64)  # one host finishes the rest
    assert done is not None and len(done) == 200 and done.meta["complete"]
    assert worker_from_tf_config({}) is None
    cfg = '{"cluster": {"chief": ["h:1"], "worker": ["h:2", "h:3"]}, "task": {"type": "worker", "index": 1}}'
    assert worker_from_tf_config({"TF_CONFIG": cfg}) == (2, 3)
    with pytest.raises(DatasetRelevanceError, match="TF_CONFIG"):
        worker_from_tf_config({"TF_CONFIG": "{not json"})
    with pytest.raises(DatasetRelevanceError, match="worker 2 of 2"):
        explain_dataset(model, src, tmp_path / "x", worker=(2, 2))


def test_hosts_finishing_at_once_write_only_the_finished_index(
    model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Two hosts that find every shard written at the same moment both write the index
    and the metadata: only ever the finished ones. A part written meanwhile (3 of 4
    shards, incomplete) over the other host's finished index made that host, reading it
    back, fail with "the run is incomplete" (seen in CI)."""
    import json

    import gazelab.analysis.dataset_relevance as dr

    src = open_image_set(SPEC)
    assert explain_dataset(model, src, tmp_path, shard_size=64, worker=(1, 2)) is None
    metas: list[dict] = []  # type: ignore[type-arg]
    real = dr.atomic_write

    def spy(path: Path, data: str | bytes) -> None:
        if Path(path).name == "relevance.json":
            metas.append(json.loads(data))
        real(path, data)

    monkeypatch.setattr(dr, "atomic_write", spy)
    done = explain_dataset(model, src, tmp_path, shard_size=64, worker=(0, 2))
    assert done is not None and done.meta["complete"]
    assert metas and all(m["complete"] and m["shards_done"] == 4 for m in metas), metas
    metas.clear()  # the other host, finishing too: the same finished files, nothing less
    again = explain_dataset(model, src, tmp_path, shard_size=64, worker=(1, 2))
    assert again is not None and again.meta == done.meta
    assert all(m["complete"] for m in metas), metas
