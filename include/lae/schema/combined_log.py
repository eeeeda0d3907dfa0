"""Apache/Nginx "combined" access-log lines (as log shippers send them) parsed into events.

Accepted line: ``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`` optionally followed by
ONE request-time field:
- a decimal with a dot, in seconds: nginx ``$request_time`` (``0.123``);
- an integer, in microseconds: Apache ``%D`` (Apache ``%T``, whole seconds, is not accepted);
- ``-``: unknown, as if absent.
Without a request time the line is rejected (``missing_field:latency_ms``) unless the caller
passes ``default_latency_ms``: a silent 0 would drag every latency percentile down.

Mapping: ``%h`` → ip (left out when it is a hostname, i.e. HostnameLookups on); ``%u`` →
user_id (``-`` → null); ``%b`` ``-`` → 0; user agent ``-`` → null, longer ones cut to the
schema's maximum (the UA is not used by any view; the log line is foreign data); quoted fields
keep the server's escapes except ``\\"`` and ``\\\\``; the referer is not part of the event.
The URL becomes a route template through a ``RouteRule``. event_id is a uuid5 of service, host
and the line, so a re-sent line gets the same id and is de-duplicated. The result then passes
the same field checks as a JSON event.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from lae.schema import fields as f
from lae.schema.event import Event, Rejection, event_from_dict

# Fixed forever: changing it would change every derived event_id and defeat de-duplication.
COMBINED_LOG_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://lae.invalid/combined-log/v1")

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_LINE = re.compile(
    r"(\S+) (\S+) (\S+) \[([^\]]*)\] "
    + _QUOTED
    + r" ([0-9]+) ([0-9]+|-) "
    + _QUOTED
    + " "
    + _QUOTED
    + r"(?: (\S+))?[ \t]*",
    re.ASCII,  # \S and [0-9] must not match Unicode spaces/digits (int() accepts '١٢٣')
)
_REQUEST = re.compile(r"(\S+) (\S+)(?: HTTP/[0-9.]+)?", re.ASCII)
_CLF_TIME = re.compile(
    r"([0-9]{2})/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/([0-9]{4})"
    r":([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})",
    re.ASCII,
)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_SECONDS = re.compile(r"[0-9]{1,9}\.[0-9]{1,9}", re.ASCII)
_MICROS = re.compile(r"[0-9]{1,15}", re.ASCII)
_IP = re.compile(f.IP_PATTERN)
_ID_SEGMENT = re.compile(f"[0-9]+|{f.UUID_PATTERN}")
_UNESCAPE = re.compile(r'\\(["\\])')
_MAX_UA = f.FIELDS_BY_NAME["user_agent"].max_len
_MAX_DIGITS = 19  # beyond int64: out of range anyway, and keeps int() cheap


class RouteRule:
    """Turns a request URL into a route template.

    Always: keep only the path (drop scheme/authority of absolute-form targets, the query and
    the fragment). Then the ``extra`` rules, in order, as ``re.sub(pattern, replacement)`` on the
    path (e.g. ``(r"^/users/[^/]+/avatar$", "/users/{name}/avatar")``). Then, when ``ids`` is
    true, every path segment that is all digits or a UUID becomes ``{id}``.
    """

    def __init__(self, extra: Iterable[tuple[str, str]] = (), *, ids: bool = True) -> None:
        self.extra = tuple((re.compile(pattern), replacement) for pattern, replacement in extra)
        self.ids = ids

    def template(self, url: str) -> str:
        path = url.split("#", 1)[0].split("?", 1)[0]
        if "://" in path:  # absolute-form request target (proxies)
            rest = path.split("://", 1)[1]
            path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        for pattern, replacement in self.extra:
            path = pattern.sub(replacement, path)
        if self.ids:
            path = "/".join(
                "{id}" if _ID_SEGMENT.fullmatch(seg) else seg for seg in path.split("/")
            )
        return path


DEFAULT_ROUTE_RULE = RouteRule()


def _unquote(value: str) -> str:
    return _UNESCAPE.sub(r"\1", value)


def _rfc3339(clf_time: str) -> str | None:
    m = _CLF_TIME.fullmatch(clf_time)
    if m is None:
        return None
    day, month, year, hh, mm, ss, sign, oh, om = m.groups()
    # Handed to the shared ts check (which rejects 31/Feb etc.) as an RFC 3339 string.
    return f"{year}-{_MONTHS[month]:02d}-{day}T{hh}:{mm}:{ss}{sign}{oh}:{om}"


def _latency_ms(field: str | None, default: float | None) -> float | Rejection | None:
    if field is None or field == "-":
        if default is None:
            return Rejection(f.missing("latency_ms"), "line has no request time field")
        return default
    if _SECONDS.fullmatch(field):
        return float(field) * 1000.0
    if _MICROS.fullmatch(field):
        return int(field) / 1000.0
    return Rejection(f.bad_format("request_time"), field[:40])


def _parse(
    line: str | bytes, service: str, host: str, rule: RouteRule, default_latency_ms: float | None
) -> Event | Rejection:
    if isinstance(line, bytes | bytearray):
        if len(line) > f.MAX_EVENT_BYTES:
            return Rejection(f.TOO_LARGE, f"{len(line)} bytes > {f.MAX_EVENT_BYTES}")
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejection(f.INVALID_UTF8, str(exc))
    elif not isinstance(line, str):
        return Rejection(f.bad_type("combined_log"), type(line).__name__)
    line = line.rstrip("\r\n")
    try:
        encoded = line.encode("utf-8")
    except UnicodeEncodeError:  # a str holding lone surrogates
        return Rejection(f.INVALID_UTF8, "line holds lone surrogates")
    if len(encoded) > f.MAX_EVENT_BYTES:
        return Rejection(f.TOO_LARGE, f"{len(encoded)} bytes > {f.MAX_EVENT_BYTES}")

    m = _LINE.fullmatch(line)
    if m is None:
        return Rejection(f.bad_format("combined_log"), line[:80])
    client, _ident, user, clf_time, request, status, size, _referer, agent, rt = m.groups()

    req = _REQUEST.fullmatch(_unquote(request))
    if req is None:  # "-", garbage from scanners, TLS handshakes on the HTTP port
        return Rejection(f.bad_format("request"), request[:80])
    method, target = req.groups()
    ts = _rfc3339(clf_time)
    if ts is None:
        return Rejection(f.bad_format("ts"), clf_time[:40])
    latency = _latency_ms(rt, default_latency_ms)
    if isinstance(latency, Rejection):
        return latency
    if len(status) > _MAX_DIGITS or len(size) > _MAX_DIGITS:
        return Rejection(f.out_of_range("status" if len(status) > _MAX_DIGITS else "bytes"))
    agent = _unquote(agent)

    identity = f"{service}\n{host}\n{line}"
    return event_from_dict(
        {
            "event_id": str(uuid.uuid5(COMBINED_LOG_NAMESPACE, identity)),
            "ts": ts,
            "service": service,
            "host": host,
            "method": method,
            "path": rule.template(target),
            "status": int(status),
            "latency_ms": latency,
            "bytes": 0 if size == "-" else int(size),
            "user_id": None if user == "-" else _unquote(user),
            "ip": client if _IP.fullmatch(client) else None,
            "user_agent": None if agent in ("", "-") else agent[:_MAX_UA],
        }
    )


def parse_combined(
    line: str | bytes,
    service: str,
    host: str,
    route_rule: RouteRule | None = None,
    *,
    default_latency_ms: float | None = None,
) -> Event | Rejection:
    """Parse one combined-log line into an event of ``service`` on ``host``. Never raises."""
    try:
        return _parse(line, service, host, route_rule or DEFAULT_ROUTE_RULE, default_latency_ms)
    except Exception as exc:  # a bug here must quarantine the line, not stop the shipper endpoint
        return Rejection(f.INTERNAL_ERROR, repr(exc)[:200])


__all__ = ["COMBINED_LOG_NAMESPACE", "DEFAULT_ROUTE_RULE", "RouteRule", "parse_combined"]
