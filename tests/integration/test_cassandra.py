"""The local Cassandra: CQL round trip, migrations, the DESIGN tables, durability across down/up."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from datetime import UTC, date, datetime

import pytest

from lae.cassandra import IdempotentWriteRetryPolicy, connect, idempotent
from lae.cassandra_schema import MIGRATIONS_DIR, MigrationError, migrate

pytestmark = pytest.mark.integration

DESIGN_TABLES = {
    "batch_metrics_minute", "batch_metrics_hour", "batch_published", "batch_watermark",
    "rt_metrics_minute", "rt_metrics_hour", "serving_metrics_minute", "serving_metrics_hour",
    "stream_heartbeat", "view_drift", "schema_migrations",
}

INSERT_RT = (
    "INSERT INTO {ks}.rt_metrics_minute (service, day, minute, path, status_class, requests, "
    "errors, client_errors, bytes, latency_sum, latency_max, latency_hist, users_hll) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_RT = (
    "SELECT minute, path, status_class, requests, errors, client_errors, bytes, latency_sum, "
    "latency_max, latency_hist, users_hll, TTL(requests) AS ttl "
    "FROM {ks}.rt_metrics_minute WHERE service = ? AND day = ?"
)
DAY = date(2026, 11, 26)
MINUTE = datetime(2026, 11, 26, 12, 34, tzinfo=UTC)


@pytest.fixture
def session(cassandra_service, settings):
    s = connect(settings)
    yield s
    s.cluster.shutdown()


@pytest.fixture
def service_name(session, settings):
    """A partition of our own, deleted afterwards, so reruns and other tests do not collide."""
    name = f"it-{uuid.uuid4().hex[:12]}"
    yield name
    # A fresh session: the test may have restarted Cassandra under the fixture's session.
    with_cleanup = connect(settings)
    try:
        with_cleanup.execute(
            f"DELETE FROM {settings.keyspace}.rt_metrics_minute "  # noqa: S608 - from settings
            "WHERE service = %s AND day = %s",
            (name, DAY),
        )
    finally:
        with_cleanup.cluster.shutdown()


def _insert_row(session, keyspace, service):
    insert = session.prepare(INSERT_RT.format(ks=keyspace))
    session.execute(insert, (service, DAY, MINUTE, "/v1/orders/{id}", "5xx", 7, 7, 0,
                             1234567890123, 812.5, 301.25, [0, 2, 5, 0], b"\x01\x02hll"))


def _select_rows(session, keyspace, service):
    select = session.prepare(SELECT_RT.format(ks=keyspace))
    return list(session.execute(select, (service, DAY)))


def test_cql_round_trip_with_prepared_statements(session, settings, service_name):
    _insert_row(session, settings.keyspace, service_name)
    [row] = _select_rows(session, settings.keyspace, service_name)
    assert row.minute.replace(tzinfo=UTC) == MINUTE
    assert (row.path, row.status_class) == ("/v1/orders/{id}", "5xx")
    assert (row.requests, row.errors, row.client_errors) == (7, 7, 0)
    assert row.bytes == 1234567890123
    assert (row.latency_sum, row.latency_max) == (812.5, 301.25)
    assert row.latency_hist == [0, 2, 5, 0]
    assert row.users_hll == b"\x01\x02hll"
    # The realtime table's default TTL (3 days) applies without the writer asking for it.
    assert 0 < row.ttl <= 3 * 24 * 3600


def test_sessions_resend_timed_out_idempotent_writes(session, settings, service_name):
    """Every LAE session carries the retry policy; a marked statement's executions say so."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT

    profile = session.cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    assert isinstance(profile.retry_policy, IdempotentWriteRetryPolicy)
    insert = idempotent(session.prepare(INSERT_RT.format(ks=settings.keyspace)))
    future = session.execute_async(insert, (service_name, DAY, MINUTE, "/p", "2xx", 1, 0, 0,
                                            10, 1.0, 1.0, [1], None))
    future.result()
    assert future.query.is_idempotent


def test_all_design_tables_exist(session, settings):
    rows = session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
        (settings.keyspace,),
    )
    assert DESIGN_TABLES <= {r.table_name for r in rows}
    replication = session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
        (settings.keyspace,),
    ).one().replication
    assert replication["replication_factor"] == str(settings.cassandra_replication_factor)


def test_migrate_is_idempotent_on_the_stack_keyspace(session, settings):
    # The fixture's up() already provisioned the schema: nothing is left to apply.
    assert migrate(session, settings) == []
    assert migrate(settings) == []
    query = "SELECT version, name, checksum, applied_at FROM {}.schema_migrations"
    rows = {r.version: r for r in session.execute(query.format(settings.keyspace))}
    assert "V001" in rows
    assert rows["V001"].name == "keyspace_and_views"
    assert len(rows["V001"].checksum) == 64


def test_migrate_a_fresh_keyspace_then_refuse_an_edited_file(session, settings, tmp_path):
    keyspace = f"lae_it_{uuid.uuid4().hex[:8]}"
    scratch = dataclasses.replace(settings, keyspace=keyspace)
    directory = tmp_path / "cql"
    shutil.copytree(MIGRATIONS_DIR, directory)
    try:
        every_version = sorted(p.name.split("__")[0] for p in directory.glob("V*__*.cql"))
        assert migrate(session, scratch, directory=directory) == every_version
        assert migrate(session, scratch, directory=directory) == []
        tables = {r.table_name for r in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
        )}
        assert DESIGN_TABLES <= tables

        v001 = next(directory.glob("V001__*.cql"))
        v001.write_text(v001.read_text() + "\n-- an edit after the fact\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate(session, scratch, directory=directory)
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)


def test_data_survives_down_and_up(cassandra_service, session, settings, service_name):
    _insert_row(session, settings.keyspace, service_name)
    session.cluster.shutdown()

    # Not flushed: the row is only in the memtable and commit log when the SIGTERM arrives.
    assert cassandra_service.down() is True
    assert not cassandra_service.process.is_running()
    cassandra_service.up()

    fresh = connect(settings)
    try:
        rows = _select_rows(fresh, settings.keyspace, service_name)
    finally:
        fresh.cluster.shutdown()
    assert [(r.requests, r.latency_hist) for r in rows] == [(7, [0, 2, 5, 0])]
