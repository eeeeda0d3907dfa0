"""The query API's input validation and static files, without Cassandra: every 400 here is
decided before the first query (the backend would fail loudly if it were reached, since no
Cassandra listens on the port below)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from lae.config import get_settings
from lae.serving.api import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # Port 1: nothing listens there, so a request that got past validation would error.
    settings = replace(get_settings(), cassandra_port=1,
                       state_dir=tmp_path_factory.mktemp("state"))
    return TestClient(create_app(settings), raise_server_exceptions=False)


GOOD = {"service": "checkout", "from": "2026-11-25T00:00:00Z", "to": "2026-11-26T00:00:00Z"}


@pytest.mark.parametrize(("change", "reason"), [
    ({"service": "Bad Service!"}, "service"),
    ({"service": "x" * 65}, "service"),
    ({"from": "yesterday"}, "RFC 3339"),
    ({"from": "2026-11-25T00:00:00"}, "time zone"),
    ({"to": "2026-11-24T00:00:00Z"}, "after"),
    ({"to": "2026-12-09T00:00:00Z"}, "too wide"),
    ({"granularity": "second"}, "granularity"),
    ({"path": "p" * 600}, "path"),
])
def test_bad_input_is_a_400_with_a_reason(client, change, reason):
    response = client.get("/v1/metrics", params={**GOOD, **change})
    assert response.status_code == 400, response.text
    assert reason in response.text


def test_missing_parameter_is_a_400(client):
    response = client.get("/v1/metrics", params={"service": "checkout"})
    assert response.status_code == 400 and "from" in response.text


def test_hour_granularity_allows_a_quarter(client):
    params = {**GOOD, "to": "2026-12-09T00:00:00Z", "granularity": "hour"}
    # Valid, so it reaches Cassandra, which is not there: 503 (store unavailable), not 400.
    response = client.get("/v1/metrics", params=params)
    assert response.status_code == 503 and response.headers["retry-after"] == "5", response.text


def test_openapi_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/metrics", "/v1/services", "/v1/health"} <= set(paths)
    params = {p["name"] for p in paths["/v1/metrics"]["get"]["parameters"]}
    assert params == {"service", "from", "to", "granularity", "path"}


def test_dashboard_and_plotly_are_served_locally(client):
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "static/plotly.min.js" in page.text
    assert "cdn" not in page.text.lower() and "http" not in page.text.split("<body>")[1]
    js = client.get("/dashboard/static/plotly.min.js")
    assert js.status_code == 200 and "plotly" in js.text[:2000].lower() and len(js.content) > 1e6
    assert client.get("/dashboard/static/dashboard.js").status_code == 200
    assert client.get("/dashboard/static/../api.py").status_code in (400, 404)


def test_alerts_endpoint_reads_the_alerts_file(client):
    from lae.alerts import alerts_file
    from lae.serving.status import ALERTS_FILE_NAME

    settings = client.app.state.backend.settings
    assert alerts_file(settings).name == ALERTS_FILE_NAME
    alerts_file(settings).write_text('{"title": "one", "severity": "warning"}\nnot json\n'
                                     '{"title": "two", "severity": "critical"}\n')
    assert [a["title"] for a in client.get("/v1/alerts").json()["alerts"]] == ["two", "one"]


def test_airflow_plugin_mounts_the_app_and_a_nav_entry():
    import importlib.util

    from fastapi import FastAPI

    from lae.config import get_settings

    path = get_settings().home / "plugins" / "lae_views.py"
    spec = importlib.util.spec_from_file_location("lae_views_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.LaeViewsPlugin
    (app,) = plugin.fastapi_apps
    assert isinstance(app["app"], FastAPI) and app["url_prefix"] == "/lae"
    # Airflow refuses these prefixes for plugin apps (airflow.api_fastapi.app).
    assert not any(app["url_prefix"].startswith(p) for p in
                   ("/api/v2", "/ui", "/execution", "/auth", "/pluginsv2"))
    (view,) = plugin.external_views
    assert view["href"] == "/lae/dashboard/" and view["destination"] == "nav"
    assert view["url_route"] == "lae-views"
