"""The project store: one SQLite database (WAL mode) per project
(docs/running-a-session.md#the-protocol, docs/architecture.md#rules-of-the-house).

Holds participants (pseudonymous ids only), sessions (settings snapshot, seed,
stimulus order, software version), calibrations, trials, gaze samples, events,
labels, audio references and recording gaps. Everything is committed as it
arrives, so a crash loses at most the last sample batch (≤ 100 ms, see
:class:`BatchedSampleWriter`). Several processes (two annotators) can write to
one store at once: writes take ``BEGIN IMMEDIATE`` with a generous busy
timeout, and every row is keyed by its own session.

The schema version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` are
applied in order, so an old store opens with its data intact. A live session
holds a lease on its session, so that it cannot be run twice at once (see
:mod:`gazelab.annotation.store.leases`).

Only ``gazelab annotate`` (and the demo, the simulated runner, tests) create a
store (``create=True``); every other command refuses a missing file, so a
mistyped ``--store`` is an error instead of a new, empty store. SQLite faults
(a damaged file, a full disk, a lock held too long) and unreadable JSON in a
stored session surface as :class:`StoreError` naming the file and what to do.

The package holds one concept per module: :mod:`.schema` (tables, migrations,
version), :mod:`.connection` (opening, transactions, errors), :mod:`.sessions`
(participants, sessions, calibrations, trials, events), :mod:`.samples` (gaze
samples and gaps), :mod:`.labels` (labels and audio), :mod:`.quality` (validation
and trial quality), :mod:`.leases` and :mod:`.writer` (the batching writer);
:class:`SessionStore` combines the table mixins. Import from here:
``from gazelab.annotation.store import SessionStore``.
"""

from __future__ import annotations

from gazelab.annotation.store.connection import (
    NEW_STORE_WAIT_S,
    StoreConnection,
    StoreError,
)
from gazelab.annotation.store.labels import LabelsMixin
from gazelab.annotation.store.leases import (
    LEASE_RENEW_S,
    LEASE_STALE_S,
    LeaseLostError,
    LeasesMixin,
    SessionLease,
)
from gazelab.annotation.store.quality import VALIDATION_KINDS, QualityMixin
from gazelab.annotation.store.records import LabelRecord, SessionRecord
from gazelab.annotation.store.samples import SamplesMixin
from gazelab.annotation.store.schema import LEASES_TABLE, MIGRATIONS, SCHEMA_VERSION
from gazelab.annotation.store.sessions import SessionsMixin
from gazelab.annotation.store.writer import BatchedSampleWriter

__all__ = [
    "LEASES_TABLE",
    "LEASE_RENEW_S",
    "LEASE_STALE_S",
    "MIGRATIONS",
    "NEW_STORE_WAIT_S",
    "SCHEMA_VERSION",
    "VALIDATION_KINDS",
    "BatchedSampleWriter",
    "LabelRecord",
    "LeaseLostError",
    "SessionLease",
    "SessionRecord",
    "SessionStore",
    "StoreConnection",
    "StoreError",
]


class SessionStore(LeasesMixin, SamplesMixin, LabelsMixin, QualityMixin, SessionsMixin):
    """A project's SQLite store. Thread-safe; several processes may share one file.

    Opened by :class:`~gazelab.annotation.store.connection.StoreConnection`; the
    methods of each table come from its mixin (sessions, samples, labels, quality,
    leases).
    """
