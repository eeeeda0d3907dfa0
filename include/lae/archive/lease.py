"""One writer per partition: a lease row in Cassandra, taken and kept with LWTs and a TTL.

Why Cassandra and not an S3 lease object: a lease needs compare-and-set. Cassandra's
lightweight transactions (Paxos) give it on every deployment LAE targets, and ``USING TTL``
makes a crashed holder's lease disappear on its own. Conditional S3 writes (``If-None-Match``)
exist on AWS since 2024 but not on every S3-compatible store, and an S3 object has no expiry
that a reader can trust without a clock comparison of its own.

The lease is a guard against wasted and racing work, not the only line of defence: because a
plan's files are a pure function of the stored plan, two writers that did overlap would write
the same keys with the same bytes and commit the same offset.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime

DEFAULT_TTL_S = 600


class LeaseHeldError(RuntimeError):
    """Another writer holds the partition's lease."""


class LeaseLostError(RuntimeError):
    """Our lease expired or was taken over; we must not commit."""


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class CassandraLease:
    def __init__(self, session, keyspace: str, topic: str, partition: int,
                 ttl_s: int = DEFAULT_TTL_S, owner: str | None = None):
        self.session = session
        self.table = f"{keyspace}.archive_lease"
        self.key = (topic, partition)
        self.ttl_s = int(ttl_s)
        self.owner = owner or default_owner()
        self._renewed_at = float("-inf")  # monotonic time of the last acquire/renew
        self._prepared: dict[str, object] = {}

    def _prepare(self, cql: str, lwt: bool = False):
        """Prepared once per lease: a PREPARE is a round trip of its own, and keep_alive loops."""
        stmt = self._prepared.get(cql)
        if stmt is None:
            stmt = self._prepared[cql] = self.session.prepare(cql)
            if lwt:
                from cassandra import ConsistencyLevel

                stmt.consistency_level = ConsistencyLevel.QUORUM
                stmt.serial_consistency_level = ConsistencyLevel.SERIAL
        return stmt

    def _lwt(self, cql: str, params: tuple):
        return self.session.execute(self._prepare(cql, lwt=True), params).one()

    def holder(self) -> str | None:
        stmt = self._prepare(
            f"SELECT owner FROM {self.table} WHERE topic = ? AND partition = ?")  # noqa: S608 - keyspace name
        row = self.session.execute(stmt, self.key).one()
        return None if row is None else row.owner

    def acquire(self) -> None:
        started = time.monotonic()
        row = self._lwt(
            f"INSERT INTO {self.table} (topic, partition, owner, acquired_at) "  # noqa: S608 - keyspace name
            "VALUES (?, ?, ?, ?) IF NOT EXISTS USING TTL ?",
            (*self.key, self.owner, datetime.now(UTC), self.ttl_s))
        if not row.applied and row.owner != self.owner:
            raise LeaseHeldError(f"{self.key[0]}/{self.key[1]}: lease held by {row.owner} "
                                 f"(expires within {self.ttl_s}s of its last renewal)")
        self._renewed_at = started

    def renew(self) -> None:
        """Extend the TTL; raises ``LeaseLostError`` if we no longer hold the lease."""
        started = time.monotonic()
        row = self._lwt(
            f"UPDATE {self.table} USING TTL ? SET owner = ?, acquired_at = ? "  # noqa: S608 - keyspace name
            "WHERE topic = ? AND partition = ? IF owner = ?",
            (self.ttl_s, self.owner, datetime.now(UTC), *self.key, self.owner))
        if not row.applied:
            raise LeaseLostError(f"{self.key[0]}/{self.key[1]}: lease lost (now held by "
                                 f"{getattr(row, 'owner', None)})")
        self._renewed_at = started

    def keep_alive(self, fraction: float = 0.2) -> None:
        """``renew`` once ``fraction`` of the TTL has passed since the last renewal.

        For loops (one call per uploaded file): a Paxos round per file costs more than the
        upload of a small file, and a lease with most of its TTL left needs no renewal. The
        fencing renewal before a commit stays ``renew``.
        """
        if time.monotonic() - self._renewed_at >= fraction * self.ttl_s:
            self.renew()

    def release(self) -> None:
        self._lwt(f"DELETE FROM {self.table} WHERE topic = ? AND partition = ? "  # noqa: S608 - keyspace name
                  "IF owner = ?", (*self.key, self.owner))
