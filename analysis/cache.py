"""On-disk cache of relevance maps, keyed by model, image and analyzer.

Layout under the cache root::

    <model hash>/<analyzer>[-n<neuron>]/<image hash>.npy     float32 (H, W)
    prepared/<key[:2]>/<key>.npy     int32 (m,): the sort of a prepared map's support,
                                     by the hash of the map's non-zero values
    decoded/<key[:2]>/<key>.npy      uint8 (H, W[, 3]): a decoded image, by the hash of
                                     its file's bytes (read back memory-mapped)
    scores/<key[:2]>/<key>.json      a pair's map scores (``map_scores``), by the exact
                                     content of both maps, the fixated pixels and the
                                     metrics' code (``pair_key``)

The model hash covers the architecture (JSON) and every weight; the image hash
covers the exact model input (after resizing and scaling), so a map is reused
only for the same numbers in and the same model. Files are written to a
temporary name and renamed, so a crash never leaves a half-written map.

``prepared/``, ``decoded/`` and ``scores/`` are derived data, cheap to make again: they
are kept under a size cap (:meth:`SaliencyCache.trim`, ``[analysis] cache_max_mb``), the
least recently used files deleted first (a file read back is touched). Relevance maps
are never evicted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import time
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


DERIVED = ("prepared", "decoded", "scores")
"""The cache's folders of derived data, kept under :meth:`SaliencyCache.trim`'s cap."""


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
        by the map's content key; ``None`` when absent or unreadable. A file read back is
        touched (its modification time is the last use: :meth:`trim` evicts by it)."""
        p = self.root / "prepared" / key[:2] / f"{key}.npy"
        try:
            with open(p, "rb") as f:
                data = f.read()
            # only the layout put_order writes is read; anything else is a miss (re-sorted
            # and rewritten). Not np.load: it parses the header with ast.literal_eval, which
            # CPython 3.11 does not make thread-safe (SystemError with the scoring workers)
            out = _vector_npy(data)
            if out is None:
                return None
            os.utime(p)
            return out
        except (OSError, ValueError, EOFError):
            return None

    def put_order(self, key: str, order: NDArray[Any]) -> None:
        """Keep a prepared map's support order (written to a temporary name and renamed,
        without fsync: a lost or torn file is only a cache miss, checked on reading)."""
        buf = io.BytesIO()
        np.save(buf, order)
        _put_derived(self.root / "prepared" / key[:2] / f"{key}.npy", buf.getvalue())

    def get_scores(self, key: str) -> dict[str, float] | None:
        """A pair's stored map scores (:func:`~gazelab.analysis.metrics.map_scores`), by
        :func:`~gazelab.analysis.metrics.prepared.pair_key`; ``None`` when absent or not a
        JSON object of metric names and floats (a miss: scored again and rewritten). A
        file read back is touched, as :meth:`get_order`'s."""
        p = self.root / "scores" / key[:2] / f"{key}.json"
        try:
            with open(p, "rb") as f:
                data = f.read(4096)
            got = json.loads(data)
        except (OSError, ValueError):
            return None
        if not isinstance(got, dict) or not all(
            isinstance(k, str) and type(v) is float for k, v in got.items()
        ):
            return None
        try:
            os.utime(p)
        except OSError:
            pass
        return got

    def put_scores(self, key: str, scores: dict[str, float]) -> None:
        """Keep a pair's map scores: JSON, each float written as its shortest repr (read
        back as the same float; NaN as ``NaN``), to a temporary name and renamed."""
        if not all(isinstance(v, float) for v in scores.values()):
            return  # only floats are kept (a score is a float, NaN where undefined)
        data = json.dumps(scores).encode()
        _put_derived(self.root / "scores" / key[:2] / f"{key}.json", data)

    def trim(self, max_bytes: int) -> int:
        """Delete the least recently used files of ``prepared/``, ``decoded/`` and
        ``scores/`` (oldest modification time first: written or read back) until together
        they hold at most ``max_bytes`` on disk; ``max_bytes <= 0``: no cap. Relevance maps
        are never deleted, nor a temporary file younger than an hour (another process may
        be writing it). Returns the bytes deleted."""
        if max_bytes <= 0:
            return 0
        files: list[tuple[int, int, str]] = []
        stale = time.time_ns() - 3600 * 10**9
        for sub in DERIVED:
            for d in _scandir(self.root / sub):
                if not d.is_dir(follow_symlinks=False):
                    continue
                for e in _scandir(Path(d.path)):
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if e.is_file(follow_symlinks=False) and (
                        not e.name.startswith(".") or st.st_mtime_ns < stale
                    ):
                        files.append((st.st_mtime_ns, _disk_bytes(st), e.path))
        total = sum(size for _, size, _ in files)
        freed = 0
        for _, size, path in sorted(files):
            if total <= max_bytes:
                break
            try:
                os.unlink(path)
            except OSError:  # gone already (another process trimming): not counted
                continue
            total -= size
            freed += size
        return freed

    def size(self) -> int:
        """Bytes on disk held by ``prepared/``, ``decoded/`` and ``scores/`` (what
        :meth:`trim` caps; each file's blocks)."""
        return sum(
            _disk_bytes(e.stat(follow_symlinks=False))
            for sub in DERIVED
            for d in _scandir(self.root / sub)
            if d.is_dir(follow_symlinks=False)
            for e in _scandir(Path(d.path))
            if e.is_file(follow_symlinks=False)
        )


def _put_derived(path: Path, data: bytes) -> None:
    """Write a derived file (a sort, a pair's scores) best-effort: to a unique temporary
    name beside it, then renamed (a reader never sees it torn). A full disk or a read-only
    cache only loses the file (a later miss), never the compare; the temporary is removed."""
    tmp = path.with_name(
        f".{path.name}.{os.getpid()}.{threading.get_ident()}.{os.urandom(4).hex()}.tmp"
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass


def _disk_bytes(st: os.stat_result) -> int:
    """What a file takes on disk (its blocks; a 200-byte file holds a 4 KiB block)."""
    return max(st.st_size, getattr(st, "st_blocks", 0) * 512)


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


_NPY_VECTOR = re.compile(
    rb"\{'descr': '(<i4|<i8)', 'fortran_order': False, 'shape': \((\d+),\), \} *\n"
)


def _vector_npy(data: bytes) -> NDArray[Any] | None:
    """A 1-D little-endian int32/int64 ``.npy`` file's array from its bytes (version 1
    header, as ``np.save`` writes it), without NumPy's general header parser (a literal
    eval); ``None`` for any other layout, or a size that does not match the header."""
    if data[:8] != b"\x93NUMPY\x01\x00" or len(data) < 10:
        return None
    hlen = int.from_bytes(data[8:10], "little")
    m = _NPY_VECTOR.fullmatch(data, 10, 10 + hlen)
    if m is None:
        return None
    dtype = np.dtype(m.group(1).decode())
    n = int(m.group(2))
    if len(data) != 10 + hlen + n * dtype.itemsize:
        raise ValueError("torn file")  # a miss, like np.load's error
    return np.frombuffer(data, dtype=dtype, offset=10 + hlen)


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
            os.utime(p)  # used now: the last to be evicted (SaliencyCache.trim)
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
