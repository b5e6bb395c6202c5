"""Session leases: one running process per session.

A live session holds a *lease* on its session (:meth:`LeasesMixin.acquire_lease`):
one row naming the holder (host, pid) that the holder renews while it runs and
deletes at the end, so the same session cannot be run twice at once (docs/running-a-session.md#the-protocol:
"two sessions of one never overwrite each other"). A lease whose holder died
(its pid is gone on this host) or stopped renewing it for :data:`LEASE_STALE_S`
may be taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from gazelab.annotation.store.connection import StoreError, _utc_now
from gazelab.annotation.store.sessions import SessionsMixin
from gazelab.fileio import pid_alive

LEASE_STALE_S = 30.0  # a lease not renewed for this long may be taken over
LEASE_RENEW_S = 5.0  # how often a running session renews its lease


class LeaseLostError(StoreError):
    """Another process took over a session this one was running (its lease went stale)."""


@dataclass(frozen=True)
class SessionLease:
    """A running session's claim on its session id (see this module's docstring)."""

    session_id: int
    token: str  # unique per claim: two claims of one process are different holders
    host: str
    pid: int
    acquired_utc: str


class LeasesMixin(SessionsMixin):
    """Acquire, renew and release a session's lease (a lease is on a recorded session)."""

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


def _holder_text(holder: dict[str, Any]) -> str:
    return f"process {holder['pid']} on {holder['host']} (since {holder['acquired_utc']})"
