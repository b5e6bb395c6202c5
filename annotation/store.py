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
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gazelab import CLASSES, __version__
from gazelab.gaze.trackers.base import SAMPLE_FIELDS, CalibrationResult, GazeSample


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says what and how to fix it."""


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
)
SCHEMA_VERSION = len(MIGRATIONS)


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


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SessionStore:
    """A project's SQLite store. Thread-safe; several processes may share one file."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.audio_dir = self.path.with_suffix("").with_name(self.path.stem + "_audio")
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"store path {self.path} is a folder; give a .sqlite file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        self._migrate()

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

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
            stimulus_order=tuple(json.loads(r[8])),
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
        return [dict(zip(keys, r, strict=True)) | {"points": json.loads(r[6])} for r in rows]

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
            dict(local_s=r[0], trial_index=r[1], kind=r[2], payload=json.loads(r[3])) for r in rows
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
    ) -> dict[str, np.ndarray]:
        """Samples as columns (tidy table): ``trial_index``, ``phase`` and every sample field.

        ``since_local_s`` keeps only samples recorded at or after that local time.
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
        rows = self._query(sql + " ORDER BY local_s, rowid", params)
        table: dict[str, np.ndarray] = {}
        for i, name in enumerate(cols):
            values = [r[i] for r in rows]
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

    def add_gap(
        self, session_id: int, start_local_s: float, end_local_s: float | None, reason: str
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO recording_gaps(session_id, start_local_s, end_local_s, reason)"
                " VALUES (?, ?, ?, ?)",
                (session_id, start_local_s, end_local_s, reason),
            )

    def gaps(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT start_local_s, end_local_s, reason FROM recording_gaps WHERE session_id = ?"
            " ORDER BY id",
            (session_id,),
        )
        return [dict(start_local_s=r[0], end_local_s=r[1], reason=r[2]) for r in rows]


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
        self.written = 0

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
        if self._pending and self.clock() - self._last_flush >= self.batch_s:
            self.flush()

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            self.written += self.store.add_tagged_samples(self.session_id, batch)
        except BaseException:
            self._pending = batch + self._pending  # keep them for the next try
            raise
        self._last_flush = self.clock()
