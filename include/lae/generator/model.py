"""Synthetic access-log traffic, drawn a chunk at a time with numpy so it stays cheap.

Every random choice of a run comes from one ``numpy.random.Generator`` seeded by the run's
seed, consumed in chunks of a fixed size; the same seed, count and time range therefore give
the same bytes. The per-event Python work is one ``%`` format and an ``encode`` — everything
else is vectorised, which is what keeps generation well above 50k events/s on one core.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from lae.generator import catalog

KINDS = ("valid", "duplicate", "late", "malformed")
VALID, DUPLICATE, LATE, MALFORMED = range(4)

# DESIGN §3 field order. Vocabulary fields are ASCII without quotes or backslashes (checked
# in the unit tests), so only the user agent needs JSON escaping, done once per table entry.
_TEMPLATE = ('{"event_id":"%s","ts":"%s","service":"%s","host":"%s","method":"%s","path":"%s",'
             '"status":%d,"latency_ms":%r,"bytes":%d,"user_id":%s,"ip":"%s","user_agent":%s,'
             '"schema":1}')


@dataclass(frozen=True)
class Mix:
    """Shares of the special kinds among sent messages; the rest are valid."""

    late: float = 0.02
    duplicate: float = 0.01
    malformed: float = 0.005
    # How far behind the current position a late event's time is: log-uniform in this range.
    late_min_s: float = 120.0
    late_max_s: float = 6 * 3600.0

    def __post_init__(self):
        for name in ("late", "duplicate", "malformed"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} fraction must be within [0, 1]")
        if self.late + self.duplicate + self.malformed > 1.0:
            raise ValueError("late + duplicate + malformed fractions exceed 1")
        if not 0 < self.late_min_s <= self.late_max_s:
            raise ValueError("need 0 < late_min_s <= late_max_s")


@dataclass
class Chunk:
    """One chunk of messages in send order, with the columns the ground truth records."""

    kind: np.ndarray  # int8, index into KINDS
    ts_ms: np.ndarray  # int64 event time (of the underlying event for malformed rows)
    keys: list[bytes]
    payloads: list[bytes]
    fields: dict[str, list]  # event fields, as sent (python values)
    malformed_type: dict[int, str]  # row -> variant, for malformed rows
    expected_reason: dict[int, str]  # row -> reason code (see MALFORMED_VARIANTS)

    def __len__(self) -> int:
        return len(self.payloads)


def _zipf_cdf(n: int, s: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


def _cdf(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


def _ipv4(values: np.ndarray) -> list[str]:
    # First octet in 11..223 keeps clear of 0/8, 10/8 and multicast; the rest is arbitrary.
    a = 11 + values[:, 0] % 213
    return [f"{w}.{x}.{y}.{z}" for w, x, y, z in zip(a.tolist(), values[:, 1].tolist(),
                                                      values[:, 2].tolist(),
                                                      values[:, 3].tolist(), strict=True)]


class TrafficModel:
    """Draws chunks of messages. ``users`` sets the signed-in user pool (Zipf activity)."""

    def __init__(self, seed: int, *, users: int = 10_000, mix: Mix | None = None,
                 route_zipf: float = 1.2, user_zipf: float = 1.05):
        if users < 1:
            raise ValueError("users must be >= 1")
        self.seed = seed
        self.mix = mix or Mix()
        self.rng = np.random.default_rng([seed, 0])
        # Tables come from their own stream so the event stream does not depend on them.
        tables_rng = np.random.default_rng([seed, 1])

        services = catalog.SERVICES
        self.service_names = np.array([s.name for s in services], dtype=object)
        self.service_keys = [s.name.encode() for s in services]
        self.service_cdf = _cdf([s.weight for s in services])
        self.p4xx = np.array([s.p4xx for s in services])
        self.p5xx = np.array([s.p5xx for s in services])
        self.p_anonymous = np.array([s.anonymous for s in services])

        routes = [(i, r) for i, s in enumerate(services) for r in s.routes]
        self.route_service = np.array([i for i, _ in routes])
        self.route_method = np.array([r.method for _, r in routes], dtype=object)
        self.route_path = np.array([r.path for _, r in routes], dtype=object)
        self.route_mu = np.log([r.median_latency_ms for _, r in routes])
        self.route_sigma = np.array([r.latency_sigma for _, r in routes])
        self.route_bytes = np.array([r.median_bytes for _, r in routes], dtype=np.float64)
        self.route_success = np.array([r.success_status for _, r in routes], dtype=np.int64)
        self.route_is_get = self.route_method == "GET"
        # Service i's routes occupy (i, i+1] in this flat table, so one searchsorted on
        # service + u picks a route of the right service by Zipf popularity.
        self.route_flat_cdf = np.concatenate(
            [i + _zipf_cdf(len(s.routes), route_zipf) for i, s in enumerate(services)])

        host_counts = np.array([s.hosts for s in services])
        self.host_offset = np.concatenate([[0], np.cumsum(host_counts)[:-1]])
        self.host_count = host_counts
        self.host_names = np.array(
            [f"{s.name}-{k:02d}" for s in services for k in range(s.hosts)], dtype=object)

        self.status_4xx = np.array([c for c, _ in catalog.STATUS_4XX])
        self.cdf_4xx = _cdf([w for _, w in catalog.STATUS_4XX])
        self.status_5xx = np.array([c for c, _ in catalog.STATUS_5XX])
        self.cdf_5xx = _cdf([w for _, w in catalog.STATUS_5XX])

        # Users: rank r (Zipf) -> a shuffled id, a stable IP and a stable user agent.
        self.users = users
        self.user_cdf = _zipf_cdf(users, user_zipf)
        ids = tables_rng.permutation(users)
        width = max(6, len(str(users)))
        # Index 0 is the anonymous user: JSON null in the payload, None in the ground truth.
        self.user_ids = np.array([None] + [f"u{i:0{width}d}" for i in ids.tolist()],
                                 dtype=object)
        self.user_json = np.array(["null"] + [f'"{u}"' for u in self.user_ids[1:]],
                                  dtype=object)
        v4 = _ipv4(tables_rng.integers(0, 256, size=(users, 4)))
        v6_words = tables_rng.integers(0, 65536, size=(users, 3)).tolist()
        is_v6 = tables_rng.random(users) < catalog.P_IPV6
        user_ips = [f"2001:db8:{a:x}:{b:x}::{c:x}" if six else four
                    for four, (a, b, c), six in zip(v4, v6_words, is_v6.tolist(), strict=True)]
        # Anonymous traffic comes from a pool of addresses shared by many requests.
        self.anon_ip_pool = 4 * users + 1000
        anon_ips = _ipv4(tables_rng.integers(0, 256, size=(self.anon_ip_pool, 4)))
        self.ips = np.array(user_ips + anon_ips, dtype=object)

        agents = catalog.CLIENT_AGENTS + catalog.BOT_AGENTS
        self.ua_names = np.array([a for a, _ in agents], dtype=object)
        self.ua_json = np.array([json.dumps(a) for a, _ in agents], dtype=object)
        self.ua_cdf = _cdf([w for _, w in agents])
        client_cdf = _cdf([w for _, w in catalog.CLIENT_AGENTS])
        # Index 0 unused (anonymous rows sample an agent per request).
        self.user_ua = np.concatenate(
            [[0], np.searchsorted(client_cdf, tables_rng.random(users), side="right")])

    # -- drawing ---------------------------------------------------------------------------

    def draw(self, base_ts_ms: np.ndarray, min_ts_ms: int | None = None) -> Chunk:
        """Messages for the given positions in time (one per element of ``base_ts_ms``).

        Late events move back from their position by the Mix's lateness, but not before
        ``min_ts_ms`` (the start of a history range) when given.
        """
        rng = self.rng
        n = len(base_ts_ms)
        mix = self.mix

        u = rng.random(n)
        kind = np.full(n, VALID, dtype=np.int8)
        kind[u < mix.malformed + mix.duplicate + mix.late] = LATE
        kind[u < mix.malformed + mix.duplicate] = DUPLICATE
        kind[u < mix.malformed] = MALFORMED

        svc = np.searchsorted(self.service_cdf, rng.random(n), side="right")
        route = np.searchsorted(self.route_flat_cdf, svc + rng.random(n), side="right")
        host = self.host_offset[svc] + (rng.random(n) * self.host_count[svc]).astype(np.int64)

        # Status: the route's success code, or an error class at the service's error rates.
        u = rng.random(n)
        pick = rng.random(n)
        p5 = self.p5xx[svc]
        is5 = u < p5
        is4 = ~is5 & (u < p5 + self.p4xx[svc])
        not_modified = (~is5 & ~is4 & self.route_is_get[route]
                        & (u > 1.0 - catalog.P_NOT_MODIFIED))
        status = self.route_success[route].copy()
        status[is4] = self.status_4xx[np.searchsorted(self.cdf_4xx, pick[is4], side="right")]
        status[is5] = self.status_5xx[np.searchsorted(self.cdf_5xx, pick[is5], side="right")]
        status[not_modified] = 304

        latency = np.exp(self.route_mu[route] + self.route_sigma[route] * rng.standard_normal(n))
        latency[is4] *= 0.35  # rejected before doing the work
        latency[is5] *= 0.6
        timeout = status == 504
        latency[timeout] = 30_000.0 + 5_000.0 * pick[timeout]  # the gateway's deadline
        latency[not_modified] *= 0.3
        latency = np.round(latency, 3)

        size = np.exp(np.log(np.maximum(self.route_bytes[route], 1.0))
                      + 0.5 * rng.standard_normal(n))
        size[is4 | is5] = 120.0 + 60.0 * pick[is4 | is5]
        size = size.astype(np.int64)
        size[(self.route_bytes[route] == 0) | (status == 204) | (status == 304)] = 0

        anonymous = rng.random(n) < self.p_anonymous[svc]
        user = 1 + np.searchsorted(self.user_cdf, rng.random(n), side="right")
        user[anonymous] = 0
        ip = np.where(anonymous, self.users + rng.integers(0, self.anon_ip_pool, n), user - 1)
        ua = np.where(anonymous, np.searchsorted(self.ua_cdf, rng.random(n), side="right"),
                      self.user_ua[user])

        ts = np.asarray(base_ts_ms, dtype=np.int64).copy()
        late = kind == LATE
        lateness_s = np.exp(rng.uniform(np.log(mix.late_min_s), np.log(mix.late_max_s), n))
        ts[late] -= (lateness_s[late] * 1000).astype(np.int64)
        if min_ts_ms is not None:
            np.maximum(ts, min_ts_ms, out=ts)

        eid = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        eid[:, 6] = (eid[:, 6] & 0x0F) | 0x40  # UUID version 4
        eid[:, 8] = (eid[:, 8] & 0x3F) | 0x80  # RFC 4122 variant

        # A duplicate re-sends a recent earlier message of this chunk byte for byte, as a
        # shipper retrying after a lost acknowledgement would.
        dup_rows = np.flatnonzero(kind == DUPLICATE)
        if len(dup_rows):
            sources = np.flatnonzero((kind == VALID) | (kind == LATE))
            before = np.searchsorted(sources, dup_rows)
            back = np.minimum(rng.exponential(32.0, len(dup_rows)).astype(np.int64),
                              np.maximum(before - 1, 0))
            orphan = before == 0  # nothing earlier to repeat: send a fresh valid event
            kind[dup_rows[orphan]] = VALID
            dup_rows, src = dup_rows[~orphan], sources[(before - 1 - back)[~orphan]]
            for column in (svc, route, host, status, latency, size, user, ip, ua, ts, eid):
                column[dup_rows] = column[src]

        hexed = eid.tobytes().hex()
        event_ids = [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
                     for h in (hexed[i:i + 32] for i in range(0, 32 * n, 32))]
        ts_text = np.datetime_as_string(ts.astype("datetime64[ms]"), unit="ms",
                                        timezone="UTC").tolist()
        services = self.service_names[svc].tolist()
        hosts = self.host_names[host].tolist()
        methods = self.route_method[route].tolist()
        paths = self.route_path[route].tolist()
        statuses = status.tolist()
        latencies = latency.tolist()
        sizes = size.tolist()
        ips = self.ips[ip].tolist()
        template = _TEMPLATE
        payloads = [
            (template % row).encode()
            for row in zip(event_ids, ts_text, services, hosts, methods, paths, statuses,
                           latencies, sizes, self.user_json[user].tolist(), ips,
                           self.ua_json[ua].tolist(), strict=True)
        ]
        fields = {
            "event_id": event_ids, "ts": ts_text, "service": services, "host": hosts,
            "method": methods, "path": paths, "status": statuses, "latency_ms": latencies,
            "bytes": sizes, "user_id": self.user_ids[user].tolist(), "ip": ips,
            "user_agent": self.ua_names[ua].tolist(),
        }

        malformed_type: dict[int, str] = {}
        expected_reason: dict[int, str] = {}
        bad_rows = np.flatnonzero(kind == MALFORMED).tolist()
        variants = rng.integers(0, len(MALFORMED_VARIANTS), len(bad_rows)).tolist()
        pick_field = rng.random(len(bad_rows)).tolist()
        for row, v, p in zip(bad_rows, variants, pick_field, strict=True):
            name, build = MALFORMED_VARIANTS[v]
            event = {k: fields[k][row] for k in fields}
            raw, reason = build(event, payloads[row], p)
            payloads[row] = raw
            malformed_type[row] = name
            expected_reason[row] = reason

        keys = [self.service_keys[i] for i in svc.tolist()]
        return Chunk(kind, ts, keys, payloads, fields, malformed_type, expected_reason)


# -- malformed messages ------------------------------------------------------------------
# Each builder returns (raw bytes, expected reason). Reasons use lae.schema's closed vocabulary
# ("<problem>" or "<problem>:<field>"); a unit test checks them against lae.schema.validate.

REQUIRED = ("event_id", "ts", "service", "host", "method", "path", "status", "latency_ms",
            "bytes")


def _dumps(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def _pick(options, p: float):
    return options[min(int(p * len(options)), len(options) - 1)]


def _truncated(event, payload, p):
    return payload[: max(1, int(len(payload) * (0.2 + 0.6 * p)))], "invalid_json"


def _not_utf8(event, payload, p):
    return b"\xff\xfe" + payload[2:], "invalid_utf8"


def _empty(event, payload, p):
    return b"", "invalid_json"


def _not_object(event, payload, p):
    return _pick([b"[" + payload + b"]", b'"' + event["event_id"].encode() + b'"', b"42",
                  b"null"], p), "not_an_object"


def _missing_field(event, payload, p):
    name = _pick(REQUIRED, p)
    del event[name]
    return _dumps(event), f"missing_field:{name}"


def _bad_type(event, payload, p):
    name, value = _pick([("status", "two hundred"), ("latency_ms", "fast"),
                         ("bytes", "12kb"), ("event_id", 12345), ("service", ["search"]),
                         ("status", 200.5)], p)
    event[name] = value
    return _dumps(event), f"bad_type:{name}"


def _out_of_range(event, payload, p):
    name, value = _pick([("status", 999), ("status", 42), ("bytes", -1),
                         ("latency_ms", -3.5)], p)
    event[name] = value
    return _dumps(event), f"out_of_range:{name}"


def _bad_format(event, payload, p):
    name, value = _pick([("ts", "25/Nov/2026:10:00:00"), ("ts", event["ts"][:19]),  # no zone
                         ("service", "Checkout Service!"), ("ip", "999.1.2.3"),
                         ("method", "get"), ("path", "v1/no-leading-slash")], p)
    event[name] = value
    return _dumps(event), f"bad_format:{name}"


def _unknown_field(event, payload, p):
    event["debug"] = True
    return _dumps(event), "unknown_field"


def _garbage_line(event, payload, p):
    # Text that is neither JSON nor a combined-log line (what a misconfigured shipper sends).
    return _pick([b"%%% log rotated %%%", b"<html><body>502 Bad Gateway</body></html>",
                  b'127.0.0.1 - - [not a date] "GET / HTTP/1.1" abc -'], p), "invalid_json"


MALFORMED_VARIANTS = (
    ("truncated_json", _truncated),
    ("not_utf8", _not_utf8),
    ("empty", _empty),
    ("not_object", _not_object),
    ("missing_field", _missing_field),
    ("bad_type", _bad_type),
    ("out_of_range", _out_of_range),
    ("bad_format", _bad_format),
    ("unknown_field", _unknown_field),
    ("garbage_line", _garbage_line),
)
