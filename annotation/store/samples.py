"""Gaze samples (one row each, tagged with trial and phase) and recording gaps."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import astuple
from typing import Any

import numpy as np

from gazelab.annotation.store.connection import StoreConnection, StoreError
from gazelab.gaze.trackers.base import SAMPLE_FIELDS, GazeSample

_INSERT_SAMPLES = (
    f"INSERT INTO gaze_samples(session_id, trial_index, phase, {', '.join(SAMPLE_FIELDS)})"
    f" VALUES ({', '.join('?' * (3 + len(SAMPLE_FIELDS)))})"
)
_READ_CHUNK = 65_536
"""Rows fetched from SQLite at a time when reading samples (bounded Python objects)."""
_BASE_PHASES = ("image", "blank1", "cross", "blank2", "trial", "idle", "paused", "done", "quit")
_KNOWN_PHASES: tuple[str, ...] = (*_BASE_PHASES, *(f"interrupted-{p}" for p in _BASE_PHASES))
"""Phases that samples are stored with (the protocol's, an import's ``trial``, and those
of an interrupted viewing), read back as numbers."""
_PHASE_CODE = (
    "CASE WHEN phase IS NULL THEN NULL ELSE CASE phase"
    + "".join(f" WHEN '{p}' THEN {k}" for k, p in enumerate(_KNOWN_PHASES))
    + " ELSE -1 END END"
)


def _column_insert(
    session_id: int, columns: Sequence[Sequence[Any] | None]
) -> tuple[str, list[Sequence[Any]]]:
    """The ``INSERT`` of :meth:`SamplesMixin.add_sample_columns` and the columns it binds
    after ``trial_index`` (``?1``) and ``phase`` (``?2``): the session id written in, a
    ``None`` column as ``NULL``, a column object given again as its first parameter."""
    bound: list[Sequence[Any]] = []
    slot: dict[int, int] = {}  # id of a column object -> its parameter number
    values: list[str] = [str(session_id), "?1", "?2"]
    for c in columns:
        if c is None:
            values.append("NULL")
            continue
        k = slot.get(id(c))
        if k is None:
            bound.append(c)
            k = slot[id(c)] = len(bound) + 2
        values.append(f"?{k}")
    sql = (f"INSERT INTO gaze_samples(session_id, trial_index, phase, {', '.join(SAMPLE_FIELDS)})"
           f" VALUES ({', '.join(values)})")  # fmt: skip
    return sql, bound


class SamplesMixin(StoreConnection):
    """A session's gaze samples, read back as columns, and its recording gaps."""

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
        self._insert_samples(rows)
        return len(rows)

    def _insert_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        """One ``executemany`` of ``(session_id, trial_index, phase, *SAMPLE_FIELDS)`` rows
        in one write transaction."""
        with self._write() as db:
            db.executemany(_INSERT_SAMPLES, rows)

    def add_sample_rows(self, session_id: int, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert samples given as plain tuples ``(trial_index, phase, *SAMPLE_FIELDS)``
        in one transaction; returns how many. The same rows as :meth:`add_tagged_samples`
        without a :class:`GazeSample` per sample (importers hand over millions)."""
        if not rows:
            return 0
        width = 2 + len(SAMPLE_FIELDS)
        bad = next((r for r in rows if len(r) != width), None)
        if bad is not None:
            raise StoreError(f"a sample row has {len(bad)} values, not {width} "
                             "(trial_index, phase and the sample fields)")  # fmt: skip
        self._insert_samples((session_id, *r) for r in rows)
        return len(rows)

    def add_sample_columns(
        self,
        session_id: int,
        trial_index: Sequence[int | None],
        phase: Sequence[str | None],
        columns: Sequence[Sequence[Any] | None],
    ) -> int:
        """Insert samples given as columns, in one transaction; returns how many.

        ``trial_index`` and ``phase`` are ``(N,)``; ``columns`` holds one ``(N,)`` sequence
        of plain Python values per field of ``SAMPLE_FIELDS``, in that order, or ``None``
        for a field that is NULL in every row. The same rows as :meth:`add_sample_rows`
        without building a tuple per sample first.

        Each row's values are bound one by one by the ``sqlite3`` module, the larger part
        of an insert's time, so fewer are bound: a ``None`` column is a ``NULL`` in the
        statement, and one sequence object given for several fields is bound once per row
        (a numbered parameter). Plain ``int``, ``float`` and ``str`` values bind fastest
        (a ``bool`` or ``None`` value goes through the module's adapter lookup first).
        """
        n = len(trial_index)
        if len(columns) != len(SAMPLE_FIELDS):
            raise StoreError(f"{len(columns)} sample columns, not {len(SAMPLE_FIELDS)} "
                             "(one per sample field)")  # fmt: skip
        if any(len(c) != n for c in (phase, *columns) if c is not None):
            raise StoreError(f"sample columns of different lengths (trial_index has {n})")
        if not n:
            return 0
        sql, bound = _column_insert(int(session_id), columns)
        with self._write() as db:
            db.executemany(sql, zip(trial_index, phase, *bound, strict=True))
        return n

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
        fields: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Samples as columns (tidy table): ``trial_index``, ``phase`` and every sample field
        (or only ``fields``, a subset of :data:`SAMPLE_FIELDS`: a study's analysis reads 7
        of the 19, at about half the time).

        ``since_local_s`` keeps only samples recorded at or after that local time;
        ``phase`` only those of one phase (``"image"``...). One trial's samples come
        through the ``(session_id, trial_index, local_s)`` index; to read every trial of
        a session, :meth:`samples_by_trial` reads the session once.
        """
        where = "session_id = ?"
        params: list[Any] = [session_id]
        if trial_index is not None:
            where += " AND trial_index = ?"
            params.append(trial_index)
        if since_local_s is not None:
            where += " AND local_s >= ?"
            params.append(since_local_s)
        if phase is not None:
            where += " AND phase = ?"
            params.append(phase)
        names = tuple(SAMPLE_FIELDS if fields is None else fields)
        unknown = [f for f in names if f not in SAMPLE_FIELDS]
        if unknown:
            raise ValueError(f"not sample fields: {unknown}; the fields are {SAMPLE_FIELDS}")
        try:
            return self._sample_columns(where, params, names, phase)
        except (TypeError, ValueError) as exc:  # text where a number belongs: edited outside
            raise StoreError(
                f"{self.path}: a gaze sample holds a value that is not a number "
                f"({str(exc)[:80]}); the store was changed outside gazelab: restore it from a backup"
            ) from None

    def _sample_columns(
        self,
        where: str,
        params: Sequence[Any],
        fields: Sequence[str] = SAMPLE_FIELDS,
        phase: str | None = None,
    ) -> dict[str, np.ndarray]:
        """The table of :meth:`samples` for the rows matching ``where``, read column-wise.

        The phase (text) comes back as its number in :data:`_KNOWN_PHASES` (NULL: NULL,
        another text: -1, then the phases are read as text in a query of their own), so
        that every selected value is a number: each chunk of rows becomes one ``(rows,
        columns)`` float array in one numpy call (NULL -> NaN) instead of one Python list
        per column. Floats are read as stored (bit for bit); the integer and boolean
        columns are exact below 2**53. When ``where`` keeps one ``phase`` only, the phase is
        not read at all (every row's is that text): one value a row fewer to fetch.
        """
        # the phase code first, unless one phase is asked for
        head = "" if phase is not None else f"{_PHASE_CODE}, "
        sql = (f"SELECT {head}trial_index, {', '.join(fields)} FROM gaze_samples"
               f" WHERE {where} ORDER BY local_s, rowid")  # fmt: skip
        first = 0 if phase is not None else 1  # the column of trial_index
        width = first + 1 + len(fields)
        chunks: list[np.ndarray] = []
        with self._lock:
            try:
                cur = self._db.execute(sql, params)
                while rows := cur.fetchmany(_READ_CHUNK):
                    chunks.append(np.array(rows, dtype=np.float64).reshape(-1, width))
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
        data = np.concatenate(chunks) if len(chunks) > 1 else (
            chunks[0] if chunks else np.zeros((0, width)))  # fmt: skip
        columns = np.ascontiguousarray(data.T)  # one contiguous row per column
        if phase is not None:  # the filter's phase, in every row
            phases = np.empty(columns.shape[1], dtype=object)
            phases[:] = phase
        elif (columns[0] < 0).any():  # a phase gazelab does not write: the store was edited
            phases = np.empty(columns.shape[1], dtype=object)
            phases[:] = [r[0] for r in self._query(
                f"SELECT phase FROM gaze_samples WHERE {where} ORDER BY local_s, rowid", params)]  # fmt: skip
        else:
            code = columns[0]
            n = len(_KNOWN_PHASES)
            lookup = np.empty(n + 1, dtype=object)
            lookup[:n] = _KNOWN_PHASES
            lookup[n] = None
            phases = lookup[np.where(np.isnan(code), n, code).astype(np.intp)]
        trial = columns[first]
        table: dict[str, np.ndarray] = {
            "trial_index": np.where(np.isnan(trial), -1, trial).astype(np.int64),
            "phase": phases,
        }
        for j, name in enumerate(fields, start=first + 1):
            col = columns[j]
            if name in ("fix", "valid"):
                table[name] = (col != 0) & ~np.isnan(col)  # NULL reads as False
            elif name == "state":
                if np.isnan(col).any():
                    raise TypeError("a sample's state is NULL")
                table[name] = col.astype(np.int64)
            else:
                table[name] = col
        return table

    def samples_by_trial(
        self, session_id: int, *, phase: str | None = None, fields: Sequence[str] | None = None
    ) -> dict[int, dict[str, np.ndarray]]:
        """Every trial's samples from one read of the session: trial index -> the table of
        :meth:`samples` (time order kept; ``fields`` as there). Samples outside trials are
        left out."""
        table = self.samples(session_id, phase=phase, fields=fields)
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
