"""Which timed-out writes LAE's sessions resend (the retry policy's decisions; no Cassandra).

The driver calls ``on_write_timeout`` when a node answers WriteTimeout; these tests call it the
same way. Provoking a real write timeout from a single healthy local node is not reliable, so
the policy is tested by its decisions and the writers by the mark they put on their statements.
"""

from __future__ import annotations

import pytest
from cassandra import ConsistencyLevel
from cassandra.policies import RetryPolicy, WriteType
from cassandra.query import BatchStatement, BatchType, BoundStatement, PreparedStatement

from lae.cassandra import IdempotentWriteRetryPolicy, idempotent

ONE = ConsistencyLevel.LOCAL_ONE


def _prepared(cql: str = "INSERT INTO ks.t (k, v) VALUES (?, ?)") -> PreparedStatement:
    return PreparedStatement(column_metadata=[], query_id=b"id", routing_key_indexes=None,
                             query=cql, keyspace="ks", protocol_version=5,
                             result_metadata=None, result_metadata_id=None)


def _decide(statement, write_type=WriteType.SIMPLE, retry_num=0):
    return IdempotentWriteRetryPolicy(max_retries=3).on_write_timeout(
        statement, ONE, write_type, required_responses=1, received_responses=0,
        retry_num=retry_num)


@pytest.mark.parametrize("write_type", [WriteType.SIMPLE, WriteType.UNLOGGED_BATCH,
                                        WriteType.BATCH])
def test_an_idempotent_write_that_timed_out_is_resent_at_the_same_consistency(write_type):
    batch = idempotent(BatchStatement(batch_type=BatchType.UNLOGGED))
    assert _decide(batch, write_type) == (RetryPolicy.RETRY, ONE)


def test_resending_stops_after_max_retries():
    batch = idempotent(BatchStatement())
    assert [_decide(batch, retry_num=n)[0] for n in range(5)] == [
        RetryPolicy.RETRY, RetryPolicy.RETRY, RetryPolicy.RETRY,
        RetryPolicy.RETHROW, RetryPolicy.RETHROW]


def test_an_unmarked_write_is_not_resent():
    assert _decide(BatchStatement())[0] == RetryPolicy.RETHROW
    assert _decide(BoundStatement(_prepared()))[0] == RetryPolicy.RETHROW


@pytest.mark.parametrize("write_type", [WriteType.CAS, WriteType.COUNTER])
def test_lwt_and_counter_writes_are_never_resent_even_if_marked(write_type):
    assert _decide(idempotent(BatchStatement()), write_type)[0] == RetryPolicy.RETHROW


def test_bound_statements_of_a_marked_prepared_statement_are_resent():
    bound = BoundStatement(idempotent(_prepared()))
    assert bound.is_idempotent
    assert _decide(bound) == (RetryPolicy.RETRY, ONE)


def test_the_default_behaviour_is_kept_for_a_batch_log_write_of_an_unmarked_batch():
    # The driver's own rule: a timed-out batch-log write is retried once.
    assert _decide(BatchStatement(), WriteType.BATCH_LOG)[0] == RetryPolicy.RETRY
    assert _decide(BatchStatement(), WriteType.BATCH_LOG, retry_num=1)[0] == RetryPolicy.RETHROW
