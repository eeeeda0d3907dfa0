"""Alerting acceptance (issue 8): a real scheduled run that fails pages a webhook, and so
does a batch_recompute run that misses its 06:00 UTC deadline.

The running Airflow (scheduler, LocalExecutor worker, execution API) runs
``lae_alert_selftest`` with ``{"fail": true}``; its task fails on every try. The test owns the
receiving end: an HTTP server on 127.0.0.1 and the ``lae_alerts_webhook`` connection pointing
at it, created and removed through the REST API exactly as the UI does.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lae.airflow_api import AirflowApi
from lae.alerts import WEBHOOK_CONN_ID, alerts_file, read_records
from lae.alerts.deadline import RUN_DAY_0600_AFTER_LOGICAL_DATE
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.integration

DAG_ID = "lae_alert_selftest"
TASK_ID = "fail_on_request"
# Like the secret part of a Slack webhook URL, kept in the connection's password field.
WEBHOOK_PATH = "lae/alert-test"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


# Module-scoped: each `airflow connections` CLI call starts Airflow (slow on a loaded box), and
# every test picks its own alerts out by run id.
@pytest.fixture(scope="module")
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _call(api: AirflowApi, method: str, path: str, body=None, ok=(200, 201, 204)):
    """One API call, retried while the api-server reports a database error: SQLite's write
    lock, held by a busy scheduler on a loaded box, makes single writes fail transiently."""
    for _ in range(10):
        status, payload = api.request(method, path, body)
        if status in ok:
            return payload
        if status < 500:
            break
        time.sleep(3)
    raise AssertionError(f"{method} {path}: HTTP {status}: {payload}")


@pytest.fixture(scope="module")
def webhook_connection(settings, airflow_service, receiver):
    # Through the REST API, as the UI's Admin → Connections does: an `airflow connections`
    # CLI call starts a whole Airflow process, which took over 120 s on a loaded 2-core box.
    api = AirflowApi.login(settings)
    path = f"/api/v2/connections/{WEBHOOK_CONN_ID}"
    api.request("DELETE", path)  # a leftover from an interrupted run; 404 when there is none
    _call(api, "POST", "/api/v2/connections", {
        "connection_id": WEBHOOK_CONN_ID, "conn_type": "http", "host": "http://127.0.0.1",
        "port": receiver.server_address[1], "password": WEBHOOK_PATH})
    yield
    api.request("DELETE", path)  # later failures on this stack must not post to a dead receiver


def _fields(payload: dict) -> dict[str, str]:
    return {f["title"]: f["value"] for f in payload["attachments"][0]["fields"]}


def test_a_failing_run_alerts_the_webhook_the_file_and_the_task_log(settings, receiver,
                                                                    webhook_connection):
    api = AirflowApi.login(settings)
    api.wait_for_dag(DAG_ID, timeout=180)
    run_id = api.trigger(DAG_ID, conf={"fail": True}, note="alerting acceptance test")
    assert api.wait_for_run(DAG_ID, run_id, timeout=420) == "failed"

    # The callback runs in the task process after the state is reported: allow it a moment.
    def ours():
        return [(path, p) for path, p in receiver.received if _fields(p).get("Run") == run_id]

    (path, payload), *more = wait_for(ours, 60, "the webhook alert")
    fields = _fields(payload)
    assert path == f"/{WEBHOOK_PATH}"
    assert payload["text"] == f"[LAE critical] Task failed: {DAG_ID}.{TASK_ID}"
    assert fields["DAG"] == DAG_ID
    assert fields["Task"] == TASK_ID
    assert fields["Try"] == "3 of 3"  # retries exhausted: two retries, then the page
    assert fields["Exception"].startswith("AlertSelfTestError: failing on purpose")
    assert fields["Log"].startswith(f"{settings.airflow_url}/dags/{DAG_ID}/runs/")
    assert fields["Log"].endswith(f"/tasks/{TASK_ID}?try_number=3")
    assert not more, "retries and the dag-run record must not page (min_severity=critical)"

    # The same alert in the local alerts file, with the earlier tries and the run failure.
    def records():
        found = [r for r in read_records(alerts_file(settings)) if r.get("run_id") == run_id]
        return found if any(r["kind"] == "dag_run_failed" for r in found) else None

    found = wait_for(records, 60, "the dag_run_failed record from the plugin listener")
    by_kind = {}
    for r in found:
        by_kind.setdefault(r["kind"], []).append(r)
    (failed,) = by_kind["task_failed"]
    assert failed["alert_id"] in payload["attachments"][0]["footer"]
    assert (failed["dag_id"], failed["task_id"], failed["try_number"]) == (DAG_ID, TASK_ID, 3)
    assert failed["exception"] == fields["Exception"] and failed["log_url"] == fields["Log"]
    assert failed["delivered"] == {"webhook": "sent"}
    assert sorted(r["try_number"] for r in by_kind["task_retry"]) == [1, 2]
    assert all(r["delivered"] == {"webhook": "skipped: below critical"}
               for r in by_kind["task_retry"])
    (run_failed,) = by_kind["dag_run_failed"]
    assert run_failed["delivered"] == {}  # the listener only records (plugins/lae_alerts.py)

    # And in the last attempt's task log, where someone following the Log link looks.
    status, log = api.request(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/logs/3")
    assert status == 200, log
    assert f"[LAE critical] Task failed: {DAG_ID}.{TASK_ID}" in json.dumps(log)


BATCH_DAG = "batch_recompute"
# Runs are held, never run, so the day only needs to be valid; far in the future all the same.
HELD_DAY = "2099-01-01"


def test_a_batch_run_past_its_0600_deadline_alerts_the_webhook(settings, receiver,
                                                               webhook_connection):
    """The production deadline (logical date + 28 h), proven by the real scheduler and
    triggerer: a run is created whose logical date lies 28 h minus a few seconds in the past,
    so its 06:00-of-the-run-day deadline falls moments later. The DAG is paused while it
    waits, which holds the run unstarted (and leaves no scheduled run behind to occupy
    max_active_runs=1)."""
    api = AirflowApi.login(settings)
    api.wait_for_dag(BATCH_DAG, timeout=180)
    was_paused = _call(api, "GET", f"/api/v2/dags/{BATCH_DAG}")["is_paused"]
    _call(api, "PATCH", f"/api/v2/dags/{BATCH_DAG}", {"is_paused": True})
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    logical_date = due - RUN_DAY_0600_AFTER_LOGICAL_DATE
    run = _call(api, "POST", f"/api/v2/dags/{BATCH_DAG}/dagRuns",
                  {"logical_date": logical_date.isoformat(), "conf": {"day": HELD_DAY},
                   "note": "deadline alert acceptance test (held: the DAG is paused)"})
    run_id = run["dag_run_id"]
    try:
        def ours():
            return [(p, body) for p, body in receiver.received
                    if _fields(body).get("Run") == run_id]

        # Scheduler loop → deadline missed → triggerer runs the callback: allow a loaded box.
        ((path, payload),) = wait_for(ours, 240, "the deadline alert at the webhook")
        fields = _fields(payload)
        assert path == f"/{WEBHOOK_PATH}"
        assert payload["text"] == (
            f"[LAE critical] Deadline missed: {BATCH_DAG} has not finished day {HELD_DAY}")
        assert fields["DAG"] == BATCH_DAG
        assert datetime.fromisoformat(fields["Deadline"]) == due
        assert fields["Run state"] == "queued"  # held: it never started
        assert fields["Log"] == f"{settings.airflow_url}/dags/{BATCH_DAG}/runs/{run_id}"
        # Missed no earlier than the deadline itself.
        assert datetime.fromtimestamp(payload["attachments"][0]["ts"], UTC) >= due

        (record,) = [r for r in read_records(alerts_file(settings))
                     if r.get("run_id") == run_id and r["kind"] == "deadline_missed"]
        assert record["severity"] == "critical"
        assert record["delivered"] == {"webhook": "sent"}
        assert record["alert_id"] in payload["attachments"][0]["footer"]
    finally:
        # Later tests trigger this DAG (max_active_runs=1): leave no held run behind. Marked
        # failed, not deleted: on SQLite (no foreign keys) a deleted run leaves its Deadline
        # rows behind, and Airflow 3.3.2's scheduler crashed handling one whose run was gone.
        _call(api, "PATCH", f"/api/v2/dags/{BATCH_DAG}/dagRuns/{run_id}", {"state": "failed"})
        _call(api, "PATCH", f"/api/v2/dags/{BATCH_DAG}", {"is_paused": was_paused})
