"""On-disk cache of relevance maps, keyed by model, image and analyzer.

Layout under the cache root::

    <model hash>/<analyzer>[-n<neuron>]/<image hash>.npy     float32 (H, W)
    prepared/<key[:2]>/<key>.npy     int32 (m,): the sort of a prepared map's support,
                                     by the hash of the map's non-zero values
    decoded/<key[:2]>/<key>.npy      uint8 (H, W[, 3]): a decoded image, by the hash of
                                     its file's bytes (read back memory-mapped)
    <model hash>/predictions/<image hash>.npy   float32 (classes,): the model's output
    scores.sqlite                    the pairs' map scores (``map_scores``), one row a
                                     pair, by the exact content of both maps, the
                                     fixated pixels and the metrics' code (``pair_key``);
                                     and ``compare``'s results (an image's rows, a study's
                                     baseline rows) by everything they are made from
                                     (:func:`image_result_key`, :func:`result_key`)

The model hash covers the architecture (JSON) and every weight; the image hash
covers the exact model input (after resizing and scaling), so a map is reused
only for the same numbers in and the same model. Files are written to a
temporary name and renamed, so a crash never leaves a half-written map.

``prepared/``, ``decoded/`` and ``scores.sqlite`` are derived data, cheap to make again:
they are kept under a size cap (:meth:`SaliencyCache.trim`, ``[analysis] cache_max_mb``),
the least recently used files and rows deleted first (a file read back is touched, a row
read back gets its last use). Relevance maps and predictions are never evicted.

A result is keyed by its inputs, not by the maps made from them: the SHA-256 of the
arrays it is computed from (an image's gaze points, weights, kernels, the relevance map,
the number of model points, ...), the settings, and the code that computes it — every
source file of ``gazelab.analysis`` and ``gazelab.gaze``, gazelab's, Python's, NumPy's,
SciPy's and numba's versions and the machine's architecture (:func:`code_key`) — so a
warm ``compare`` builds no map for an image whose result it finds, and any change of
code, settings or data makes a miss. The scores were once one JSON file a pair under
``scores/``: a cache from then keeps those files only until the cap deletes them (they
are not read).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import NDArray

from gazelab.fileio import array_sha256


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
"""The cache's folders of derived data, kept under :meth:`SaliencyCache.trim`'s cap (with
``scores.sqlite``; ``scores/`` holds an older cache's files)."""

SCORES_DB = "scores.sqlite"
"""The file of the pairs' scores under the cache root."""


class SaliencyCache:
    """Relevance maps on disk; see the module docstring for the layout."""

    def __init__(
        self,
        root: str | Path,
        *,
        keep_sort_after: int = 1,
        keep_results: bool = True,
        min_sort_values: int | None = None,
    ) -> None:
        """``keep_sort_after``: a map's sort is written once maps of its content were
        sorted this many times before (:meth:`put_order`; 0: at once). ``keep_results``:
        ``False`` keeps no result (:meth:`get_result` always misses), so every image is
        scored pair by pair from the pairs' scores and the sorts. ``min_sort_values``:
        maps with fewer non-zero pixels are sorted without the store
        (default :data:`MIN_SORT_VALUES`; 0: every map)."""
        self.root = Path(root)
        self.keep_sort_after = keep_sort_after
        self.min_sort_values = MIN_SORT_VALUES if min_sort_values is None else min_sort_values
        self.keep_results = keep_results
        self._scores = _ScoreDB(self.root / SCORES_DB)

    def _path(self, model_key: str, analyzer: str, neuron: int | None, image_key: str) -> Path:
        sub = analyzer if neuron is None else f"{analyzer}-n{neuron}"
        return self.root / model_key / sub / f"{image_key}.npy"

    def get(
        self, model_key: str, analyzer: str, neuron: int | None, image_key: str
    ) -> NDArray[np.float32] | None:
        """A map kept by :meth:`put`; ``None`` when absent, torn, or not a file
        :meth:`put` wrote (its checksum does not match: a miss, computed again and
        overwritten)."""
        p = self._path(model_key, analyzer, neuron, image_key)
        try:
            with open(p, "rb") as f:
                if os.fstat(f.fileno()).st_size > MAX_MAP_FILE:
                    return None  # not read (read(n) would allocate n bytes at once)
                data = f.read()
        except OSError:
            return None
        return _checked_npy(data)

    def put(
        self,
        model_key: str,
        analyzer: str,
        neuron: int | None,
        image_key: str,
        rel: NDArray[np.float32],
    ) -> None:
        """Keep a map (float32) under its model, analyzer and image keys: an ``.npy`` file
        (``np.load`` reads it) followed by a checksum of its bytes
        (:data:`CHECK_MAGIC` and their BLAKE2b-128), written to a temporary name and renamed
        without an fsync. A file a crash leaves empty, torn or zero-filled fails the
        checksum in :meth:`get`: a miss, never a wrong map. (Each map was fsynced before:
        ~1.3 s of a 654-image cold compare, the relevance pass's longest part.)"""
        p = self._path(model_key, analyzer, neuron, image_key)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(rel, dtype=np.float32))
        body = buf.getvalue()
        _put_derived(p, body + CHECK_MAGIC + hashlib.blake2b(body, digest_size=16).digest())

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
        """Keep a prepared map's support order — by default from the second time a map of
        this content is sorted (``keep_sort_after``): the first time only its key is noted
        (in ``scores.sqlite``). A compare
        whose pairs' scores are all kept sorts nothing, so a sort is written only where a
        rerun needed it again (a new annotator or baseline paired with the map, a new
        metrics' code), not for every map of every cold run (at 20 annotators × 120 images
        ~1.3 GB). Written to a temporary name and renamed, without fsync: a lost or torn
        file is only a cache miss, checked on reading. Where the note cannot be kept (a
        read-only cache) the order is written at once."""
        if self.keep_sort_after > 0 and not self._scores.sorted_before(key):
            return
        buf = io.BytesIO()
        np.save(buf, order)
        _put_derived(self.root / "prepared" / key[:2] / f"{key}.npy", buf.getvalue())

    def get_scores(self, key: str) -> dict[str, float] | None:
        """A pair's stored map scores (:func:`~gazelab.analysis.metrics.map_scores`), by
        :func:`~gazelab.analysis.metrics.prepared.pair_key`; ``None`` when absent or not a
        row of metric names and float64 values (a miss: scored again and rewritten). A row
        read back gets its last use (for :meth:`trim`) with the next commit."""
        return self._scores.get(key)

    def put_scores(self, key: str, scores: dict[str, float]) -> None:
        """Keep a pair's map scores (the exact floats, NaN included) in ``scores.sqlite``:
        kept in memory and committed with others (:meth:`flush`), readable at once. Only
        floats under plain metric names are kept."""
        self._scores.put(key, scores)

    def get_result(self, key: str) -> Any | None:
        """A result kept by :meth:`put_result` (JSON: lists, dicts, strings, numbers,
        ``None``, NaN), by its key (:func:`result_key`); ``None`` when absent or not JSON.
        The caller checks its shape: the file is data, never code."""
        return self._scores.get_result(key) if self.keep_results else None

    def put_result(self, key: str, value: Any) -> None:
        """Keep a result (anything :mod:`json` writes; NaN and infinities kept) under
        ``key``, committed with the pairs' scores. A value JSON cannot hold (a NumPy
        integer, an array) is not kept."""
        if self.keep_results:
            self._scores.put_result(key, value)

    def flush(self) -> None:
        """Commit the pairs' scores kept in memory (``compare`` does at its end; also done
        by :meth:`trim`, :meth:`size` and when the cache is dropped)."""
        self._scores.flush()

    def trim(self, max_bytes: int) -> int:
        """Delete the least recently used files of ``prepared/``, ``decoded/`` and
        ``scores/`` and rows of ``scores.sqlite`` (oldest modification time or last use
        first: written or read back) until together they hold at most ``max_bytes`` on
        disk (a row counts as its share of the file); ``max_bytes <= 0``: no cap. Relevance maps
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
        rows, db_bytes = self._scores.usage()
        per_row = db_bytes // max(1, len(rows))  # a row's share of the file
        entries: list[tuple[int, int, str, bool]] = [(t, size, p, False) for t, size, p in files]
        entries += [(t, per_row, key, True) for t, key in rows]
        total = sum(size for _, size, _, _ in entries) + (db_bytes - per_row * len(rows))
        freed = 0
        gone: list[str] = []
        for _, size, what, row in sorted(entries):
            if total <= max_bytes:
                break
            if row:
                gone.append(what)
                total -= size
                continue
            try:
                os.unlink(what)
            except OSError:  # gone already (another process trimming): not counted
                continue
            total -= size
            freed += size
        return freed + self._scores.delete(gone)

    def size(self) -> int:
        """Bytes on disk held by ``prepared/``, ``decoded/``, ``scores/`` and
        ``scores.sqlite`` (what :meth:`trim` caps; each file's blocks)."""
        return self._scores.usage()[1] + sum(
            _disk_bytes(e.stat(follow_symlinks=False))
            for sub in DERIVED
            for d in _scandir(self.root / sub)
            if d.is_dir(follow_symlinks=False)
            for e in _scandir(Path(d.path))
            if e.is_file(follow_symlinks=False)
        )


MAX_RESULT_BYTES = 16 * 2**20
"""The largest result kept (its JSON): a larger one is computed again on each run."""
PENDING_RESULT_BYTES = 64 * 2**20
"""Results held in memory before they are committed (with :data:`_ScoreDB.FLUSH_ROWS`)."""


class _ScoreDB:
    """The pairs' scores in one SQLite file (``scores.sqlite`` under the cache root): one row
    a pair (the metric names, the floats as little-endian float64 bytes, the last use in
    ns). Writes are kept in memory and committed together (:meth:`flush`, every
    :data:`FLUSH_ROWS` rows, and when the cache is dropped), reads see them at once; the
    last use of the rows read is written with the next commit. Best-effort throughout: a
    file that cannot be opened or written (a read-only cache, a full disk) loses rows,
    never the compare; another process holding the file's lock makes a miss and the file
    is tried again :data:`RETRY_S` later; a file that is not a database, or a damaged one,
    is replaced (once a process)."""

    FLUSH_ROWS = 4096
    RETRY_S = 5.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._dead = False  # the file cannot be used: every read a miss, writes dropped
        self._retry_at = 0.0  # busy: not tried before this time (time.monotonic)
        self._replaced = False
        self._p = _Pending()  # what is to be committed (the finalizer commits what is left)
        self._results_bytes = 0  # the JSON held in self._p.results
        weakref.finalize(self, _ScoreDB._flush_at_exit, self._lock, self._p, path)

    # -- the connection (every method below holds the lock) -------------------------------
    def _connect(self) -> sqlite3.Connection | None:
        """The open connection (made on first use); ``None`` when the file cannot be used
        now (busy: tried again later) or at all."""
        if self._con is not None or self._dead or time.monotonic() < self._retry_at:
            return self._con
        if not self.path.parent.is_dir():
            self._dead = True
            return None
        try:
            self._con = _open_scores(self.path)
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                self._retry_at = time.monotonic() + self.RETRY_S
            else:  # cannot be opened or written (read-only, not a folder)
                self._dead = True
        except sqlite3.DatabaseError:  # not a database
            self._damaged()
        except (sqlite3.Error, OSError):
            self._dead = True
        return self._con

    def _failed(self, exc: Exception) -> None:
        """After an error from the open file: busy: try again later; damaged: replaced."""
        if isinstance(exc, sqlite3.OperationalError):
            if _busy(exc):
                self._retry_at = time.monotonic() + self.RETRY_S
            return
        if isinstance(exc, sqlite3.DatabaseError):
            self._damaged()

    def _damaged(self) -> None:
        """The file is not a database, or a damaged one: deleted and made anew, once a
        process (then, or when it cannot be deleted, the store is off)."""
        if self._con is not None:
            try:
                self._con.close()
            except sqlite3.Error:
                pass
            self._con = None
        if self._replaced or not _unlink(self.path):
            self._dead = True
            return
        self._replaced = True
        try:
            self._con = _open_scores(self.path)
        except (sqlite3.Error, OSError):
            self._dead = True

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # -- rows -------------------------------------------------------------------------------
    def _select(self, sql: str, key: str) -> Any | None:
        """The row of ``sql`` (one ``?`` for the key) from the file; ``None`` when absent or
        the file cannot be read now (the lock held)."""
        con = self._connect()
        if con is None:
            return None
        try:
            return con.execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return None

    def get(self, key: str) -> dict[str, float] | None:
        with self._lock:
            row = self._p.rows.get(key)
            if row is None:
                row = self._select("SELECT names, vals FROM scores WHERE key = ?", key)
                if row is None:
                    return None
                self._p.touched.add(key)
        return _scores_of_row(*row)

    def sorted_before(self, key: str) -> bool:
        """Whether a map of content ``key`` was sorted before (in this process or noted in
        the file: its last use renewed); if not, it is noted now. ``True`` where nothing can
        be noted (the store is off): the caller keeps the sort at once."""
        with self._lock:
            if key in self._p.noted:
                return True
            con = self._connect()
            if con is None:
                return self._dead
            try:
                seen = con.execute("SELECT 1 FROM sorted WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                self._failed(exc)
                return self._dead
            self._p.noted.add(key)  # noted (or its last use renewed) with the next commit
            return seen is not None

    def put(self, key: str, scores: dict[str, float]) -> None:
        row = _row_of_scores(scores)
        if row is not None:
            self._hold(self._p.rows, key, row)

    def _hold(self, pending: dict[str, Any], key: str, value: Any) -> None:
        """Keep a row to be committed (every :data:`FLUSH_ROWS` rows of its kind)."""
        with self._lock:
            if self._dead:
                return
            pending[key] = value
            full = len(pending) >= self.FLUSH_ROWS
        if full:
            self.flush()

    def get_result(self, key: str) -> Any | None:
        with self._lock:
            data = self._p.results.get(key)
            if data is None:
                row = self._select("SELECT data FROM results WHERE key = ?", key)
                if row is None or not isinstance(row[0], str):
                    return None
                data = row[0]
                self._p.used_results.add(key)
        try:
            return json.loads(data)
        except (ValueError, RecursionError):  # not JSON: a miss, written again
            return None

    def put_result(self, key: str, value: Any) -> None:
        try:
            data = json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            return
        if len(data) > MAX_RESULT_BYTES:  # not kept (SQLite's limit is 1 GB a value)
            return
        with self._lock:
            self._results_bytes += len(data)
            over = self._results_bytes > PENDING_RESULT_BYTES
        self._hold(self._p.results, key, data)
        if over:
            self.flush()

    def _take(self) -> _Pending:
        """What is to be committed, taken out (the lock held)."""
        out = self._p.copy()
        self._p.clear()
        self._results_bytes = 0
        return out

    def flush(self) -> None:
        """Commit the rows written and the last use of those read (one transaction)."""
        with self._lock:
            todo = self._take()
            if todo.empty():
                return
            con = self._connect()
            if con is not None:
                try:
                    _commit(con, todo)
                except sqlite3.Error as exc:
                    self._failed(exc)

    @staticmethod
    def _flush_at_exit(lock: threading.Lock, pending: _Pending, path: Path) -> None:
        """What a cache dropped without :meth:`flush` still holds, committed on its own
        connection (at garbage collection or interpreter exit)."""
        with lock:
            if pending.empty():
                return
            try:
                con = _open_scores(path)
            except (sqlite3.Error, OSError):
                return
            try:
                _commit(con, pending)
            except sqlite3.Error:
                pass
            finally:
                con.close()
            pending.clear()

    # -- the size cap -----------------------------------------------------------------------
    def usage(self) -> tuple[list[tuple[int, str]], int]:
        """(last use ns and ``table:key`` of every row — a pair's scores, a map sorted
        once or a result — oldest first; the bytes the rows take: the file's pages in use)."""
        self.flush()
        with self._lock:
            if not self.path.exists():  # not made yet (nothing kept): not made here
                return [], 0
            con = self._connect()
            if con is None:
                return [], 0
            try:
                rows = con.execute(
                    "SELECT used, 'scores:' || key FROM scores UNION ALL "
                    "SELECT used, 'sorted:' || key FROM sorted UNION ALL "
                    "SELECT used, 'results:' || key FROM results ORDER BY 1"
                ).fetchall()
                size = _pages_in_use(con)
            except sqlite3.Error as exc:
                self._failed(exc)
                return [], 0
        return [(int(u), str(k)) for u, k in rows], size

    def delete(self, keys: list[str]) -> int:
        """Delete rows (``table:key`` as :meth:`usage` names them) and give the file's free
        pages back (``VACUUM``: the file holds small
        rows, rewritten in well under a second); returns the bytes the file shrank by."""
        if not keys:
            return 0
        with self._lock:
            con = self._connect()
            if con is None:
                return 0
            try:
                before = _disk_bytes(os.stat(self.path))
                con.execute("BEGIN IMMEDIATE")
                for table in ("scores", "sorted", "results"):
                    gone = [(k[len(table) + 1 :],) for k in keys if k.startswith(f"{table}:")]
                    con.executemany(f"DELETE FROM {table} WHERE key = ?", gone)
                con.execute("COMMIT")
                con.execute("VACUUM")
                return max(0, before - _disk_bytes(os.stat(self.path)))
            except (sqlite3.Error, OSError) as exc:
                _rollback(con)
                if isinstance(exc, sqlite3.Error):
                    self._failed(exc)
                return 0


_SCORES_TABLE = (
    "CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, names TEXT NOT NULL, "
    "vals BLOB NOT NULL, used INTEGER NOT NULL) WITHOUT ROWID"
)
_SORTED_TABLE = (
    "CREATE TABLE IF NOT EXISTS sorted (key TEXT PRIMARY KEY, used INTEGER NOT NULL) "
    "WITHOUT ROWID"
)
_RESULTS_TABLE = (
    "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, data TEXT NOT NULL, "
    "used INTEGER NOT NULL) WITHOUT ROWID"
)


@dataclass
class _Pending:
    """What a scores file is yet to be written: the pairs' rows, the keys read back (their
    last use), the maps sorted once (content keys), the results (JSON) and the results
    read back (their last use)."""

    rows: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    noted: set[str] = field(default_factory=set)
    results: dict[str, str] = field(default_factory=dict)
    used_results: set[str] = field(default_factory=set)

    def _parts(self) -> tuple[dict[str, Any] | set[str], ...]:
        return (self.rows, self.touched, self.noted, self.results, self.used_results)

    def empty(self) -> bool:
        return not any(self._parts())

    def copy(self) -> _Pending:
        return _Pending(dict(self.rows), set(self.touched), set(self.noted),
                        dict(self.results), set(self.used_results))  # fmt: skip

    def clear(self) -> None:
        """Emptied in place (the finalizer holds this object)."""
        for part in self._parts():
            part.clear()


def _open_scores(path: Path) -> sqlite3.Connection:
    """A connection to the scores file, its table made where it is new; raises
    ``sqlite3.Error`` (the connection closed) when the file cannot be used."""
    con = sqlite3.connect(path, timeout=2.0, check_same_thread=False, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous = OFF")  # derived data: a lost row is a miss
        con.execute("PRAGMA trusted_schema = OFF")  # a crafted file's triggers and views
        con.execute(_SCORES_TABLE)
        con.execute(_SORTED_TABLE)
        try:
            con.execute(_RESULTS_TABLE)
        except sqlite3.OperationalError:  # an older file that cannot be written: its
            pass  # pairs' scores still read; every result a miss
        con.execute("SELECT 1 FROM scores LIMIT 1").fetchall()  # a damaged file fails here
    except sqlite3.Error:
        con.close()
        raise
    return con


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether an error is another connection holding the file's lock."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _pages_in_use(con: sqlite3.Connection) -> int:
    """The bytes of the file's pages that hold data (its size less its free pages)."""
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    free = con.execute("PRAGMA freelist_count").fetchone()[0]
    size = con.execute("PRAGMA page_size").fetchone()[0]
    return int(pages - free) * int(size)


def _commit(con: sqlite3.Connection, p: _Pending) -> None:
    """Write the pending rows, the last use of the keys read back, the maps sorted once and
    the results in one transaction; on an error nothing is written (the rows are lost:
    later misses) and it is raised."""
    now = time.time_ns()
    try:
        con.execute("BEGIN IMMEDIATE")
        con.executemany(
            "INSERT OR REPLACE INTO scores (key, names, vals, used) VALUES (?, ?, ?, ?)",
            [(k, names, vals, now) for k, (names, vals) in p.rows.items()],
        )
        con.executemany("UPDATE scores SET used = ? WHERE key = ?",
                        [(now, k) for k in p.touched - p.rows.keys()])  # fmt: skip
        con.executemany("INSERT OR REPLACE INTO sorted (key, used) VALUES (?, ?)",
                        [(k, now) for k in p.noted])  # fmt: skip
        con.executemany("INSERT OR REPLACE INTO results (key, data, used) VALUES (?, ?, ?)",
                        [(k, d, now) for k, d in p.results.items()])  # fmt: skip
        con.executemany("UPDATE results SET used = ? WHERE key = ?",
                        [(now, k) for k in p.used_results - p.results.keys()])  # fmt: skip
        con.execute("COMMIT")
    except sqlite3.Error:
        _rollback(con)
        raise


def _rollback(con: sqlite3.Connection) -> None:
    try:
        if con.in_transaction:
            con.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _unlink(path: Path) -> bool:
    try:
        path.unlink(missing_ok=True)
        return True
    except OSError:
        return False


def _row_of_scores(scores: dict[str, float]) -> tuple[str, bytes] | None:
    """A pair's scores as a row (names joined by commas, the floats' float64 bytes);
    ``None`` unless every name is a plain word and every value a float."""
    if not scores or not all(
        isinstance(k, str) and _NAME.fullmatch(k) and isinstance(v, float)
        for k, v in scores.items()
    ):
        return None
    return ",".join(scores), np.array(list(scores.values()), dtype="<f8").tobytes()


def _scores_of_row(names: object, vals: object) -> dict[str, float] | None:
    """The scores a row holds; ``None`` (a miss) for anything :func:`_row_of_scores` does
    not write: names that are not words, values not one float64 a name."""
    if not isinstance(names, str) or not isinstance(vals, bytes):
        return None
    keys = names.split(",")
    if len(vals) != 8 * len(keys) or not all(_NAME.fullmatch(k) for k in keys):
        return None
    return dict(zip(keys, np.frombuffer(vals, dtype="<f8").tolist(), strict=True))


_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")


def _put_derived(path: Path, data: bytes) -> None:
    """Write a derived file (a sort) best-effort: to a unique temporary
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


MIN_SORT_VALUES = 100_000
"""A prepared map with fewer non-zero pixels is sorted without the store of sorts
(:attr:`SaliencyCache.min_sort_values`): at ~50 000 values (a 560 px heatmap) the sort
costs ~0.75 ms, fingerprinting the map, looking its sort up and noting it ~0.6 ms on a
cold run, and reading it back saves ~0.3 ms on a later one; from ~100 000 values (pooled
maps) a sort read back saves 1.5–4 ms (AVX-512 argsort or the radix passes)."""

CHECK_MAGIC = b"gazelab-blake2b-128:"
"""What follows a kept map's ``.npy`` bytes, before their BLAKE2b-128 digest
(:meth:`SaliencyCache.put`)."""

MAX_MAP_FILE = 256 * 2**20
"""A kept map's file is read whole up to this size; a larger one is not one :meth:`SaliencyCache.put`
wrote for an image (a miss)."""

_NPY_FLOAT32 = re.compile(
    rb"\{'descr': '<f4', 'fortran_order': False, 'shape': "
    rb"\((?:(\d{1,12}),|(\d{1,12}), (\d{1,12})|(\d{1,12}), (\d{1,12}), (\d{1,12}))\), \} *\n"
)
"""The header ``np.save`` writes for a C-order float32 array of 1, 2 or 3 dimensions."""


def _checked_npy(data: bytes) -> NDArray[np.float32] | None:
    """The float32 array of a kept map's file (:meth:`SaliencyCache.put`): ``.npy`` bytes
    (version 1, C order, 1 to 3 dimensions) followed by :data:`CHECK_MAGIC` and their
    BLAKE2b-128 digest. ``None`` for a digest that does not match (torn, zero-filled, or
    an older cache's file without one), another layout or a size the header does not
    give. Parsed without NumPy's header parser (a literal eval, not thread-safe in
    CPython 3.11)."""
    tail = len(CHECK_MAGIC) + 16
    if len(data) < tail + 10:
        return None
    body, magic, digest = data[:-tail], data[-tail:-16], data[-16:]
    if magic != CHECK_MAGIC or hashlib.blake2b(body, digest_size=16).digest() != digest:
        return None
    header = _npy_header(body, _NPY_FLOAT32)
    if header is None:
        return None
    m, start = header
    shape = tuple(int(g) for g in m.groups() if g is not None)
    if len(body) != start + 4 * math.prod(shape):
        return None
    return np.frombuffer(body, dtype="<f4", offset=start).reshape(shape)


def _npy_header(data: bytes, layout: re.Pattern[bytes]) -> tuple[re.Match[bytes], int] | None:
    """A version 1 ``.npy`` header (as ``np.save`` writes it) matched whole against
    ``layout``, and where the array's bytes start; ``None`` for another layout. No
    literal eval (NumPy's header parser is not thread-safe in CPython 3.11)."""
    if data[:8] != b"\x93NUMPY\x01\x00" or len(data) < 10:
        return None
    start = 10 + int.from_bytes(data[8:10], "little")
    m = layout.fullmatch(data, 10, start)
    return None if m is None else (m, start)


def _vector_npy(data: bytes) -> NDArray[Any] | None:
    """A 1-D little-endian int32/int64 ``.npy`` file's array from its bytes (version 1
    header, as ``np.save`` writes it), without NumPy's general header parser (a literal
    eval); ``None`` for any other layout, or a size that does not match the header."""
    header = _npy_header(data, _NPY_VECTOR)
    if header is None:
        return None
    m, start = header
    dtype = np.dtype(m.group(1).decode())
    if len(data) != start + int(m.group(2)) * dtype.itemsize:
        raise ValueError("torn file")  # a miss, like np.load's error
    return np.frombuffer(data, dtype=dtype, offset=start)


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
        data = path.read_bytes()
        key = hashlib.blake2b(data, digest_size=16).hexdigest()
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
    read_bytes = getattr(src, "read_bytes", None)  # the bytes hashed above, decoded as image()
    pixels = np.asarray(src.image(image_id) if read_bytes is None else read_bytes(data, path))
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
    keys: list[str] | None = None,
) -> tuple[NDArray[np.float32], int]:
    """Relevance of a prepared batch ``x`` (model input), computing only what the cache
    lacks, ``chunk`` images per analyzer call (reporting ``progress(done, total)``).
    ``keys``: each input's :func:`array_hash`, where the caller has them. Returns (maps,
    n computed)."""
    from gazelab.analysis.saliency import relevance

    n = len(x)
    out: list[NDArray[np.float32] | None] = [None] * n
    mkey = model_hash(model) if cache is not None else ""
    if keys is None:
        keys = [array_hash(xi) for xi in x] if cache is not None else [""] * n
    if cache is not None:
        for i, k in enumerate(keys):
            out[i] = cache.get(mkey, analyzer, neuron, k)
    todo = [i for i in range(n) if out[i] is None]
    done = n - len(todo)
    if progress:
        progress(done, n)
    # iNNvestigate analyzers start a worker per call (~5 s): hand them big chunks;
    # progress and the cache advance chunk by chunk. The maps are written (checksummed,
    # without an fsync: SaliencyCache.put) by a thread while the next chunk is computed; an
    # error writing one is raised here, after the last chunk.
    from concurrent.futures import Future, ThreadPoolExecutor

    chunk = max(batch_size, chunk)
    written: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1) as writer:
        for start in range(0, len(todo), chunk):
            idx = todo[start : start + chunk]
            rel = relevance(model, x[idx], analyzer, neuron, batch_size=batch_size)
            for i, r in zip(idx, rel, strict=True):
                out[i] = r
                if cache is not None:
                    written.append(writer.submit(cache.put, mkey, analyzer, neuron, keys[i], r))
            done += len(idx)
            if progress:
                progress(done, n)
    for f in written:
        f.result()
    if n == 0:
        return np.zeros((0, *x.shape[1:3]), dtype=np.float32), 0
    return np.stack([o for o in out if o is not None]).astype(np.float32), len(todo)


PREDICTIONS = "predictions"
"""The folder of the model's outputs under a model's folder of the cache."""


def cached_predictions(
    model: Any,
    x: NDArray[np.float32],
    cache: SaliencyCache | None,
    *,
    batch_size: int = 32,
    keys: list[str] | None = None,
) -> NDArray[np.float32]:
    """The model's outputs ``(N, classes)`` on a prepared batch ``x``, predicting only the
    inputs the cache lacks (kept as ``<model hash>/predictions/<image hash>.npy``).
    ``keys``: each input's :func:`array_hash`, where the caller has them."""
    if cache is None or len(x) == 0:
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
    mkey = model_hash(model)
    if keys is None:
        keys = [array_hash(xi) for xi in x]
    got = [cache.get(mkey, PREDICTIONS, None, k) for k in keys]
    todo = [i for i, g in enumerate(got) if g is None or g.ndim != 1]
    if todo:
        new = np.asarray(model.predict(x[todo], batch_size=batch_size, verbose=0), np.float32)
        for i, p in zip(todo, new, strict=True):
            got[i] = p
            cache.put(mkey, PREDICTIONS, None, keys[i], p)
    if len({g.shape for g in got if g is not None}) != 1:  # a stale file of another size
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
    return np.stack([g for g in got if g is not None]).astype(np.float32)


# -- results by their inputs --------------------------------------------------------------
CODE_PACKAGES = ("analysis", "gaze")
"""The sub-packages whose source is part of every result's key (:func:`code_key`)."""


def _code_key(root: Path) -> bytes:
    """SHA-256 of every ``.py`` file of :data:`CODE_PACKAGES` under ``root`` (path and
    bytes) and the numeric environment: gazelab's, Python's, NumPy's, SciPy's and numba's
    versions and the machine's architecture. Where no source file can be read (a build
    without sources) a key no run repeats."""
    import platform
    import sys
    from importlib import metadata

    from gazelab import __version__

    def version(dist: str) -> str:  # from the metadata: the module need not be imported
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "none"

    h = hashlib.sha256(
        f"gazelab {__version__}|{sys.version}|numpy {np.__version__}|scipy {version('scipy')}"
        f"|numba {version('numba')}|{platform.machine()}".encode()
    )
    files = [f for pkg in CODE_PACKAGES for f in sorted((root / pkg).rglob("*.py"))]
    read = 0
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0")
        try:
            h.update(f.read_bytes())
            read += 1
        except OSError:
            h.update(os.urandom(16))
    if read == 0:
        h.update(os.urandom(16))
    return h.digest()


_CODE_KEY = _code_key(Path(__file__).resolve().parents[1])
"""The analysis' :func:`code_key`, taken when this module is imported (the code that runs,
not what is on disk later)."""


def code_key() -> bytes:
    """SHA-256 of the code and numeric environment a result depends on (taken at import:
    :func:`_code_key`). Any edit of the analysis makes every kept result a miss."""
    return _CODE_KEY


def _feed(h: Any, value: Any) -> None:
    """Add a value to a hash, typed and delimited (arrays by dtype, shape and bytes; a
    NumPy scalar as the Python number it holds)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        h.update(b"N")
    elif isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"A{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for v in value:
            _feed(h, v)
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for k in sorted(value, key=str):
            _feed(h, str(k))
            _feed(h, value[k])
    elif isinstance(value, float):
        h.update(b"F" + np.float64(value).tobytes())
    elif isinstance(value, (bool, int, str)):
        h.update(f"{type(value).__name__[0]}{len(str(value))}:{value}".encode())
    else:
        raise TypeError(f"cannot key a {type(value).__name__}")


def result_key(kind: str, *parts: Any) -> str:
    """The key of a result of ``kind``: SHA-256 of :func:`code_key` and ``parts`` (arrays,
    numbers, strings, ``None``, and lists, tuples and dicts of them), hex."""
    h = hashlib.sha256(code_key())
    _feed(h, kind)
    for p in parts:
        _feed(h, p)
    return h.hexdigest()


def image_result_key(im: Any, relevance: NDArray[Any] | None, n_points: int,
                     predicted: str, *settings: Any) -> str:  # fmt: skip
    """The key of an image's scored rows (:func:`~gazelab.analysis.scoring.score_image`):
    the image (id, class, size, diagnostic regions, kernel), each annotator's gaze (name,
    session, label, points, weights, fixations, kernel, size), the relevance map, ``n``,
    the predicted class and ``settings``."""
    humans = [(a, g.session_id, g.label, g.arrays()) for a, g in im.humans.items()]
    return result_key(
        "image", im.image_id, im.true_class, list(im.shape), im.regions,
        list(im.kernel_px), None if im.kernel_xy is None else list(im.kernel_xy),
        humans, relevance, n_points, predicted, list(settings),
    )  # fmt: skip


def is_rows(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    """Whether a result read back is a list of rows: dicts of strings to strings, numbers,
    booleans or ``None`` (what ``compare``'s rows hold)."""
    return isinstance(value, list) and all(
        isinstance(r, dict)
        and all(
            isinstance(k, str) and (v is None or isinstance(v, (str, int, float, bool)))
            for k, v in r.items()
        )
        for r in value
    )
