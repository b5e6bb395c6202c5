"""The project store: one SQLite database (WAL mode) per project (SPEC §2, DESIGN "One store").

Holds participants (pseudonymous ids only), sessions (settings snapshot, seed,
stimulus order, software version), calibrations, trials, gaze samples, events,
labels, audio references and recording gaps. Everything is committed as it
arrives, so a crash loses at most the last sample batch (≤ 100 ms, see
:class:`BatchedSampleWriter`). Several processes (two annotators) can write to
one store at once: writes take ``BEGIN IMMEDIATE`` with a generous busy
timeout, and every row is keyed by its own session.

The schema version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` are
applied in order, so an old store opens with its data intact.

A live session holds a *lease* on its session (:meth:`SessionStore.acquire_lease`):
one row naming the holder (host, pid) that the holder renews while it runs and
deletes at the end, so the same session cannot be run twice at once (SPEC §2:
"two sessions of one never overwrite each other"). A lease whose holder died
(its pid is gone on this host) or stopped renewing it for :data:`LEASE_STALE_S`
may be taken over.

Only ``gazelab annotate`` (and the demo, the simulated runner, tests) create a
store (``create=True``); every other command refuses a missing file, so a
mistyped ``--store`` is an error instead of a new, empty store. SQLite faults
(a damaged file, a full disk, a lock held too long) and unreadable JSON in a
stored session surface as :class:`StoreError` naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gazelab import CLASSES, __version__
from gazelab.errors import GazelabError
from gazelab.fileio import pid_alive
from gazelab.gaze.quality import PointQuality, TrialQuality, ValidationQuality
from gazelab.gaze.trackers.base import SAMPLE_FIELDS, CalibrationResult, GazeSample


class StoreError(GazelabError, RuntimeError):
    """The store cannot do what was asked; the message says what and how to fix it."""


class _NotYetAStore(StoreError):
    """An empty file or an SQLite file without tables: maybe a store still being created."""


class LeaseLostError(StoreError):
    """Another process took over a session this one was running (its lease went stale)."""


MIGRATIONS: tuple[str, ...] = (
    # v1: the core tables.
    """
    CREATE TABLE participants (
        id INTEGER PRIMARY KEY,
        pseudonym TEXT NOT NULL UNIQUE,
        created_utc TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        participant_id INTEGER NOT NULL REFERENCES participants(id),
        created_utc TEXT NOT NULL,
        software_version TEXT NOT NULL,
        settings_toml TEXT NOT NULL,
        seed INTEGER NOT NULL,
        image_source TEXT NOT NULL,
        stimulus_order TEXT NOT NULL,
        start_local_s REAL NOT NULL
    );
    CREATE TABLE calibrations (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        local_s REAL NOT NULL,
        kind TEXT NOT NULL,
        result INTEGER NOT NULL,
        deg REAL, degl REAL, degr REAL,
        points TEXT NOT NULL
    );
    CREATE TABLE trials (
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        trial_index INTEGER NOT NULL,
        image_id TEXT NOT NULL,
        onset_local_s REAL,
        onset_error_ms REAL,
        PRIMARY KEY (session_id, trial_index)
    );
    CREATE TABLE gaze_samples (
        session_id INTEGER NOT NULL,
        trial_index INTEGER,
        phase TEXT,
        time_ms REAL, local_s REAL, x REAL, y REAL, fix INTEGER, state INTEGER, valid INTEGER,
        raw_x REAL, raw_y REAL, left_x REAL, left_y REAL, right_x REAL, right_y REAL,
        left_psize REAL, right_psize REAL,
        left_pcx REAL, left_pcy REAL, right_pcx REAL, right_pcy REAL
    );
    CREATE INDEX gaze_samples_session ON gaze_samples(session_id, local_s);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        trial_index INTEGER,
        local_s REAL NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_session ON events(session_id, local_s);
    CREATE TABLE labels (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        trial_index INTEGER NOT NULL,
        local_s REAL NOT NULL,
        label TEXT NOT NULL,
        text TEXT NOT NULL DEFAULT '',
        confidence REAL NOT NULL DEFAULT 1.0,
        source TEXT NOT NULL
    );
    """,
    # v2: answer audio files and tracker gaps (dropped connections) get their own tables.
    """
    CREATE TABLE audio (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        trial_index INTEGER NOT NULL,
        local_s REAL NOT NULL,
        path TEXT NOT NULL,
        sha1 TEXT NOT NULL,
        label_id INTEGER REFERENCES labels(id)
    );
    CREATE TABLE recording_gaps (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        start_local_s REAL NOT NULL,
        end_local_s REAL,
        reason TEXT NOT NULL
    );
    """,
    # v3: data quality (issue #18 item 5) and a per-trial sample index (issue #22: reading
    # one trial's samples scanned the whole session, so reading a session was quadratic).
    """
    CREATE INDEX gaze_samples_trial ON gaze_samples(session_id, trial_index, local_s);
    CREATE TABLE validation_quality (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        local_s REAL NOT NULL,
        kind TEXT NOT NULL,
        mean_accuracy_deg REAL, max_accuracy_deg REAL,
        rms_s2s_deg REAL, std_deg REAL, loss_pct REAL,
        passed INTEGER NOT NULL,
        overridden INTEGER NOT NULL DEFAULT 0,
        problems TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE validation_points (
        validation_id INTEGER NOT NULL REFERENCES validation_quality(id),
        point_index INTEGER NOT NULL,
        target_x REAL NOT NULL, target_y REAL NOT NULL,
        offset_x REAL, offset_y REAL,
        accuracy_deg REAL, rms_s2s_deg REAL, std_deg REAL,
        n_samples INTEGER NOT NULL, n_expected INTEGER NOT NULL, loss_pct REAL,
        PRIMARY KEY (validation_id, point_index)
    );
    CREATE TABLE trial_quality (
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        trial_index INTEGER NOT NULL,
        duration_s REAL NOT NULL,
        n_samples INTEGER NOT NULL, n_expected INTEGER NOT NULL, loss_pct REAL,
        rms_s2s_deg REAL, std_deg REAL,
        PRIMARY KEY (session_id, trial_index)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Session leases are coordination between running processes, not recorded data: the
# table is created (if missing) at every open, outside the schema versions, so a store
# keeps its schema version and older gazelab versions still open it.
LEASES_TABLE = """
CREATE TABLE IF NOT EXISTS session_leases (
    session_id INTEGER PRIMARY KEY,
    token TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_utc TEXT NOT NULL,
    renewed_utc TEXT NOT NULL,
    renewed_epoch_s REAL NOT NULL
)
"""
NEW_STORE_WAIT_S = 2.0  # a store file this young may still be being created by its writer

VALIDATION_KINDS: tuple[str, ...] = ("calibration-validation", "periodic", "final")
"""When a validation ran: right after calibration, every N trials, or at the end."""

LEASE_STALE_S = 30.0  # a lease not renewed for this long may be taken over
LEASE_RENEW_S = 5.0  # how often a running session renews its lease


@dataclass(frozen=True)
class SessionRecord:
    id: int
    uuid: str
    participant: str
    created_utc: str
    software_version: str
    settings_toml: str
    seed: int
    image_source: str
    stimulus_order: tuple[str, ...]
    start_local_s: float


@dataclass(frozen=True)
class LabelRecord:
    trial_index: int
    local_s: float
    label: str
    text: str
    confidence: float
    source: str


@dataclass(frozen=True)
class SessionLease:
    """A running session's claim on its session id (see the module docstring)."""

    session_id: int
    token: str  # unique per claim: two claims of one process are different holders
    host: str
    pid: int
    acquired_utc: str


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SessionStore:
    """A project's SQLite store. Thread-safe; several processes may share one file."""

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

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- participants and sessions ----------------------------------------------------------
    def participant_id(self, pseudonym: str) -> int:
        """Id of a participant, created on first use. Pseudonyms only: no names, no e-mail."""
        pseudonym = pseudonym.strip()
        if not pseudonym or "@" in pseudonym or len(pseudonym) > 64:
            raise StoreError(
                f"participant pseudonym {pseudonym!r} is not allowed: use a short code "
                "such as 'P01' (no names or e-mail addresses)"
            )
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO participants(pseudonym, created_utc) VALUES (?, ?)",
                (pseudonym, _utc_now()),
            )
            return int(
                db.execute(
                    "SELECT id FROM participants WHERE pseudonym = ?", (pseudonym,)
                ).fetchone()[0]
            )

    def create_session(
        self,
        participant: str,
        *,
        settings_toml: str,
        seed: int,
        image_source: str,
        stimulus_order: Sequence[str],
        start_local_s: float,
    ) -> SessionRecord:
        pid = self.participant_id(participant)
        sid_uuid = str(uuid.uuid4())
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO sessions(uuid, participant_id, created_utc, software_version,"
                " settings_toml, seed, image_source, stimulus_order, start_local_s)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid_uuid,
                    pid,
                    _utc_now(),
                    __version__,
                    settings_toml,
                    int(seed),
                    image_source,
                    json.dumps(list(stimulus_order)),
                    float(start_local_s),
                ),
            )
            session_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO trials(session_id, trial_index, image_id) VALUES (?, ?, ?)",
                [(session_id, i, image_id) for i, image_id in enumerate(stimulus_order)],
            )
        return self.session(session_id)

    def session(self, session_id: int) -> SessionRecord:
        rows = self._query(
            "SELECT s.id, s.uuid, p.pseudonym, s.created_utc, s.software_version, s.settings_toml,"
            " s.seed, s.image_source, s.stimulus_order, s.start_local_s"
            " FROM sessions s JOIN participants p ON p.id = s.participant_id WHERE s.id = ?",
            (session_id,),
        )
        if not rows:
            known = [r[0] for r in self._query("SELECT id FROM sessions ORDER BY id")]
            raise StoreError(f"no session {session_id} in {self.path}; sessions here: {known}")
        r = rows[0]
        return SessionRecord(
            id=r[0],
            uuid=r[1],
            participant=r[2],
            created_utc=r[3],
            software_version=r[4],
            settings_toml=r[5],
            seed=r[6],
            image_source=r[7],
            stimulus_order=tuple(self._json(r[8], f"the image order of session {r[0]}")),
            start_local_s=r[9],
        )

    def sessions(self, participant: str | None = None) -> list[SessionRecord]:
        if participant is None:
            ids = self._query("SELECT id FROM sessions ORDER BY id")
        else:
            ids = self._query(
                "SELECT s.id FROM sessions s JOIN participants p ON p.id = s.participant_id"
                " WHERE p.pseudonym = ? ORDER BY s.id",
                (participant,),
            )
        return [self.session(r[0]) for r in ids]

    # -- calibration ------------------------------------------------------------------------
    def add_calibration(
        self, session_id: int, result: CalibrationResult, *, kind: str, local_s: float
    ) -> None:
        if kind not in ("calibration", "validation"):
            raise ValueError(f"calibration kind {kind!r} must be 'calibration' or 'validation'")
        points = [astuple(p) for p in result.points]
        with self._write() as db:
            db.execute(
                "INSERT INTO calibrations(session_id, local_s, kind, result, deg, degl, degr, points)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    local_s,
                    kind,
                    int(result.result),
                    result.deg,
                    result.degl,
                    result.degr,
                    json.dumps(points),
                ),
            )

    def calibrations(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT local_s, kind, result, deg, degl, degr, points FROM calibrations"
            " WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        keys = ("local_s", "kind", "result", "deg", "degl", "degr", "points")
        return [
            dict(zip(keys, r, strict=True))
            | {"points": self._json(r[6], f"a calibration of session {session_id}")}
            for r in rows
        ]

    # -- data quality (issue #18 item 5; definitions in gaze/quality.py) ----------------------
    def add_validation_quality(
        self,
        session_id: int,
        quality: ValidationQuality,
        *,
        kind: str,
        local_s: float,
        problems: Sequence[str] = (),
        overridden: bool = False,
    ) -> int:
        """Record one validation run (per target and summary); returns its id.

        ``kind`` is one of :data:`VALIDATION_KINDS`; ``problems`` the unmet thresholds
        (empty = passed); ``overridden`` that the experimenter started anyway.
        """
        if kind not in VALIDATION_KINDS:
            raise StoreError(f"validation kind {kind!r} must be one of {VALIDATION_KINDS}")
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO validation_quality(session_id, local_s, kind, mean_accuracy_deg,"
                " max_accuracy_deg, rms_s2s_deg, std_deg, loss_pct, passed, overridden, problems)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, float(local_s), kind, _num(quality.mean_accuracy_deg),
                 _num(quality.max_accuracy_deg), _num(quality.rms_s2s_deg),
                 _num(quality.std_deg), _num(quality.loss_pct), int(not problems),
                 int(overridden), json.dumps(list(problems))),
            )  # fmt: skip
            vid = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO validation_points(validation_id, point_index, target_x, target_y,"
                " offset_x, offset_y, accuracy_deg, rms_s2s_deg, std_deg, n_samples, n_expected,"
                " loss_pct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(vid, i, p.target_px[0], p.target_px[1], _num(p.offset_px[0]),
                  _num(p.offset_px[1]), _num(p.accuracy_deg), _num(p.rms_s2s_deg),
                  _num(p.std_deg), p.n_samples, p.n_expected, _num(p.loss_pct))
                 for i, p in enumerate(quality.points)],
            )  # fmt: skip
        return vid

    def validation_qualities(self, session_id: int) -> list[dict[str, Any]]:
        """The session's validation runs in order: ``local_s, kind, passed, overridden,
        problems`` and ``quality`` (a :class:`ValidationQuality`); NULLs read back as NaN."""
        rows = self._query(
            "SELECT id, local_s, kind, mean_accuracy_deg, max_accuracy_deg, rms_s2s_deg,"
            " std_deg, loss_pct, passed, overridden, problems FROM validation_quality"
            " WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        out: list[dict[str, Any]] = []
        for r in rows:
            pts = self._query(
                "SELECT target_x, target_y, offset_x, offset_y, accuracy_deg, rms_s2s_deg,"
                " std_deg, n_samples, loss_pct, n_expected FROM validation_points"
                " WHERE validation_id = ? ORDER BY point_index",
                (r[0],),
            )
            points = tuple(
                PointQuality((p[0], p[1]), (_nan(p[2]), _nan(p[3])), _nan(p[4]), _nan(p[5]),
                             _nan(p[6]), int(p[7]), _nan(p[8]), int(p[9]))
                for p in pts
            )  # fmt: skip
            quality = ValidationQuality(points, *(_nan(v) for v in r[3:8]))
            out.append(dict(
                local_s=r[1], kind=r[2], passed=bool(r[8]), overridden=bool(r[9]),
                problems=self._json(r[10], f"a validation of session {session_id}"),
                quality=quality,
            ))  # fmt: skip
        return out

    def set_trial_quality(self, session_id: int, qualities: Iterable[TrialQuality]) -> None:
        """Store (replacing earlier values) the per-trial data quality of a session."""
        rows = [(session_id, q.trial_index, q.duration_s, q.n_samples, q.n_expected,
                 _num(q.loss_pct), _num(q.rms_s2s_deg), _num(q.std_deg)) for q in qualities]  # fmt: skip
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO trial_quality(session_id, trial_index, duration_s,"
                " n_samples, n_expected, loss_pct, rms_s2s_deg, std_deg)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def trial_quality(self, session_id: int) -> list[TrialQuality]:
        """The stored per-trial data quality, by trial index (empty until computed)."""
        rows = self._query(
            "SELECT trial_index, duration_s, n_samples, n_expected, loss_pct, rms_s2s_deg,"
            " std_deg FROM trial_quality WHERE session_id = ? ORDER BY trial_index",
            (session_id,),
        )
        return [TrialQuality(int(r[0]), float(r[1]), int(r[2]), int(r[3]), _nan(r[4]),
                             _nan(r[5]), _nan(r[6])) for r in rows]  # fmt: skip

    # -- trials, events, labels ---------------------------------------------------------------
    def set_trial_onset(
        self, session_id: int, trial_index: int, onset_local_s: float, onset_error_ms: float
    ) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE trials SET onset_local_s = ?, onset_error_ms = ?"
                " WHERE session_id = ? AND trial_index = ?",
                (onset_local_s, onset_error_ms, session_id, trial_index),
            )

    def trials(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT trial_index, image_id, onset_local_s, onset_error_ms FROM trials"
            " WHERE session_id = ? ORDER BY trial_index",
            (session_id,),
        )
        return [
            dict(trial_index=r[0], image_id=r[1], onset_local_s=r[2], onset_error_ms=r[3])
            for r in rows
        ]

    def add_event(
        self,
        session_id: int,
        kind: str,
        local_s: float,
        *,
        trial_index: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO events(session_id, trial_index, local_s, kind, payload)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, trial_index, local_s, kind, json.dumps(payload or {})),
            )

    def events(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT local_s, trial_index, kind, payload FROM events"
            " WHERE session_id = ? ORDER BY local_s, id",
            (session_id,),
        )
        return [
            dict(
                local_s=r[0],
                trial_index=r[1],
                kind=r[2],
                payload=self._json(r[3], f"a {r[2]!r} event of session {session_id}"),
            )
            for r in rows
        ]

    def add_label(
        self,
        session_id: int,
        trial_index: int,
        label: str,
        *,
        local_s: float,
        text: str = "",
        confidence: float = 1.0,
        source: str = "key",
        audio_path: str | Path | None = None,
    ) -> int:
        """Record a label (the last one of a trial counts; earlier ones stay as history)."""
        if label not in CLASSES:
            raise StoreError(f"label {label!r} is not one of the classes {CLASSES}")
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO labels(session_id, trial_index, local_s, label, text, confidence, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, trial_index, local_s, label, text, confidence, source),
            )
            label_id = int(cur.lastrowid or 0)
            if audio_path is not None:
                db.execute(
                    "INSERT INTO audio(session_id, trial_index, local_s, path, sha1, label_id)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        trial_index,
                        local_s,
                        str(audio_path),
                        _sha1(audio_path),
                        label_id,
                    ),
                )
        return label_id

    def labels(self, session_id: int) -> list[LabelRecord]:
        rows = self._query(
            "SELECT trial_index, local_s, label, text, confidence, source FROM labels"
            " WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [LabelRecord(*r) for r in rows]

    def final_labels(self, session_id: int) -> dict[int, str]:
        """Trial index -> the last label given for it."""
        return {rec.trial_index: rec.label for rec in self.labels(session_id)}

    def first_unlabelled_trial(self, session_id: int) -> int | None:
        """Where a resumed session continues; ``None`` when every trial is labelled."""
        rows = self._query(
            "SELECT MIN(t.trial_index) FROM trials t WHERE t.session_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM labels l WHERE l.session_id = t.session_id"
            "  AND l.trial_index = t.trial_index)",
            (session_id,),
        )
        return None if rows[0][0] is None else int(rows[0][0])

    def audio(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT trial_index, local_s, path, sha1, label_id FROM audio WHERE session_id = ?"
            " ORDER BY id",
            (session_id,),
        )
        keys = ("trial_index", "local_s", "path", "sha1", "label_id")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -- gaze samples and gaps -------------------------------------------------------------
    def add_samples(
        self,
        session_id: int,
        samples: Iterable[GazeSample],
        *,
        trial_index: int | None = None,
        phase: str | None = None,
    ) -> int:
        """Insert a batch of samples in one transaction; returns how many."""
        return self.add_tagged_samples(session_id, [(s, trial_index, phase) for s in samples])

    def add_tagged_samples(
        self, session_id: int, batch: Sequence[tuple[GazeSample, int | None, str | None]]
    ) -> int:
        """Insert samples each with its own (trial, phase) tag, in one transaction."""
        rows = [(session_id, t, ph, *astuple(s)) for s, t, ph in batch]
        if not rows:
            return 0
        marks = ", ".join("?" * (3 + len(SAMPLE_FIELDS)))
        with self._write() as db:
            db.executemany(
                f"INSERT INTO gaze_samples(session_id, trial_index, phase, {', '.join(SAMPLE_FIELDS)})"
                f" VALUES ({marks})",
                rows,
            )
        return len(rows)

    def sample_count(self, session_id: int) -> int:
        return int(
            self._query("SELECT COUNT(*) FROM gaze_samples WHERE session_id = ?", (session_id,))[0][
                0
            ]
        )

    def samples(
        self,
        session_id: int,
        trial_index: int | None = None,
        *,
        since_local_s: float | None = None,
        phase: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Samples as columns (tidy table): ``trial_index``, ``phase`` and every sample field.

        ``since_local_s`` keeps only samples recorded at or after that local time;
        ``phase`` only those of one phase (``"image"``...). One trial's samples come
        through the ``(session_id, trial_index, local_s)`` index; to read every trial of
        a session, :meth:`samples_by_trial` reads the session once.
        """
        cols = ("trial_index", "phase", *SAMPLE_FIELDS)
        sql = f"SELECT {', '.join(cols)} FROM gaze_samples WHERE session_id = ?"
        params: list[Any] = [session_id]
        if trial_index is not None:
            sql += " AND trial_index = ?"
            params.append(trial_index)
        if since_local_s is not None:
            sql += " AND local_s >= ?"
            params.append(since_local_s)
        if phase is not None:
            sql += " AND phase = ?"
            params.append(phase)
        rows = self._query(sql + " ORDER BY local_s, rowid", params)
        try:
            return _sample_table(cols, rows)
        except (TypeError, ValueError) as exc:  # text where a number belongs: edited outside
            raise StoreError(
                f"{self.path}: a gaze sample holds a value that is not a number "
                f"({str(exc)[:80]}); the store was changed outside gazelab: restore it from a backup"
            ) from None

    def samples_by_trial(
        self, session_id: int, *, phase: str | None = None
    ) -> dict[int, dict[str, np.ndarray]]:
        """Every trial's samples from one read of the session: trial index -> the table of
        :meth:`samples` (time order kept). Samples outside trials are left out."""
        table = self.samples(session_id, phase=phase)
        trial = table["trial_index"]
        if trial.size == 0:
            return {}
        order = np.argsort(trial, kind="stable")
        sorted_trials = trial[order]
        starts = np.flatnonzero(np.r_[True, sorted_trials[1:] != sorted_trials[:-1]])
        ends = np.r_[starts[1:], sorted_trials.size]
        out: dict[int, dict[str, np.ndarray]] = {}
        for a, b in zip(starts, ends, strict=True):
            ti = int(sorted_trials[a])
            if ti < 0:
                continue
            rows = order[a:b]
            out[ti] = {k: v[rows] for k, v in table.items()}
        return out

    def add_gap(
        self, session_id: int, start_local_s: float, end_local_s: float | None, reason: str
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO recording_gaps(session_id, start_local_s, end_local_s, reason)"
                " VALUES (?, ?, ?, ?)",
                (session_id, start_local_s, end_local_s, reason),
            )

    INTERRUPTED = "interrupted-"
    """Prefix of the phase of samples of a viewing that a stop cut short (kept, not analysed)."""

    def mark_interrupted_viewing(self, session_id: int, trial_index: int) -> int:
        """The samples recorded so far for ``trial_index`` belong to a viewing that a stop
        cut short: their phase becomes ``interrupted-<phase>``, so the trial's re-shown
        viewing is analysed alone while these stay in the store. Returns how many."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE gaze_samples SET phase = ? || phase WHERE session_id = ?"
                " AND trial_index = ? AND phase NOT LIKE ?",
                (self.INTERRUPTED, session_id, trial_index, self.INTERRUPTED + "%"),
            )
            return int(cur.rowcount)

    def last_recorded_s(self, session_id: int) -> float | None:
        """Local time of the session's last stored sample or event (``None``: nothing yet)."""
        rows = self._query(
            "SELECT MAX(t) FROM (SELECT MAX(local_s) AS t FROM gaze_samples WHERE session_id = ?"
            " UNION ALL SELECT MAX(local_s) FROM events WHERE session_id = ?)",
            (session_id, session_id),
        )
        return None if rows[0][0] is None else float(rows[0][0])

    def gaps(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT start_local_s, end_local_s, reason FROM recording_gaps WHERE session_id = ?"
            " ORDER BY id",
            (session_id,),
        )
        return [dict(start_local_s=r[0], end_local_s=r[1], reason=r[2]) for r in rows]

    # -- session leases ------------------------------------------------------------------------
    def acquire_lease(
        self, session_id: int, *, stale_after_s: float = LEASE_STALE_S
    ) -> SessionLease:
        """Claim ``session_id`` for this process; refused while another live holder has it.

        A lease is stale, and taken over (recorded as a ``lease_takeover`` event), when
        its holder's pid is gone on this host or it was not renewed for ``stale_after_s``.
        """
        self.session(session_id)  # an unknown session: its own clear error
        host, pid = socket.gethostname(), os.getpid()
        lease = SessionLease(session_id, uuid.uuid4().hex, host, pid, _utc_now())
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT host, pid, acquired_utc, renewed_utc, renewed_epoch_s FROM session_leases"
                " WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            if row is not None:
                h, p, acquired, renewed, renewed_s = row
                dead = h == host and not pid_alive(int(p))
                silent = now - float(renewed_s) > stale_after_s
                if not (dead or silent):
                    raise StoreError(
                        f"session {session_id} in {self.path} is already running: process {p}"
                        f" on {h} has held it since {acquired} (renewed {renewed}); close that"
                        " session first — a crashed one is released when its process is gone"
                        f" or after {stale_after_s:.0f} s without renewal — then resume again"
                    )
                db.execute(
                    "INSERT INTO events(session_id, trial_index, local_s, kind, payload)"
                    " VALUES (?, NULL, ?, 'lease_takeover', ?)",
                    (
                        session_id,
                        time.monotonic(),
                        json.dumps({"host": h, "pid": p, "acquired_utc": acquired,
                                    "renewed_utc": renewed,
                                    "why": "holder gone" if dead else "not renewed"}),
                    ),
                )  # fmt: skip
            db.execute(
                "INSERT OR REPLACE INTO session_leases(session_id, token, host, pid,"
                " acquired_utc, renewed_utc, renewed_epoch_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, lease.token, host, pid, lease.acquired_utc, lease.acquired_utc, now),
            )
        return lease

    def renew_lease(self, lease: SessionLease) -> None:
        """Mark the lease alive; a lease taken over by another process is a StoreError."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE session_leases SET renewed_utc = ?, renewed_epoch_s = ?"
                " WHERE session_id = ? AND token = ?",
                (_utc_now(), time.time(), lease.session_id, lease.token),
            )
            if cur.rowcount == 0:
                holder = self.lease_holder(lease.session_id)
                raise LeaseLostError(
                    f"session {lease.session_id} in {self.path} was taken over by "
                    f"{'another process' if holder is None else _holder_text(holder)} while"
                    " this one was not renewing its lease; this window stops recording"
                )

    def release_lease(self, lease: SessionLease) -> None:
        """Give the session up (at the end of a run); a lease already taken over stays."""
        with self._write() as db:
            db.execute(
                "DELETE FROM session_leases WHERE session_id = ? AND token = ?",
                (lease.session_id, lease.token),
            )

    def lease_holder(self, session_id: int) -> dict[str, Any] | None:
        """Who holds ``session_id`` (host, pid, acquired_utc, renewed_utc), or ``None``."""
        rows = self._query(
            "SELECT host, pid, acquired_utc, renewed_utc FROM session_leases WHERE session_id = ?",
            (session_id,),
        )
        if not rows:
            return None
        return dict(zip(("host", "pid", "acquired_utc", "renewed_utc"), rows[0], strict=True))


def _sample_table(cols: Sequence[str], rows: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    table: dict[str, np.ndarray] = {}
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    for name, values in zip(cols, columns, strict=True):
        if name == "phase":
            table[name] = np.array(values, dtype=object)
        elif name in ("fix", "valid"):
            table[name] = np.array(values, dtype=bool)
        elif name in ("state",):
            table[name] = np.array(values, dtype=np.int64)
        elif name == "trial_index":
            table[name] = np.array([-1 if v is None else v for v in values], dtype=np.int64)
        else:
            table[name] = np.array(values, dtype=np.float64)
    return table


def _num(value: float) -> float | None:
    """A float for SQLite: NaN (no data) is stored as NULL."""
    v = float(value)
    return v if np.isfinite(v) else None


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _holder_text(holder: dict[str, Any]) -> str:
    return f"process {holder['pid']} on {holder['host']} (since {holder['acquired_utc']})"


def _sha1(path: str | Path) -> str:
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise StoreError(f"audio file {path} cannot be read ({exc.strerror})") from exc


class BatchedSampleWriter:
    """Buffers tagged samples and commits them at least every ``batch_ms`` (SPEC §2).

    Call :meth:`add` as samples arrive and :meth:`poll` often (a GUI timer);
    :meth:`flush` commits whatever is pending. A crash loses at most the samples
    of the current batch.
    """

    def __init__(
        self,
        store: SessionStore,
        session_id: int,
        *,
        batch_ms: float = 100.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.batch_s = batch_ms / 1000.0
        self.clock = clock
        self._pending: list[tuple[GazeSample, int | None, str | None]] = []
        self._last_flush = clock()
        self._retry_at: float | None = None  # after a failed flush: not before this
        self.retry_s = 1.0
        self.written = 0

    @property
    def pending(self) -> int:
        """Samples received but not yet committed (kept in memory across store faults)."""
        return len(self._pending)

    def add(
        self, samples: Iterable[GazeSample], trial_index: int | None, phase: str | None
    ) -> None:
        self._pending.extend((s, trial_index, phase) for s in samples)
        self.poll()

    def add_tagged(self, batch: Iterable[tuple[GazeSample, int | None, str | None]]) -> None:
        """Samples each with its own (trial, phase) tag."""
        self._pending.extend(batch)
        self.poll()

    def poll(self) -> None:
        now = self.clock()
        if self._retry_at is not None and now < self._retry_at:
            return  # the store failed: retry once a second, not on every poll
        if self._pending and now - self._last_flush >= self.batch_s:
            self.flush()

    def flush(self) -> None:
        """Commit every pending sample; on failure they stay pending (and it raises)."""
        batch, self._pending = self._pending, []
        try:
            self.written += self.store.add_tagged_samples(self.session_id, batch)
        except BaseException:
            self._pending = batch + self._pending  # keep them for the next try
            self._retry_at = self.clock() + self.retry_s
            raise
        self._retry_at = None
        self._last_flush = self.clock()
