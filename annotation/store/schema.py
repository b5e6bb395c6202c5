"""The store's schema: the tables, their migrations and the schema version.

The schema version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` are applied
in order (by :meth:`StoreConnection._migrate <gazelab.annotation.store.connection.StoreConnection._migrate>`),
so an old store opens with its data intact. To change the schema, append a migration:
never edit one that has shipped.
"""

from __future__ import annotations

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
    # v3: data quality and a per-trial sample index (without it, reading
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
