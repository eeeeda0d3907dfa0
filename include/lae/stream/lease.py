"""At most one running streaming job: lae.archive's Cassandra lease, keyed by the job.

The archive's lease (``lae.archive.lease.CassandraLease``: an LWT-inserted row with a TTL, so a
dead holder cannot keep it) is reused as it is, on its own table: the key is
(``stream:<job>``, 0) instead of (topic, partition) — no Kafka topic has that name, so it never
collides with an archive writer. The supervisor takes the lease *before* it spawns the job and
hands the owner id to the job, which keeps renewing it; a second supervisor run finds it held
and starts nothing.

The one addition is ``take_over``: when the supervisor has proof that the holder is dead (its
local pid is gone) it need not wait for the TTL; the LWT's ``IF owner = <dead owner>`` makes
two supervisors racing for the same dead lease agree on one winner.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lae.archive.lease import CassandraLease, LeaseHeldError, LeaseLostError, default_owner

__all__ = ["LeaseHeldError", "LeaseLostError", "StreamLease", "default_owner"]


class StreamLease(CassandraLease):
    def __init__(self, session, keyspace: str, job: str, ttl_s: int, owner: str | None = None):
        super().__init__(session, keyspace, topic=f"stream:{job}", partition=0, ttl_s=ttl_s,
                         owner=owner)

    def take_over(self, dead_owner: str) -> bool:
        """Replace a holder known to be dead by ourselves; False if anyone else holds it now."""
        row = self._lwt(
            f"UPDATE {self.table} USING TTL ? SET owner = ?, acquired_at = ? "  # noqa: S608 - keyspace name
            "WHERE topic = ? AND partition = ? IF owner = ?",
            (self.ttl_s, self.owner, datetime.now(UTC), *self.key, dead_owner))
        return bool(row.applied)
