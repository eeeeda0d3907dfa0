"""Pure ASGI middleware that turns every HTTP request into one schema-v1 access-log event.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: that one runs the app in a separate task
and pipes the response through a memory stream, which costs latency on every request. Here the
only work on the request path is wrapping ``send`` to note the status and count the bytes; the
event is built after the response's last byte went out and handed to an emitter whose
``emit`` never blocks (see lae.api.emitter).
"""

from __future__ import annotations

import ipaddress
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lae.api.emitter import Emitter
from lae.schema.event import format_ts
from lae.schema.fields import FIELDS_BY_NAME

MAX_USER_AGENT = FIELDS_BY_NAME["user_agent"].max_len or 512
MAX_USER_ID = FIELDS_BY_NAME["user_id"].max_len or 256
# The schema refuses C0 controls and DEL in free text; HTTP allows a tab inside a header value.
_CONTROLS = {c: " " for c in [*range(0x20), 0x7F]}
# Requests that matched no route: logging the raw URL would let scanners create one view row
# per random path, so they all share this template.
UNMATCHED_PATH = "/{unmatched}"


def route_template(scope: Scope) -> str:
    """The matched route's template (``/v1/orders/{id}``), which the router put in the scope."""
    route = scope.get("route")
    # FastAPI's path_format drops converters ("{id:int}" -> "{id}"); plain Starlette has path.
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED_PATH
    return scope.get("root_path", "") + template


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _text(value: str | None, max_len: int) -> str | None:
    """A header value as the schema accepts it: no controls, bounded, and non-empty or None."""
    if value is None:
        return None
    value = value.translate(_CONTROLS).strip()[:max_len]
    return value or None


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    if not client:
        return None
    try:
        return str(ipaddress.ip_address(client[0]))
    except ValueError:
        return None  # e.g. a unix socket or a test client: the field is optional


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, emitter: Emitter, service: str, host: str | None = None):
        self.app = app
        self.emitter = emitter
        self.service = service
        self.host = host or socket.gethostname()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_wall = time.time()
        started = time.perf_counter()
        response: dict[str, Any] = {"status": 500, "bytes": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
            elif message["type"] == "http.response.body":
                response["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # Also on an unhandled exception: the server answers 500 then (ServerErrorMiddleware
            # sits outside this middleware), and that request must be counted as an error.
            latency_ms = (time.perf_counter() - started) * 1000.0
            self.emitter.emit(self._event(scope, started_wall, latency_ms, response))

    def _event(self, scope: Scope, started_wall: float, latency_ms: float,
               response: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            # The schema's canonical spelling (UTC, microseconds, "Z"), like ingested events.
            "ts": format_ts(datetime.fromtimestamp(started_wall, UTC)),
            "service": self.service,
            "host": self.host,
            "method": scope["method"],
            "path": route_template(scope),
            "status": response["status"],
            "latency_ms": round(latency_ms, 3),
            "bytes": response["bytes"],
            "user_id": _text(_header(scope, b"x-user-id"), MAX_USER_ID),
            "schema": 1,
        }
        ip = _client_ip(scope)
        if ip is not None:
            event["ip"] = ip
        user_agent = _text(_header(scope, b"user-agent"), MAX_USER_AGENT)
        if user_agent is not None:
            event["user_agent"] = user_agent
        return event
