"""The query API (`lae serve`) and its dashboard; the Airflow plugin mounts the same app.

GET /v1/metrics   one service's merged series (batch before W, realtime from W), per bucket:
                  requests, errors, error rate, bytes, p50/p95/p99, unique users, source
GET /v1/services  services with view rows
GET /v1/health    W, stream heartbeat age and lag, last drift, last archive run
GET /v1/drift     drift per day and service (recent days), GET /v1/alerts: the alerts file
GET /dashboard/   the dashboard page (plotly.js from the installed plotly wheel, no CDN)

Cassandra is reached lazily on the first request (a mounted sub-app gets no lifespan events)
and every statement is prepared (lae.serving.store). Bad input is a 400 with a reason.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from lae.config import Settings, get_settings
from lae.serving.cache import DayCache
from lae.serving.merge import WIDTHS

SERVICE_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
# The widest range one request may ask for: a week of minutes is ~10k points per service,
# already more than a chart can show; hours go to 92 days.
MAX_RANGE = {"minute": timedelta(days=7), "hour": timedelta(days=92)}
STATIC = Path(__file__).parent / "static"
# How stale W and the service list may be (seconds): they change when a batch is published or
# a service sends its first request, and every dashboard poll asks for them. Short on purpose:
# the list was once cached for 30 s, and a page opened in that window never showed a service
# whose first rows had just arrived (the dashboard now also re-reads the list on each refresh).
W_TTL_S = 5.0
SERVICES_TTL_S = 5.0


class BadRequest(ValueError):
    """Input the API refuses with a 400."""


def parse_ts(name: str, raw: str) -> datetime:
    try:
        ts = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise BadRequest(f"{name}: not an RFC 3339 timestamp: {raw!r}") from exc
    if ts.tzinfo is None:
        raise BadRequest(f"{name}: needs a time zone (e.g. 2026-11-26T00:00:00Z): {raw!r}")
    return ts.astimezone(UTC)


def check_range(start: datetime, end: datetime, granularity: str) -> None:
    if end <= start:
        raise BadRequest("to must be after from")
    if end - start > MAX_RANGE[granularity]:
        raise BadRequest(f"range too wide for granularity={granularity}: at most "
                         f"{MAX_RANGE[granularity]}, asked {end - start}")


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the installed plotly wheel."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


class Backend:
    """The Cassandra session and prepared statements, opened on first use, shared by threads."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._store = None
        self._cache: dict[str, tuple[float, Any]] = {}
        # Points of published days wholly before W (lae.serving.query.read_points): a minute
        # day is ~0.4 MB of JSON, so the default 64 days stay well under 30 MB.
        self.days = (DayCache(max_entries=settings.serve_day_cache)
                     if settings.serve_day_cache > 0 else None)

    @property
    def store(self):
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from lae.cassandra import connect
                    from lae.serving.store import ViewStore

                    self._store = ViewStore(connect(self.settings), self.settings.keyspace)
        return self._store

    def cached(self, key: str, ttl: float, compute):
        """Slow-changing answers (W, the service list) cached for a few seconds."""
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < ttl:
            return hit[1]
        value = compute()
        self._cache[key] = (now, value)
        return value

    def close(self) -> None:
        if self._store is not None:
            self._store.session.cluster.shutdown()
            self._store = None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    backend = Backend(settings)
    app = FastAPI(title="LAE query API",
                  description="Merged batch + realtime API metrics (lae.serving).",
                  version="1")
    app.state.backend = backend

    @app.exception_handler(BadRequest)
    async def _bad_request(_: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # A missing or malformed parameter is a bad request like any other (not FastAPI's 422).
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=400)

    @app.exception_handler(Exception)
    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        # Cassandra timing out or unreachable is the store's state, not a bug here: 503 with a
        # Retry-After (matched by module so this file need not import the driver).
        if type(exc).__module__.split(".")[0] == "cassandra":
            return JSONResponse({"detail": f"view store unavailable: {type(exc).__name__}"},
                                status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/health", include_in_schema=False)
    def health_plain() -> dict:
        return {"status": "ok"}

    @app.get("/v1/metrics", response_model=None)
    def metrics(
        service: Annotated[str, Query(description="service name")],
        from_: Annotated[str, Query(alias="from", description="RFC 3339, inclusive")],
        to: Annotated[str, Query(description="RFC 3339, exclusive")],
        granularity: Annotated[str, Query(pattern="^(minute|hour)$")] = "minute",
        path: Annotated[str | None, Query(max_length=512)] = None,
    ) -> Response:
        """Buckets whose start is in [from, to); batch before W, realtime from W on.

        JSON object: service, granularity, path, from, to, w, bucket_seconds,
        missing_batch_days, straddling, and points (start, source, requests, errors,
        client_errors, error_rate, bytes, latency_avg_ms, p50_ms, p95_ms, p99_ms,
        unique_users), in time order."""
        from lae.serving.query import read_points

        if not SERVICE_RE.match(service):
            raise BadRequest("service must be 1-64 characters of [a-z0-9_.-]")
        start, end = parse_ts("from", from_), parse_ts("to", to)
        check_range(start, end, granularity)
        store = backend.store
        w, published = backend.cached("pointers", W_TTL_S, lambda: (store.watermark(),
                                                                   store.all_published()))
        answer = read_points(store, service, start, end, granularity, path, w, published,
                             backend.days)
        head = json.dumps({
            "service": service, "granularity": granularity, "path": path,
            "from": _iso(start), "to": _iso(end), "w": _iso(w),
            "bucket_seconds": int(WIDTHS[granularity].total_seconds()),
            "missing_batch_days": [d.isoformat() for d in answer.missing_batch_days],
            "straddling": [_iso(t) for t in answer.straddling],
        }, separators=(",", ":"))
        # The points are JSON already (a cached day is encoded once): spliced in, not
        # re-encoded through FastAPI's jsonable_encoder, which cost more than the sums.
        body = f'{head[:-1]},"points":[{",".join(answer.points.json)}]}}'
        return Response(body, media_type="application/json")

    @app.get("/v1/services")
    def services() -> dict:
        names = backend.cached("services", SERVICES_TTL_S, backend.store.services)
        return {"services": names}

    @app.get("/v1/health")
    def health() -> dict:
        from lae.serving.status import health_report

        return health_report(backend.store, settings)

    @app.get("/v1/drift")
    def drift(days: Annotated[int, Query(ge=1, le=92)] = 14) -> dict:
        from lae.serving.status import drift_rows

        return {"drift": drift_rows(backend.store, days)}

    @app.get("/v1/alerts")
    def alerts(limit: Annotated[int, Query(ge=1, le=500)] = 20) -> dict:
        from lae.serving.status import recent_alerts

        return {"alerts": recent_alerts(settings, limit)}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("dashboard/")

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_no_slash() -> RedirectResponse:
        # Relative asset and API URLs in the page need the trailing slash.
        return RedirectResponse("dashboard/")

    @app.get("/dashboard/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    @app.get("/dashboard/static/{name}", include_in_schema=False)
    def dashboard_static(name: str) -> FileResponse:
        files = {"plotly.min.js": plotly_js(), "dashboard.js": STATIC / "dashboard.js",
                 "dashboard.css": STATIC / "dashboard.css"}
        if name not in files:
            raise BadRequest(f"no static file {name!r}")
        return FileResponse(files[name], headers={"Cache-Control": "max-age=3600"})

    return app


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def run(args) -> int:
    """``lae serve``: uvicorn on 127.0.0.1 (LAE_HOST) by default."""
    import uvicorn

    settings = get_settings()
    # access_log off: one log line per dashboard poll is noise, and costs time under load.
    uvicorn.run(create_app(settings), host=args.bind or settings.host,
                port=args.port or settings.serve_port, log_level=args.log_level,
                access_log=False)
    return 0
