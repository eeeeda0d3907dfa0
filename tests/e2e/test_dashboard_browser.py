"""The dashboard in a real browser (Playwright + Debian's chromium, headless): standalone under
the query API, and inside the Airflow UI through plugins/lae_views.py.

Data: the Airflow api-server reads the stack's own keyspace (``LAE_KEYSPACE``), so this test
writes realtime rows for a service of its own (``e2e-dashboard``, last three hours, computed
with lae.views' histogram scheme and real HLL sketches) there, with prepared statements, and
deletes them afterwards. It does not touch W or any other service's rows. Screenshots go to
``artifacts/`` (gitignored).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lae.views import N_BUCKETS, bucket_index

CHROMIUM = Path("/usr/bin/chromium")
SERVICE = "e2e-dashboard"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHARTS = ("chart-requests", "chart-latency", "chart-users")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} "
                       "(Debian package chromium; scripts/install-browser.sh)"),
]


def _rows(now: datetime) -> list[tuple]:
    import datasketches

    rng = random.Random(3)  # noqa: S311 - test data
    out = []
    for i in range(180):
        minute = (now - timedelta(minutes=i)).replace(second=0, microsecond=0)
        for status_class in ("2xx", "5xx"):
            n = rng.randint(5, 40) if status_class == "2xx" else rng.randint(0, 3)
            if n == 0:
                continue
            lat = [rng.uniform(1, 400) for _ in range(n)]
            hist = [0] * N_BUCKETS
            for x in lat:
                hist[bucket_index(x)] += 1
            sketch = datasketches.hll_sketch(12)
            for _ in range(n):
                sketch.update(f"u{rng.randrange(50)}")
            out.append((SERVICE, minute.date(), minute, "/v1/demo", status_class, n,
                        n if status_class == "5xx" else 0, 0, 100 * n, sum(lat), max(lat), hist,
                        sketch.serialize_compact()))
    return out


@pytest.fixture(scope="module")
def dashboard_rows(settings, cassandra_service):
    from lae.cassandra import connect

    session, ks = connect(settings), settings.keyspace
    minute_cols = ("service, day, minute, path, status_class, requests, errors, client_errors, "
                   "bytes, latency_sum, latency_max, latency_hist, users_hll")
    insert = session.prepare(f"INSERT INTO {ks}.rt_metrics_minute ({minute_cols}) "  # noqa: S608 - table/column names are constants; values are bound
                             f"VALUES ({', '.join(['?'] * 13)}) USING TTL 86400")
    hour_cols = "service, day, hour, path, status_class, requests"
    hour = session.prepare(f"INSERT INTO {ks}.rt_metrics_hour ({hour_cols}) "  # noqa: S608 - table/column names are constants; values are bound
                           "VALUES (?, ?, ?, ?, ?, ?) USING TTL 86400")
    rows = _rows(datetime.now(UTC))
    for row in rows:
        session.execute(insert, row)
    # One hour row so the service is listed (/v1/services reads the hour tables' partitions).
    session.execute(hour, (SERVICE, rows[0][1], rows[0][2].replace(minute=0), "/v1/demo",
                           "2xx", rows[0][5]))
    yield rows
    for day in {r[1] for r in rows}:
        for table in ("rt_metrics_minute", "rt_metrics_hour"):
            session.execute(f"DELETE FROM {ks}.{table} WHERE service = %s AND day = %s",  # noqa: S608 - table/column names are constants; values are bound
                            (SERVICE, day))
    session.cluster.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def _wait_for_charts(frame, timeout_ms: int = 120_000) -> dict[str, int]:
    # data-loaded: every panel's request has settled (charts, health facts, drift, alerts).
    frame.wait_for_function("document.body.dataset.loaded === 'true'", timeout=timeout_ms)
    frame.wait_for_function(
        "ids => ids.every(id => Number(document.getElementById(id).dataset.points) > 0)",
        arg=list(CHARTS), timeout=timeout_ms)
    counts = frame.evaluate(
        "ids => Object.fromEntries(ids.map(id => [id, document.getElementById(id).data"
        ".reduce((n, t) => n + (t.x ? t.x.length : 0), 0)]))", list(CHARTS))
    return counts


def test_dashboard_standalone_has_data_points(settings, dashboard_rows, browser):
    from tests.integration.test_serving_stack import ApiServer

    ARTIFACTS.mkdir(exist_ok=True)
    with ApiServer(settings) as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(120_000)  # a busy 2-core machine; failures still fail
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server.url}/dashboard/?service={SERVICE}&range=6h")
        counts = _wait_for_charts(page)
        # Plotly's own graph objects hold the points (not only our data-points attribute).
        assert all(n > 0 for n in counts.values()), counts
        assert counts["chart-requests"] >= 150, counts  # ~180 minutes of requests drawn
        assert page.locator("#facts").inner_text()
        page.screenshot(path=str(ARTIFACTS / "dashboard-standalone.png"), full_page=True)
        assert not errors, errors
        page.close()


# In CI this runs seconds after tests/e2e/test_airflow_ui.py opened the same dashboard in the
# api-server, before this module's rows existed. The API used to cache the service list for
# 30 s and the page read it only once, so the page here listed no e2e-dashboard whenever the
# gap was under 30 s (one CI run of two). Now the list is cached for 5 s and re-read on every
# refresh (lae.serving.api, static/dashboard.js), and this test gates.
def test_dashboard_inside_airflow_ui(settings, dashboard_rows, browser, airflow_running):
    from lae.stack.airflow import admin_credentials

    ARTIFACTS.mkdir(exist_ok=True)
    user, password = admin_credentials(settings)
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    page.set_default_timeout(120_000)
    page.goto(f"{settings.airflow_url}/", timeout=120_000)
    page.locator("input[name='username']").fill(user, timeout=120_000)
    page.locator("input[name='password']").fill(password)
    page.locator("button[type='submit']").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=120_000)
    # The nav entry the plugin adds, then its page inside the UI.
    page.get_by_role("link", name="LAE views").or_(page.get_by_text("LAE views")).first.wait_for(
        timeout=120_000)
    page.goto(f"{settings.airflow_url}/plugin/lae-views", timeout=120_000)
    frame_el = page.locator("iframe").first
    frame_el.wait_for(timeout=120_000)
    assert frame_el.get_attribute("src").rstrip("/").endswith("/lae/dashboard")
    frame = frame_el.element_handle().content_frame()
    assert frame.url.endswith("/lae/dashboard/"), frame.url
    frame.locator("#service option[value='e2e-dashboard']").wait_for(state="attached",
                                                                     timeout=120_000)
    frame.locator("#service").select_option(SERVICE)
    frame.locator("#range").select_option("6h")
    counts = _wait_for_charts(frame)
    assert counts["chart-requests"] >= 150, counts
    page.screenshot(path=str(ARTIFACTS / "dashboard-in-airflow.png"), full_page=True)
    page.close()
