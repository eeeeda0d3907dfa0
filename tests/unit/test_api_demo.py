"""Demo routes: plausible behaviour that tests can force (status) and reproduce (seed).

No Kafka here: the demo's behaviour is independent of where its access logs go, so a no-op
emitter stands in for the producer.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from lae.api.app import create_app
from lae.api.emitter import NullEmitter
from lae.api.settings import ApiSettings


class NoSink:
    def publish(self, batch, timeout):
        raise AssertionError("not used here")


def _client(**settings) -> TestClient:
    base = {"latency_scale": 0, "error_rate": 0}
    return TestClient(create_app(ApiSettings(**{**base, **settings}), emitter=NullEmitter(),
                                 sink=NoSink()))


def test_routes_answer_plausibly():
    with _client() as c:
        assert c.get("/v1/orders/5").json()["id"] == 5
        assert c.get("/v1/orders/30").status_code == 404
        assert c.get("/v1/users/1001").status_code == 404
        assert c.post("/v1/orders", json={"items": ["a", "b"]}).status_code == 201
        assert c.post("/v1/orders", json={"items": []}).status_code == 422
        assert c.get("/v1/search").status_code == 422
        assert len(c.get("/v1/search", params={"q": "tea"}).json()["hits"]) == 5
        assert c.get("/health").json()["status"] == "ok"


def test_force_status():
    with _client() as c:
        for status in (400, 404, 429, 500, 503):
            assert c.get("/v1/orders/1", params={"force_status": status}).status_code == status
        assert c.get("/v1/orders/1", params={"force_status": 200}).status_code == 200


def test_error_rate_is_seeded_and_reproducible():
    def statuses(seed):
        with _client(seed=seed, error_rate=0.3) as c:
            return [c.get(f"/v1/users/{i}").status_code for i in range(1, 101)]

    first = statuses(7)
    assert first == statuses(7)
    assert 10 < first.count(500) < 50  # ~30 of 100
    assert set(first) == {200, 500}
