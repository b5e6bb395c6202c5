"""The store's connection: opening (and refusing what is not a store), migrating,
transactions, and SQLite faults turned into :class:`StoreError` messages.

Every table's methods (the mixins combined in :class:`~gazelab.annotation.store.SessionStore`)
build on :meth:`StoreConnection._write` (one ``BEGIN IMMEDIATE`` transaction under the
store's lock) and :meth:`StoreConnection._query`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from gazelab import __version__
from gazelab.annotation.store.schema import LEASES_TABLE, MIGRATIONS, SCHEMA_VERSION
from gazelab.errors import GazelabError


class StoreError(GazelabError, RuntimeError):
    """The store cannot do what was asked; the message says what and how to fix it."""


class _NotYetAStore(StoreError):
    """An empty file or an SQLite file without tables: maybe a store still being created."""


NEW_STORE_WAIT_S = 2.0  # a store file this young may still be being created by its writer


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StoreConnection:
    """One SQLite connection to a project's store, shared by threads under one lock."""

    _joined: int | None = None  # the thread whose writes join an open transaction()

    def __init__(
        self, path: str | Path, *, create: bool = False, busy_timeout_s: float = 60.0
    ) -> None:
        """Open the store at ``path``; a missing file is an error unless ``create``
        (only ``gazelab annotate``, the demo and the simulated runner make new stores)."""
        self.path = Path(path)
        self.audio_dir = self.path.with_suffix("").with_name(self.path.stem + "_audio")
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"store path {self.path} is a folder; give a .sqlite file path")
        if not create and not self.path.is_file():
            raise StoreError(
                f"no store at {self.path}: check the --store path (only 'gazelab annotate'"
                " creates a new store)"
            )
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():
            self._check_is_gazelab_store(create)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path,
                timeout=busy_timeout_s,
                isolation_level=None,  # explicit transactions only
                check_same_thread=False,
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a gazelab store (SQLite said: {exc})") from exc
        if mode.lower() != "wal":
            raise StoreError(f"{self.path}: could not switch to WAL mode (got {mode})")
        try:
            self._migrate()
        except StoreError:
            self._db.close()
            raise

    def _check_is_gazelab_store(self, create: bool) -> None:
        """Refuse, before writing anything, a file that is not a gazelab store: an empty
        file (unless creating), or another program's SQLite database (never migrated into).

        A file made in the last :data:`NEW_STORE_WAIT_S` seconds may be a store another
        process is creating right now (its tables come with its first commit): it gets
        that long to appear before being refused."""
        deadline = time.monotonic() + NEW_STORE_WAIT_S
        while True:
            try:
                self._probe_store(create)
                return
            except _NotYetAStore:
                young = time.time() - self.path.stat().st_mtime < NEW_STORE_WAIT_S
                if not young or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _probe_store(self, create: bool) -> None:
        if self.path.stat().st_size == 0:
            if create:
                return
            raise _NotYetAStore(
                f"{self.path} is empty, not a gazelab store; check the --store path"
            )
        try:
            uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as probe:
                tables = {r[0] for r in probe.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
                version = int(probe.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise StoreError(f"{self.path} is not a gazelab store (SQLite: {exc}); "
                                 "check the --store path") from exc  # fmt: skip
            raise self._error(exc) from exc
        # gazelab's tables, a schema version (a newer gazelab's store: the migration step
        # says so), or a new empty file being created
        if {"participants", "sessions"} <= tables or version > 0 or (not tables and create):
            return
        found = ", ".join(sorted(tables)[:5]) or "no tables"
        error = StoreError if tables else _NotYetAStore
        raise error(f"{self.path} is an SQLite database but not a gazelab store ({found}); "
                    "check the --store path — gazelab never writes into another database")  # fmt: skip

    # -- plumbing ---------------------------------------------------------------------------
    def _error(self, exc: sqlite3.Error) -> StoreError:
        """An SQLite fault as a :class:`StoreError` naming the store and what to do."""
        text = str(exc)
        low = text.lower()
        if "full" in low:
            return StoreError(
                f"cannot write to {self.path}: {text}; free disk space on that drive — "
                "everything already written is kept"
            )
        if "locked" in low or "busy" in low:
            return StoreError(
                f"{self.path} is locked by another program ({text}); close it (or wait) "
                "and try again"
            )
        if "readonly" in low or "read-only" in low:
            return StoreError(f"cannot write to {self.path}: {text}; check its permissions")
        if isinstance(exc, sqlite3.OperationalError) and "disk i/o" not in low:
            return StoreError(f"{self.path}: SQLite error: {text}")
        return StoreError(
            f"{self.path} is damaged (SQLite: {text}); restore it from a backup, or salvage"
            f" what is readable with: sqlite3 {self.path} .recover | sqlite3 recovered.sqlite"
        )

    def _rollback(self) -> None:
        # after a failed statement or COMMIT (a full disk) SQLite may have ended the
        # transaction itself; never let a failed rollback hide the original error
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._joined == threading.get_ident():  # inside transaction(): join it
                yield self._db
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._rollback()
                    raise
                try:
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write of this thread inside is one transaction: all of them are kept, or
        none (an exception, or a kill before the end, rolls every one back). Other threads
        and processes wait for it; an importer writes a whole file this way."""
        with self._write():
            self._joined = threading.get_ident()
            try:
                yield
            finally:
                self._joined = None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _json(self, text: str, what: str) -> Any:
        """A JSON column's value; unreadable JSON names the store, the row and what to do."""
        try:
            return json.loads(text)
        except (TypeError, ValueError, RecursionError) as exc:
            raise StoreError(
                f"{self.path}: {what} is not valid JSON ({exc}); the store was edited or"
                " damaged: restore it from a backup"
            ) from exc

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        with self._write() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this gazelab "
                    f"({__version__}, schema {SCHEMA_VERSION}); upgrade gazelab to open it"
                )
            for v in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {v + 1}")
            db.execute(LEASES_TABLE)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
