"""Cassandra sessions for LAE code: one place that knows how to reach the cluster."""

from __future__ import annotations

import logging

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from lae.config import Settings

# The driver logs every failed reconnect at WARNING; during start-up polling that is noise.
logging.getLogger("cassandra.cluster").setLevel(logging.ERROR)
logging.getLogger("cassandra.pool").setLevel(logging.ERROR)


def connect(
    settings: Settings,
    keyspace: str | None = None,
    connect_timeout: float = 10.0,
) -> Session:
    """A Session on the configured contact point; close it with ``session.cluster.shutdown()``.

    Token-aware routing over DC-aware round robin is the driver's recommended policy and works
    unchanged against a multi-node cluster. The protocol version is negotiated (v5 on 5.0).
    """
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()))
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
