"""The demo API that LAE observes: orders, users, search and a health check.

Its behaviour is plausible rather than real: a lognormal simulated latency per route, a
deterministic share of 404s (so the views have errors to count), random 500s at
``error_rate`` from a seeded generator, and ``?force_status=NNN`` so a test can get exactly the
status it wants.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from lae.api.settings import ApiSettings

router = APIRouter()

# Median simulated latency of each route, in seconds (before latency_scale).
_BASE_LATENCY_S = {"orders": 0.005, "users": 0.003, "search": 0.020}


class Demo:
    """Per-app demo state: one seeded generator, so a seeded run is reproducible."""

    def __init__(self, settings: ApiSettings):
        self.settings = settings
        self.rng = random.Random(settings.seed)  # noqa: S311 - demo traffic, not cryptography

    async def behave(self, route: str, force_status: int | None) -> None:
        if force_status is not None and force_status >= 400:
            raise HTTPException(status_code=force_status, detail="forced by force_status")
        scale = self.settings.latency_scale
        if scale > 0:
            await asyncio.sleep(_BASE_LATENCY_S[route] * scale * self.rng.lognormvariate(0, 0.6))
        if self.rng.random() < self.settings.error_rate:
            raise HTTPException(status_code=500, detail="simulated internal error")


def _demo(request: Request) -> Demo:
    return request.app.state.demo


ForceStatus = Annotated[int | None, Query(ge=100, le=599, description="answer with this status")]
DemoDep = Annotated[Demo, Depends(_demo)]


class OrderIn(BaseModel):
    items: list[str] = Field(min_length=1, max_length=100)
    user_id: str | None = None


@router.get("/health")
async def health(request: Request) -> dict:
    return {"status": "ok", "emitter": request.app.state.emitter.stats()}


@router.get("/v1/orders/{id}")
async def get_order(id: int, demo: DemoDep, force_status: ForceStatus = None) -> dict:
    await demo.behave("orders", force_status)
    # Every tenth id "does not exist": a steady, predictable share of 404s.
    if id % 10 == 0:
        raise HTTPException(status_code=404, detail="order not found")
    return {"id": id, "status": "shipped", "items": ["sku-1", "sku-2"], "total_cents": 1999}


@router.post("/v1/orders", status_code=201)
async def create_order(order: OrderIn, demo: DemoDep, force_status: ForceStatus = None) -> dict:
    await demo.behave("orders", force_status)
    return {"id": str(uuid.uuid4()), "items": order.items, "status": "created"}


@router.get("/v1/users/{id}")
async def get_user(id: int, demo: DemoDep, force_status: ForceStatus = None) -> dict:
    await demo.behave("users", force_status)
    if id > 1000:
        raise HTTPException(status_code=404, detail="user not found")
    return {"id": id, "name": f"user-{id}"}


@router.get("/v1/search")
async def search(
    demo: DemoDep,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    force_status: ForceStatus = None,
) -> dict:
    await demo.behave("search", force_status)
    hits = [{"id": demo.rng.randrange(1, 10_000), "title": f"{q} #{i}"} for i in range(5)]
    return {"q": q, "hits": hits}
