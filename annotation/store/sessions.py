"""Participants, sessions and what a session is made of: calibrations, trials, events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import astuple
from typing import Any

from gazelab import __version__
from gazelab.annotation.store.connection import StoreConnection, StoreError, _utc_now
from gazelab.annotation.store.records import SessionRecord
from gazelab.gaze.trackers.base import CalibrationResult


class SessionsMixin(StoreConnection):
    """Participants (pseudonyms only), sessions, calibrations, trials and events."""

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

    # -- trials and events ----------------------------------------------------------------
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
