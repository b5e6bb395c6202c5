"""Relevance maps of a whole dataset, streamed to float16 NPZ shards (docs/relevance-at-scale.md).

The paper explains every training image (FER+: ~35 000; AffectNet-sized sets: ~270 000)
before masking. :func:`explain_dataset` reads the images shard by shard, explains them
in batches with one analyzer built once, and writes each shard whole (temporary name,
then rename), so an interrupted run resumes where it stopped and ends with the same
bytes as an uninterrupted one. Layout of the output folder::

    relevance.json          what was asked (model hash, analyzer, dataset, shard size, ...)
    shards/shard-00000.npz  relevance (n, H, W) float16, ids, predicted class, score
    index.csv               image_id, shard, row, label, predicted, score, peak

``index.csv`` lists only finished shards; ``relevance.json`` gains ``"complete": true``
at the end. :class:`DatasetRelevance` reads it back (maps by id or by position, one shard
in memory at a time); the mask exporter takes it instead of recomputing relevance.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.analysis.saliency import LRP_ANALYZERS
from gazelab.errors import GazelabError
from gazelab.fileio import atomic_write

FORMAT = 1
INDEX_COLUMNS = ("image_id", "shard", "row", "label", "predicted", "score", "peak")


class DatasetRelevanceError(GazelabError, ValueError):
    """The output folder holds another request, or a shard is damaged."""


def _npz_bytes(arrays: dict[str, NDArray[Any]]) -> bytes:
    """An NPZ whose bytes depend on the arrays only (fixed member timestamps), so a resumed
    run writes byte-identical shards."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def _shard_name(k: int) -> str:
    return f"shard-{k:05d}.npz"


@dataclass
class DatasetRelevance:
    """Relevance maps written by :func:`explain_dataset`, read lazily shard by shard.

    Indexing by position (``maps[k]``) or by id (``maps.by_id(image_id)``) returns an
    ``(H, W)`` float32 map; ``shape`` is ``(N, H, W)`` like a stacked array."""

    folder: Path
    meta: dict[str, Any]
    rows: list[dict[str, str]]
    _cache: dict[int, dict[str, NDArray[Any]]] = field(default_factory=dict, repr=False)

    @property
    def ids(self) -> list[str]:
        return [r["image_id"] for r in self.rows]

    @property
    def shape(self) -> tuple[int, int, int]:
        h, w = self.meta["map_shape"]
        return (len(self.rows), int(h), int(w))

    def __len__(self) -> int:
        return len(self.rows)

    def shard(self, k: int) -> dict[str, NDArray[Any]]:
        if k not in self._cache:
            path = self.folder / "shards" / _shard_name(k)
            try:
                with np.load(path, allow_pickle=False) as z:
                    self._cache = {k: {name: z[name] for name in z.files}}
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise DatasetRelevanceError(f"{path}: cannot read the shard ({exc})") from exc
        return self._cache[k]

    def __getitem__(self, k: int) -> NDArray[np.float32]:
        row = self.rows[k]
        arr = self.shard(int(row["shard"]))["relevance"][int(row["row"])]
        return np.asarray(arr, dtype=np.float32)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {iid: i for i, iid in enumerate(self.ids)}

    def by_id(self, image_id: str) -> NDArray[np.float32]:
        if image_id not in self._positions:
            raise KeyError(f"{image_id!r} is not in {self.folder}")
        return self[self._positions[image_id]]

    def __iter__(self) -> Iterator[NDArray[np.float32]]:
        for k in range(len(self)):
            yield self[k]


def load_dataset_relevance(
    folder: str | Path, *, require_complete: bool = True
) -> DatasetRelevance:
    """Open a folder written by :func:`explain_dataset`."""
    root = Path(folder)
    meta_path = root / "relevance.json"
    if not meta_path.exists():
        raise DatasetRelevanceError(
            f"{root}: no relevance.json; write one with gazelab saliency --dataset"
        )
    meta = json.loads(meta_path.read_text())
    if require_complete and not meta.get("complete"):
        raise DatasetRelevanceError(
            f"{root}: the run is incomplete ({meta.get('shards_done', 0)} of "
            f"{meta.get('n_shards')} shards); run the same gazelab saliency command again "
            "to finish it"
        )
    index = root / "index.csv"
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    return DatasetRelevance(root, meta, rows)


Progress = Callable[[int, int], None]


def explain_dataset(
    model: Any,
    source: Any,
    out: str | Path,
    analyzer: str = "deep_taylor",
    *,
    shard_size: int = 256,
    batch_size: int = 32,
    limit: int | None = None,
    progress: Progress | None = None,
    worker: tuple[int, int] | None = None,
) -> DatasetRelevance | None:
    """Explain every image of ``source`` (an :class:`~gazelab.models.datasets.base.ImageSet`)
    into ``out``, skipping shards already written by an identical earlier request.

    ``progress(done, total)`` is called with images done after every batch.

    ``worker = (index, count)``: one of ``count`` hosts sharing ``out`` (a shared
    folder) with the same request; this one computes the shards ``k`` with
    ``k % count == index`` (see :func:`worker_from_tf_config`). Whichever worker finds
    every shard written when it is done writes ``index.csv`` and marks the run
    complete; the others return ``None``. A worker that died leaves its shards to be
    computed by running the same command again (any worker layout, or one host): the
    union is byte-identical to a one-host run.
    """
    from gazelab.analysis.cache import model_hash
    from gazelab.analysis.saliency import ANALYZERS, SaliencyError

    if analyzer not in ANALYZERS:
        raise SaliencyError(f"unknown analyzer {analyzer!r}; choose one of {', '.join(ANALYZERS)}")
    if shard_size < 1 or batch_size < 1:
        raise DatasetRelevanceError("shard size and batch size must be >= 1")
    index_of, count = worker if worker is not None else (0, 1)
    if not (count >= 1 and 0 <= index_of < count):
        raise DatasetRelevanceError(
            f"worker {index_of} of {count}: give an index from 0 to count - 1"
        )
    root = Path(out)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    ids = list(source.ids[:limit] if limit else source.ids)
    if not ids:
        raise DatasetRelevanceError(f"{source.spec}: no images to explain")
    input_shape = tuple(int(v) for v in model.input_shape[1:])
    request = {
        "format": FORMAT,
        "dataset": source.spec,
        "n_images": len(ids),
        "analyzer": analyzer,
        "model_hash": model_hash(model),
        "model_name": model.name,
        "input_shape": list(input_shape),
        "map_shape": list(input_shape[:2]),
        "shard_size": shard_size,
        "dtype": "float16",
        "neuron": "predicted class",
    }
    if analyzer in LRP_ANALYZERS:
        from dataclasses import asdict

        from gazelab.analysis.lrp import LRPSettings

        request["rule"] = asdict(LRPSettings(analyzer))
    meta_path = root / "relevance.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        differs = [k for k in request if old.get(k) != request[k]]
        if differs:
            raise DatasetRelevanceError(
                f"{root} holds relevance of another request (differs in "
                f"{', '.join(differs)}); choose another --out folder, or delete this one"
            )
    n_shards = -(-len(ids) // shard_size)
    done_rows: list[list[Any]] = []
    done_images = 0

    def write_meta(shards_done: int, complete: bool) -> None:
        meta = {**request, "n_shards": n_shards, "shards_done": shards_done, "complete": complete}
        atomic_write(meta_path, json.dumps(meta, indent=2) + "\n")

    def write_index() -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(INDEX_COLUMNS)
        w.writerows(done_rows)
        atomic_write(root / "index.csv", buf.getvalue())

    if not meta_path.exists():
        write_meta(0, False)
    if count > 1:
        mine = [k for k in range(n_shards) if k % count == index_of]
        my_total = sum(len(ids[k * shard_size : (k + 1) * shard_size]) for k in mine)
        my_done = 0
        for k in mine:
            shard_ids = ids[k * shard_size : (k + 1) * shard_size]
            path = root / "shards" / _shard_name(k)
            if _read_shard(path, shard_ids) is None:
                atomic_write(path, _npz_bytes(_explain_shard(
                    model, source, shard_ids, analyzer, input_shape, batch_size, k)))  # fmt: skip
            my_done += len(shard_ids)
            if progress:
                progress(my_done, my_total)
        # Done here: if every shard is there now, this worker writes the index; the
        # rows come from the shards themselves, so every worker would write the same.
        if any(
            _read_shard(
                root / "shards" / _shard_name(k), ids[k * shard_size : (k + 1) * shard_size]
            )
            is None
            for k in range(n_shards)
        ):
            return None
        progress = None  # the pass below only reads
    for k in range(n_shards):
        shard_ids = ids[k * shard_size : (k + 1) * shard_size]
        path = root / "shards" / _shard_name(k)
        arrays = _read_shard(path, shard_ids)
        if arrays is None and count > 1:
            return None  # removed meanwhile: let the next run finish it
        if arrays is None:  # not yet written (or damaged: written again)
            on_batch = (
                functools.partial(lambda before, d: progress(before + d, len(ids)), done_images)
                if progress
                else None
            )
            arrays = _explain_shard(model, source, shard_ids, analyzer, input_shape, batch_size,
                                    k, on_batch=on_batch)  # fmt: skip
            atomic_write(path, _npz_bytes(arrays))
        elif progress:
            progress(done_images + len(shard_ids), len(ids))
        done_images += len(shard_ids)
        for row, iid in enumerate(shard_ids):
            r = arrays["relevance"][row]
            done_rows.append([
                iid, k, row, source.labels.get(iid, ""), int(arrays["predicted"][row]),
                f"{float(arrays['score'][row]):.6g}", f"{float(np.abs(r).max()):.6g}",
            ])  # fmt: skip
        if count == 1:  # one host: its progress on disk shard by shard, to resume from
            write_index()
            write_meta(k + 1, k + 1 == n_shards)
    if count > 1:
        # Several hosts may finish at once and each writes the index: only the finished
        # one, never a part (another host's part written over a finished index would read
        # as an incomplete run to the host that had just finished it)
        write_index()
        write_meta(n_shards, True)
    return load_dataset_relevance(root)


def _explain_shard(
    model: Any,
    source: Any,
    shard_ids: list[str],
    analyzer: str,
    input_shape: tuple[int, ...],
    batch_size: int,
    k: int,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, NDArray[Any]]:
    """One shard's arrays (relevance float16, ids, predicted class, score);
    ``on_batch(images done in the shard)`` after every batch."""
    from gazelab.analysis.saliency import relevance
    from gazelab.models.architectures import to_model_input

    rel_parts, pred_parts, score_parts = [], [], []
    for b in range(0, len(shard_ids), batch_size):
        batch_ids = shard_ids[b : b + batch_size]
        x = to_model_input([source.image(i) for i in batch_ids], input_shape)
        probs = np.asarray(model(x, training=False))
        pred = probs.argmax(axis=-1)
        rel_parts.append(relevance(model, x, analyzer, batch_size=batch_size))
        pred_parts.append(pred)
        score_parts.append(probs[np.arange(len(pred)), pred])
        if on_batch is not None:
            on_batch(b + len(batch_ids))
    arrays = {
        "relevance": np.concatenate(rel_parts).astype(np.float16),
        "ids": np.asarray(shard_ids, dtype=str),
        "predicted": np.concatenate(pred_parts).astype(np.int16),
        "score": np.concatenate(score_parts).astype(np.float32),
    }
    if not np.isfinite(arrays["relevance"]).all():
        raise DatasetRelevanceError(
            f"shard {k}: relevance overflows float16 (|r| > 65504) or is NaN; "
            "the model's scores are unusually large"
        )
    return arrays


def worker_from_tf_config(environ: Any = None) -> tuple[int, int] | None:
    """(index, count) of this host among the ``chief`` and ``worker`` tasks of
    ``TF_CONFIG`` (the variable every host of a tf.distribute cluster has; on Slurm,
    ``tf.distribute.cluster_resolver.SlurmClusterResolver`` gives the same); ``None``
    without ``TF_CONFIG``."""
    import os

    text = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not text:
        return None
    try:
        cfg = json.loads(text)
        cluster, task = cfg["cluster"], cfg["task"]
        tasks = [("chief", i) for i in range(len(cluster.get("chief", [])))]
        tasks += [("worker", i) for i in range(len(cluster.get("worker", [])))]
        return tasks.index((task["type"], int(task["index"]))), len(tasks)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetRelevanceError(
            f"TF_CONFIG is not a cluster description this host is part of ({exc}); "
            'write {"cluster": {"worker": [...]}, "task": {"type": "worker", "index": I}}'
        ) from exc


def _read_shard(path: Path, shard_ids: list[str]) -> dict[str, NDArray[Any]] | None:
    """A finished shard for exactly these ids, or None (absent, damaged, or other ids)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    if list(arrays.get("ids", [])) != shard_ids or len(arrays.get("relevance", [])) != len(
        shard_ids
    ):
        return None
    return arrays
