"""Labels (the answer given for each trial) and the answers' audio files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from gazelab import CLASSES
from gazelab.annotation.store.connection import StoreConnection, StoreError
from gazelab.annotation.store.records import LabelRecord


class LabelsMixin(StoreConnection):
    """Labels of a session's trials (the last one of a trial counts) and their audio."""

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


def _sha1(path: str | Path) -> str:
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise StoreError(f"audio file {path} cannot be read ({exc.strerror})") from exc
