"""The LAE example API server: demo routes + access-log middleware + the ingest endpoint.

``create_app`` takes its emitter (access-log events) and sink (POST /v1/logs) as arguments so
that the benchmark can run the same app with a no-op emitter, and unit tests with fakes; by
default both write to the real Kafka through lae.api.kafka_io.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from lae.api import demo_routes, ingest
from lae.api.emitter import Emitter
from lae.api.middleware import AccessLogMiddleware
from lae.api.settings import ApiSettings
from lae.config import Settings, get_settings


def create_app(
    api_settings: ApiSettings | None = None,
    emitter: Emitter | None = None,
    sink: ingest.Sink | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    api_settings = api_settings or ApiSettings.from_env()
    settings = settings or get_settings()
    if emitter is None or sink is None:
        from lae.api import kafka_io

        if emitter is None:
            emitter = kafka_io.kafka_emitter(settings, api_settings.emit_queue_size)
        if sink is None:
            sink = kafka_io.KafkaSink(settings)
    ingest_state = ingest.Ingest(api_settings, sink)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Emitter and pool drain into their producers, which flush as they close.
        emitter.close()
        ingest_state.close()
        close_sink = getattr(sink, "close", None)
        if close_sink is not None:
            close_sink()

    app = FastAPI(title="LAE example API", version="1", lifespan=lifespan)
    app.state.settings = api_settings
    app.state.emitter = emitter
    app.state.ingest = ingest_state
    app.state.demo = demo_routes.Demo(api_settings)
    app.include_router(demo_routes.router)
    app.include_router(ingest.router)

    @app.get("/metrics")
    async def metrics(request: Request) -> dict:
        return {"emitter": request.app.state.emitter.stats(),
                "ingest": dict(request.app.state.ingest.counts)}

    app.add_middleware(AccessLogMiddleware, emitter=emitter, service=api_settings.service)
    return app
