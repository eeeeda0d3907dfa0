"""Alerting acceptance (issue 8): a real scheduled run that fails pages a webhook.

The running Airflow (scheduler, LocalExecutor worker, execution API) runs
``lae_alert_selftest`` with ``{"fail": true}``; its task fails on every try. The test owns the
receiving end: an HTTP server on 127.0.0.1 and the ``lae_alerts_webhook`` connection pointing
at it, created and removed through the airflow CLI exactly as an operator would.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lae.airflow_api import AirflowApi
from lae.alerts import WEBHOOK_CONN_ID, alerts_file, read_records
from lae.stack.airflow import run_airflow
from lae.stack.process import ServiceError

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


@pytest.fixture()
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def webhook_connection(settings, airflow_service, receiver):
    def delete():
        try:
            run_airflow(settings, "connections", "delete", WEBHOOK_CONN_ID)
        except ServiceError:
            pass  # not there

    delete()
    run_airflow(settings, "connections", "add", WEBHOOK_CONN_ID, "--conn-type", "http",
                "--conn-host", "http://127.0.0.1", "--conn-port", str(receiver.server_address[1]),
                "--conn-password", WEBHOOK_PATH)
    yield
    delete()  # later failures on this stack must not post to a receiver that is gone


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)


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

    (path, payload), *more = _wait_for(ours, 60, "the webhook alert")
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

    found = _wait_for(records, 60, "the dag_run_failed record from the plugin listener")
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
