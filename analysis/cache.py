"""On-disk cache of relevance maps, keyed by model, image and analyzer.

Layout under the cache root::

    <model hash>/<analyzer>[-n<neuron>]/<image hash>.npy     float32 (H, W)
    prepared/<key[:2]>/<key>.npy     int32 (m,): the sort of a prepared map's support,
                                     by the hash of the map's non-zero values
    decoded/<key[:2]>/<key>.npy      uint8 (H, W[, 3]): a decoded image, by the hash of
                                     its file's bytes (read back memory-mapped)

The model hash covers the architecture (JSON) and every weight; the image hash
covers the exact model input (after resizing and scaling), so a map is reused
only for the same numbers in and the same model. Files are written to a
temporary name and renamed, so a crash never leaves a half-written map.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.fileio import array_sha256, atomic_write


def model_hash(model: Any) -> str:
    """SHA-256 of a Keras model's architecture and weights (hex, 16 characters)."""
    h = hashlib.sha256(model.to_json().encode())
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def array_hash(x: NDArray[Any]) -> str:
    """SHA-256 of an array's dtype, shape and bytes (hex, 24 characters)."""
    return array_sha256(x)[:24]


class SaliencyCache:
    """Relevance maps on disk; see the module docstring for the layout."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, model_key: str, analyzer: str, neuron: int | None, image_key: str) -> Path:
        sub = analyzer if neuron is None else f"{analyzer}-n{neuron}"
        return self.root / model_key / sub / f"{image_key}.npy"

    def get(
        self, model_key: str, analyzer: str, neuron: int | None, image_key: str
    ) -> NDArray[np.float32] | None:
        p = self._path(model_key, analyzer, neuron, image_key)
        if not p.exists():
            return None
        try:
            return np.asarray(np.load(p), dtype=np.float32)
        except (OSError, ValueError):  # unreadable: recompute and overwrite
            return None

    def put(
        self,
        model_key: str,
        analyzer: str,
        neuron: int | None,
        image_key: str,
        rel: NDArray[np.float32],
    ) -> None:
        p = self._path(model_key, analyzer, neuron, image_key)
        p.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, np.asarray(rel, dtype=np.float32))
        atomic_write(p, buf.getvalue())

    def get_order(self, key: str) -> NDArray[Any] | None:
        """A prepared map's support order (:class:`~gazelab.analysis.metrics.PreparedMap`),
        by the map's content hash; ``None`` when absent or unreadable."""
        p = self.root / "prepared" / key[:2] / f"{key}.npy"
        try:
            return np.asarray(np.load(p))
        except (OSError, ValueError, EOFError):
            return None

    def put_order(self, key: str, order: NDArray[Any]) -> None:
        """Keep a prepared map's support order (written to a temporary name and renamed,
        without fsync: a lost or torn file is only a cache miss, checked on reading)."""
        p = self.root / "prepared" / key[:2] / f"{key}.npy"
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, order)
        os.replace(tmp, p)


def decoded_image(src: Any, image_id: str, cache: SaliencyCache | None) -> NDArray[np.uint8]:
    """Image ``image_id`` of the image set ``src``, decoded once per file content: with a
    ``cache`` and a set that reads files (``ImageSet.files``), the decoded pixels are kept
    under ``decoded/<hash of the file's bytes>.npy`` and read back memory-mapped (the OS
    pages them in as they are used; they take no heap). Otherwise ``src.image(image_id)``."""
    files = getattr(src, "files", None)
    if cache is None or files is None:
        return np.asarray(src.image(image_id))
    path = Path(files[src.index(image_id)])
    try:
        key = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    except OSError:
        return np.asarray(src.image(image_id))  # the loader names the file in its error
    p = cache.root / "decoded" / key[:2] / f"{key}.npy"
    try:
        got = np.load(p, mmap_mode="r")
        if got.dtype == np.uint8 and got.ndim in (2, 3):
            return got
    except (OSError, ValueError, EOFError):
        pass
    pixels = np.asarray(src.image(image_id))
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, pixels)
    os.replace(tmp, p)
    return pixels


def cached_relevance(
    model: Any,
    x: NDArray[np.float32],
    analyzer: str,
    cache: SaliencyCache | None,
    *,
    neuron: int | None = None,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 256,
) -> tuple[NDArray[np.float32], int]:
    """Relevance of a prepared batch ``x`` (model input), computing only what the cache
    lacks, ``chunk`` images per analyzer call (reporting ``progress(done, total)``).
    Returns (maps, n computed)."""
    from gazelab.analysis.saliency import relevance

    n = len(x)
    out: list[NDArray[np.float32] | None] = [None] * n
    mkey = model_hash(model) if cache is not None else ""
    keys = [array_hash(xi) for xi in x] if cache is not None else [""] * n
    if cache is not None:
        for i, k in enumerate(keys):
            out[i] = cache.get(mkey, analyzer, neuron, k)
    todo = [i for i in range(n) if out[i] is None]
    done = n - len(todo)
    if progress:
        progress(done, n)
    # iNNvestigate analyzers start a worker per call (~5 s): hand them big chunks;
    # progress and the cache advance chunk by chunk
    chunk = max(batch_size, chunk)
    for start in range(0, len(todo), chunk):
        idx = todo[start : start + chunk]
        rel = relevance(model, x[idx], analyzer, neuron, batch_size=batch_size)
        for i, r in zip(idx, rel, strict=True):
            out[i] = r
            if cache is not None:
                cache.put(mkey, analyzer, neuron, keys[i], r)
        done += len(idx)
        if progress:
            progress(done, n)
    if n == 0:
        return np.zeros((0, *x.shape[1:3]), dtype=np.float32), 0
    return np.stack([o for o in out if o is not None]).astype(np.float32), len(todo)
