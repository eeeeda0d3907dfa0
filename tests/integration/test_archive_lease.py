"""The partition lease on the real Cassandra: LWT take-over rules and TTL-bounded renewals."""

from __future__ import annotations

import time
import uuid

import pytest

from lae.archive.lease import CassandraLease, LeaseHeldError, LeaseLostError

pytestmark = pytest.mark.integration


@pytest.fixture
def session(settings, cassandra_service):
    from lae.cassandra import connect

    s = connect(settings)
    yield s
    s.cluster.shutdown()


def _acquired_at(lease: CassandraLease):
    row = lease.session.execute(
        f"SELECT acquired_at FROM {lease.table} WHERE topic = %s AND partition = %s",  # noqa: S608 - keyspace name
        lease.key).one()
    return None if row is None else row.acquired_at


def test_one_holder_keep_alive_renews_only_when_due_and_a_lost_lease_is_detected(settings,
                                                                                 session):
    topic = f"lease-test-{uuid.uuid4().hex[:8]}"
    mine = CassandraLease(session, settings.keyspace, topic, 0, ttl_s=5, owner="mine")
    other = CassandraLease(session, settings.keyspace, topic, 0, ttl_s=5, owner="other")
    mine.acquire()
    with pytest.raises(LeaseHeldError):
        other.acquire()
    first = _acquired_at(mine)

    mine.keep_alive(fraction=0.5)  # just taken: 2.5 s of a 5 s TTL not yet passed
    assert _acquired_at(mine) == first
    time.sleep(2.6)
    mine.keep_alive(fraction=0.5)  # due now: one LWT that moves acquired_at
    assert _acquired_at(mine) > first

    time.sleep(5.5)  # nobody renewed: the TTL ends the lease, the other writer may take it
    assert mine.holder() is None
    other.acquire()
    with pytest.raises(LeaseLostError):
        mine.renew()  # fencing: the old holder finds out before it commits
    other.release()
    assert other.holder() is None
