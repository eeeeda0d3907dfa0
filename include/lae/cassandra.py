"""Cassandra sessions for LAE code: one place that knows how to reach the cluster."""

from __future__ import annotations

import logging

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    RetryPolicy,
    TokenAwarePolicy,
    WriteType,
)

from lae.config import Settings

# The driver logs every failed reconnect at WARNING; during start-up polling that is noise.
logging.getLogger("cassandra.cluster").setLevel(logging.ERROR)
logging.getLogger("cassandra.pool").setLevel(logging.ERROR)


class IdempotentWriteRetryPolicy(RetryPolicy):
    """The driver's default policy, plus: a write that timed out on the server is sent again
    (same consistency, at most ``max_retries`` times) when its statement is marked idempotent.

    The default rethrows every timed-out write except a batch-log one, because resending a
    counter update, an append or a lightweight transaction could apply it twice. LAE's bulk
    writers (batch view rows, realtime upserts, serving rows) write complete values under
    their full primary key: applying one twice changes nothing, so they mark their statements
    idempotent (``idempotent``) and a node that stalls for a moment (a GC pause, a commit-log
    sync: "Coordinator node timed out waiting for replica nodes' responses", seen failing a
    batch recompute in CI) costs a resend instead of the whole Spark job. Lightweight
    transactions (the lease, publish, the watermark) are never marked, and a CAS or counter
    write is never resent whatever the mark says.
    """

    RESENDABLE = frozenset({WriteType.SIMPLE, WriteType.BATCH, WriteType.UNLOGGED_BATCH,
                            WriteType.BATCH_LOG})

    def __init__(self, max_retries: int = 3):
        self.max_retries = max_retries

    def on_write_timeout(self, query, consistency, write_type, required_responses,
                         received_responses, retry_num):
        if (getattr(query, "is_idempotent", False) and write_type in self.RESENDABLE
                and retry_num < self.max_retries):
            return self.RETRY, consistency
        return super().on_write_timeout(query, consistency, write_type, required_responses,
                                        received_responses, retry_num)


def idempotent(statement):
    """Mark a statement (prepared, bound or batch) safe to resend; returns it."""
    statement.is_idempotent = True
    return statement


def connect(
    settings: Settings,
    keyspace: str | None = None,
    connect_timeout: float = 10.0,
) -> Session:
    """A Session on the configured contact point; close it with ``session.cluster.shutdown()``.

    Token-aware routing over DC-aware round robin is the driver's recommended policy and works
    unchanged against a multi-node cluster. The protocol version is negotiated (v5 on 5.0).
    Timed-out writes of statements marked ``idempotent`` are resent
    (``IdempotentWriteRetryPolicy``).
    """
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
                               retry_policy=IdempotentWriteRetryPolicy())
    cluster = Cluster(
        contact_points=[settings.cassandra_contact_point],
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=connect_timeout,
        control_connection_timeout=connect_timeout,
    )
    try:
        return cluster.connect(keyspace)
    except Exception:
        cluster.shutdown()
        raise
