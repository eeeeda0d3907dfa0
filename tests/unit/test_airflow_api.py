"""AirflowApi's handling of a refused connection, against real sockets on 127.0.0.1: an
api-server that comes back (the supervisor restarted it) is waited for; one that stays away
gives an error that names it and where to look."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lae.airflow_api import AirflowApi, AirflowApiError


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _api(port: int, connect_retry_s: float) -> AirflowApi:
    # The bearer token is never checked by these servers.
    return AirflowApi(f"http://127.0.0.1:{port}", "unchecked", connect_retry_s=connect_retry_s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_retried_until_the_server_is_back():
    port = _free_port()
    servers = []

    def start_later():
        time.sleep(2.5)
        server = ThreadingHTTPServer(("127.0.0.1", port), _Health)
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=start_later, daemon=True).start()
    api = _api(port, connect_retry_s=30)
    started = time.monotonic()
    try:
        assert api.request("GET", "/api/v2/monitor/health") == (200, {"ok": True})
        assert time.monotonic() - started >= 2.0
    finally:
        for server in servers:
            server.shutdown()


def test_a_server_that_stays_down_is_an_error_naming_it():
    port = _free_port()
    api = _api(port, connect_retry_s=3)
    started = time.monotonic()
    with pytest.raises(AirflowApiError, match=rf"127\.0\.0\.1:{port} refused connections"):
        api.request("POST", "/api/v2/backfills", {"dag_id": "x"})
    assert 3 <= time.monotonic() - started < 15
