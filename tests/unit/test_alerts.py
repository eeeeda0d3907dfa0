"""Alert message, channel selection, file sink, and real delivery to local receivers.

The receivers are real servers on 127.0.0.1 (an HTTP webhook endpoint and a minimal SMTP
server), so the bytes the notifier produces are the bytes a Slack/SMTP server would get.
"""

from __future__ import annotations

import json
import socketserver
import threading
from email import message_from_string
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from lae.alerts import channels as ch
from lae.alerts.message import EXCEPTION_LIMIT, Alert, describe_exception
from lae.alerts.notifier import LaeNotifier, alert_from_context, alerts_file, send_alert
from lae.config import Settings

FIELDS = ("DAG", "Task", "Run", "Try", "Exception", "Log")


def _failed_task_context(exc: BaseException | None = None) -> dict:
    ti = SimpleNamespace(dag_id="lae_demo", task_id="load", run_id="manual__2026-11-25",
                         try_number=3, max_tries=2, map_index=-1,
                         log_url="http://127.0.0.1:8080/dags/lae_demo/runs/r/tasks/load")
    return {"ti": ti, "exception": exc or ValueError("bad row 17")}


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path, state_dir=tmp_path / "state", jars_dir=tmp_path / "jars")


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        self.server.received.append((self.headers["Content-Type"],
                                     json.loads(self.rfile.read(length))))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received, server.status = [], 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
    server.server_close()


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def _say(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self):
        self._say("220 lae-test ESMTP")
        mail = {"rcpt": []}
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._say("250 lae-test")
            elif verb == "MAIL":
                mail["from"] = line
                self._say("250 OK")
            elif verb == "RCPT":
                mail["rcpt"].append(line.split(":", 1)[1].strip(" <>"))
                self._say("250 OK")
            elif verb == "DATA":
                self._say("354 end with .")
                data = []
                while (chunk := self.rfile.readline().decode()) not in (".\r\n", ""):
                    data.append(chunk)
                mail["data"] = "".join(data)
                self.server.mails.append(mail)
                self._say("250 OK")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("250 OK")


@pytest.fixture()
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.daemon_threads = True
    server.mails = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


# -- the message -------------------------------------------------------------------------------

def test_task_alert_names_dag_task_run_try_exception_and_log():
    alert = alert_from_context(_failed_task_context(), "task_failed", "critical")
    fields = dict(alert.fields())
    assert list(fields) == list(FIELDS)
    assert fields["DAG"] == "lae_demo" and fields["Task"] == "load"
    assert fields["Run"] == "manual__2026-11-25"
    assert fields["Try"] == "3 of 3"  # max_tries 2 = two retries after the first try
    assert fields["Exception"] == "ValueError: bad row 17"
    assert fields["Log"].startswith("http://127.0.0.1:8080/dags/lae_demo/")
    assert alert.title == "Task failed: lae_demo.load"
    for label, value in fields.items():
        assert value in alert.text(), label


def test_mapped_task_is_named_with_its_index():
    context = _failed_task_context()
    context["ti"].map_index = 4
    assert alert_from_context(context, "task_failed", "critical").task_id == "load[4]"


def test_long_exceptions_are_cut():
    text = describe_exception(RuntimeError("x" * 5000))
    assert len(text) == EXCEPTION_LIMIT and text.startswith("RuntimeError: xxx")
    assert describe_exception(None) is None
    assert describe_exception("already text") == "already text"


def test_slack_payload_shape():
    alert = alert_from_context(_failed_task_context(), "task_failed", "critical")
    payload = json.loads(json.dumps(alert.slack_payload()))  # JSON-serialisable as sent
    assert payload["text"] == "[LAE critical] Task failed: lae_demo.load"
    (attachment,) = payload["attachments"]
    assert attachment["title_link"] == alert.log_url
    assert [f["title"] for f in attachment["fields"]] == list(FIELDS)
    assert all(isinstance(f["value"], str) for f in attachment["fields"])
    assert alert.alert_id in attachment["footer"]


def test_email_escapes_html():
    alert = Alert(kind="view_drift", title="drift <b>", exception="KeyError: '<script>'")
    subject, body = alert.email()
    assert subject == "[LAE critical] drift <b>"
    assert "<script>" not in body and "&lt;script&gt;" in body


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="severity"):
        Alert(kind="x", title="x", severity="panic")


# -- channels ----------------------------------------------------------------------------------

def _conn(**kw):
    from airflow.sdk import Connection

    extra = kw.pop("extra", None)
    return Connection(conn_id="c", conn_type=kw.pop("conn_type", "http"),
                      extra=json.dumps(extra) if extra else None, **kw)


@pytest.mark.parametrize(("conn", "url"), [
    (dict(extra={"webhook_url": "https://example.test/x"}, host="ignored"),
     "https://example.test/x"),
    (dict(host="https://hooks.slack.com/services", password="T0/B0/XX"),  # noqa: S106 - fake
     "https://hooks.slack.com/services/T0/B0/XX"),
    (dict(host="http://127.0.0.1", port=8123), "http://127.0.0.1:8123"),
    (dict(host="chat.example.test", schema="https", password="/hooks/abc"),  # noqa: S106
     "https://chat.example.test/hooks/abc"),
    (dict(), None),
])
def test_webhook_url_from_connection(conn, url):
    assert ch.webhook_url(_conn(**conn)) == url


def test_no_connections_means_no_optional_channels():
    assert ch.configured_channels(lambda conn_id: None) == []


def test_channels_from_connections():
    conns = {
        ch.WEBHOOK_CONN_ID: _conn(host="http://127.0.0.1:1", extra={"min_severity": "warning"}),
        ch.SMTP_CONN_ID: _conn(conn_type="smtp", host="127.0.0.1",
                               extra={"to": "a@example.test; b@example.test"}),
    }
    webhook, email = ch.configured_channels(conns.get)
    assert (webhook.name, webhook.url, webhook.min_severity) == ("webhook", "http://127.0.0.1:1",
                                                                 "warning")
    assert (email.name, email.to, email.min_severity) == (
        "email", ["a@example.test", "b@example.test"], "critical")


def test_smtp_connection_without_recipients_is_skipped(caplog):
    conns = {ch.SMTP_CONN_ID: _conn(conn_type="smtp", host="127.0.0.1")}
    assert ch.configured_channels(conns.get) == []
    assert "no extra.to" in caplog.text


def test_a_broken_connection_lookup_skips_the_channel(caplog):
    def lookup(conn_id):
        raise RuntimeError("secrets backend down")

    assert ch.configured_channels(lookup) == []
    assert "secrets backend down" in caplog.text


def test_env_connection_is_found_through_airflow(monkeypatch):
    # The deployment path: AIRFLOW_CONN_* env vars, read by Airflow's own secrets backend.
    monkeypatch.setenv("AIRFLOW_CONN_LAE_ALERTS_WEBHOOK", json.dumps(
        {"conn_type": "http", "host": "https://hooks.slack.com/services", "password": "T/B/X"}))
    (webhook,) = [c for c in ch.configured_channels() if c.name == "webhook"]
    assert webhook.url == "https://hooks.slack.com/services/T/B/X"


# -- delivery ----------------------------------------------------------------------------------

def test_with_no_channel_the_alert_reaches_log_and_file(settings, caplog):
    notifier = LaeNotifier(channels=[], settings=settings)
    notifier(_failed_task_context())  # the way Airflow calls a callback
    (record,) = ch.read_records(alerts_file(settings))
    assert record["kind"] == "task_failed" and record["dag_id"] == "lae_demo"
    assert record["try_number"] == 3 and record["try_total"] == 3
    assert record["exception"] == "ValueError: bad row 17"
    assert record["delivered"] == {}
    assert "[LAE critical] Task failed: lae_demo.load" in caplog.text
    assert any(r.levelname == "ERROR" for r in caplog.records)


def test_webhook_receives_the_slack_payload(settings, webhook):
    LaeNotifier(channels=[ch.WebhookChannel(webhook.url)], settings=settings)(
        _failed_task_context())
    ((content_type, payload),) = webhook.received
    assert content_type == "application/json"
    (record,) = ch.read_records(alerts_file(settings))
    assert record["delivered"] == {"webhook": "sent"}
    assert record["alert_id"] in payload["attachments"][0]["footer"]


def test_retries_do_not_page_by_default(settings, webhook):
    LaeNotifier(kind="task_retry", severity="warning", settings=settings,
                channels=[ch.WebhookChannel(webhook.url)])(_failed_task_context())
    assert webhook.received == []
    (record,) = ch.read_records(alerts_file(settings))
    assert record["kind"] == "task_retry"
    assert record["delivered"] == {"webhook": "skipped: below critical"}


def test_a_failing_channel_never_raises_and_is_recorded(settings, webhook, caplog):
    webhook.status = 500
    dead = ch.WebhookChannel("http://127.0.0.1:9/nothing-listens")
    alert = send_alert("stream_restart", "speed_views restarted", {"restarts": 3},
                       channels=[ch.WebhookChannel(webhook.url), dead], settings=settings)
    (record,) = ch.read_records(alerts_file(settings))
    assert record["alert_id"] == alert.alert_id
    assert record["details"] == {"restarts": 3}
    assert record["delivered"]["webhook"].startswith("failed: ")
    assert "HTTP Error 500" in caplog.text or "500" in record["delivered"]["webhook"]
    assert "nothing-listens" not in caplog.text  # URLs can hold secrets; never logged


def test_notifier_survives_a_context_without_ti(settings, caplog):
    LaeNotifier(channels=[], settings=settings)({"exception": ValueError("x")})
    assert ch.read_records(alerts_file(settings)) == []
    assert "could not build an alert" in caplog.text


def test_an_unwritable_alerts_file_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state dir should be")
    bad = Settings(home=tmp_path, state_dir=blocker, jars_dir=tmp_path)
    send_alert("view_drift", "drift 12%", channels=[], settings=bad)
    assert "could not append" in caplog.text


def test_email_goes_through_the_smtp_provider(settings, smtp_server, monkeypatch):
    port = smtp_server.server_address[1]
    monkeypatch.setenv("AIRFLOW_CONN_LAE_ALERTS_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"to": "oncall@example.test", "from_email": "lae@example.test",
                  "disable_ssl": True, "disable_tls": True, "retry_limit": 0, "timeout": 5}}))
    chosen = [c for c in ch.configured_channels() if c.name == "email"]
    alert = send_alert("view_drift", "drift 12% on 2026-11-25", {"service": "orders"},
                       channels=chosen, settings=settings)
    (mail,) = smtp_server.mails
    assert mail["rcpt"] == ["oncall@example.test"]
    message = message_from_string(mail["data"])
    assert message["Subject"] == "[LAE critical] drift 12% on 2026-11-25"
    html = message.get_payload()[0].get_payload(decode=True).decode()
    assert "orders" in html and alert.alert_id in html
    assert ch.read_records(alerts_file(settings))[0]["delivered"] == {"email": "sent"}


def test_read_records_skips_a_line_that_is_not_json(tmp_path):
    path = tmp_path / "alerts.jsonl"
    ch.append_record(path, {"n": 1})
    with path.open("a") as f:
        f.write('{"n": 2, "cut\n')
    ch.append_record(path, {"n": 3})
    assert [r["n"] for r in ch.read_records(path)] == [1, 3]
    assert [r["n"] for r in ch.read_records(path, limit=1)] == [3]
