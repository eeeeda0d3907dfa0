"""The Airflow UI in a real browser (Playwright driving Debian's chromium, headless), the way a
data engineer uses it: log in with the generated password, see every LAE DAG and no import
errors, trigger ``batch_recompute`` for a day and watch it succeed, backfill two days from
the Trigger dialog and watch both succeed, open the LAE dashboard from the navigation.

Data: small archive-layout master files for three old days (lae.archive's layout, written
like tests/integration/test_batch_recompute.py does) plus an archive manifest newer than those
days, so the runs' sensor passes and their Spark job has rows to recompute. The runs go through
the real scheduler, LocalExecutor, Spark and Cassandra of the local stack. Screenshots go to
``artifacts/`` (gitignored).
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from lae.airflow_api import AirflowApi

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DAG_ID = "batch_recompute"
LAE_DAGS = sorted(p.stem for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
TRIGGER_DAY = date(2021, 7, 1)
BACKFILL_DAYS = [date(2021, 7, 2), date(2021, 7, 3)]
MANIFEST_KEY = "manifests/archive/e2e-airflow-ui.json"
# Spark on a loaded 2-core machine: a day's recompute took minutes, not seconds.
RUN_TIMEOUT_S = 900
UI_TIMEOUT_MS = 120_000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} "
                       "(Debian package chromium; run scripts/install-browser.sh as root)"),
]


@pytest.fixture(scope="module")
def master_days(settings, s3_service):
    """Master-dataset files for the test's days and a manifest that covers them."""
    from lae.s3 import s3_client
    from tests.integration.test_batch_recompute import _archive, _events

    client = s3_client(settings)
    try:
        client.create_bucket(Bucket=settings.bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    placed = []
    for day in [TRIGGER_DAY, *BACKFILL_DAYS]:
        rng = random.Random(day.toordinal())  # noqa: S311 - reproducible test data
        placed += [(rng.randrange(2), e) for e in _events(day, 120, rng)]
    _archive(client, settings.bucket, placed)
    client.put_object(Bucket=settings.bucket, Key=MANIFEST_KEY, Body=b"{}")
    return len(placed)


@pytest.fixture(scope="module")
def api(settings, airflow_service) -> AirflowApi:
    api = AirflowApi.login(settings)
    api.timeout = 120  # the api-server answers slowly while Spark and the scheduler share 2 cores
    api.wait_for_dag(DAG_ID, timeout=300)
    return api


@pytest.fixture(scope="module")
def dag_ready(api, master_days, cassandra_service):  # the recompute writes to Cassandra
    """``batch_recompute`` unpaused, with no other manual or scheduled run in its one slot.

    Unpausing (here, or the Trigger dialog's checkbox) makes the scheduler create the latest
    scheduled run; on this stack that run's day has no archive, so its sensor would hold the
    DAG's single active-run slot for hours ahead of the run this test triggers. Such runs are
    marked failed; backfill runs have their own limit and are left alone.
    """
    import time

    api.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the scheduler has created what it will create
        _, dag = api.request("GET", f"/api/v2/dags/{DAG_ID}")
        if dag.get("next_dagrun_run_after") and dag["next_dagrun_run_after"] > _now_iso():
            break
        time.sleep(3)
    for run in _runs(api, state=("queued", "running")):
        if run["run_type"] in ("scheduled", "manual"):
            # Failed, not deleted: see tests/integration/test_alerts.py (orphaned deadlines).
            api.request("PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}",
                        {"state": "failed"})


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def _runs(api: AirflowApi, state=None) -> list[dict]:
    import httpx

    query = "?limit=100&order_by=-run_after"
    if state:
        query += "".join(f"&state={s}" for s in state)
    status, body = None, "no answer"
    for _ in range(10):  # a busy api-server on SQLite sometimes answers after the timeout
        try:
            status, body = api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns{query}")
        except httpx.TimeoutException:
            continue
        if status < 500:
            break
    assert status == 200, body
    return body["dag_runs"]


def _wait_for_runs(api: AirflowApi, match, count: int, what: str) -> list[dict]:
    import time

    deadline = time.monotonic() + RUN_TIMEOUT_S * count
    while True:
        runs = [r for r in _runs(api) if match(r)]
        if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {runs}")
        time.sleep(5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, settings, airflow_service):
    """One logged-in page for the module (a login costs seconds on a loaded machine)."""
    from lae.stack.airflow import admin_credentials

    user, password = admin_credentials(settings)
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(f"{settings.airflow_url}/dags")
    # Anonymous: the UI sends the visitor to the login form, whatever page was asked for.
    page.locator("input[name='username']").wait_for()
    assert "/auth/login" in page.url, page.url
    page.screenshot(path=str(ARTIFACTS / "airflow-login.png"))
    page.locator("input[name='username']").fill(user)
    page.locator("input[name='password']").fill(password)
    page.locator("button[type='submit']").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    yield page
    page.close()


def test_dag_list_shows_every_lae_dag_and_no_import_errors(page, settings, api):
    page.goto(f"{settings.airflow_url}/dags")
    for dag_id in LAE_DAGS:
        page.get_by_role("link", name=dag_id, exact=True).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "airflow-dag-list.png"), full_page=True)
    # The home page shows a "Dag Import Error(s)" button when any file failed to import.
    page.goto(f"{settings.airflow_url}/")
    page.get_by_text("Dag", exact=False).first.wait_for()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("Dag Import Error", exact=False).count() == 0
    page.screenshot(path=str(ARTIFACTS / "airflow-home.png"), full_page=True)
    status, errors = api.request("GET", "/api/v2/importErrors")
    assert status == 200 and errors["total_entries"] == 0, errors


def _open_trigger_dialog(page, settings):
    page.goto(f"{settings.airflow_url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Trigger Dag").first.wait_for()
    return dialog


def _see_run_succeeded(page, settings, run: dict, shot: str) -> None:
    page.goto(f"{settings.airflow_url}/dags/{DAG_ID}/runs/{run['dag_run_id']}")
    page.get_by_text(run["dag_run_id"], exact=False).first.wait_for()
    page.get_by_text("success", exact=False).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)


def test_trigger_batch_recompute_for_a_day_from_the_ui(page, settings, api, dag_ready):
    before = {r["dag_run_id"] for r in _runs(api)}
    dialog = _open_trigger_dialog(page, settings)
    _fill_param(dialog, "day", TRIGGER_DAY.isoformat())
    page.screenshot(path=str(ARTIFACTS / "airflow-trigger-dialog.png"))
    dialog.get_by_role("button", name="Trigger").last.click()

    def ours(run):
        return (run["dag_run_id"] not in before and run["run_type"] == "manual"
                and (run.get("conf") or {}).get("day") == TRIGGER_DAY.isoformat())

    (run,) = _wait_for_runs(api, ours, 1, f"the run triggered for {TRIGGER_DAY}")
    assert run["state"] == "success", (run, api.task_states(DAG_ID, run["dag_run_id"]))
    _see_run_succeeded(page, settings, run, "airflow-triggered-run.png")


def _fill_param(dialog, name: str, value: str) -> None:
    """Type into the Run Parameters form's field for param ``name``."""
    dialog.locator(f"[name='element_{name}']").first.fill(value)


def test_backfill_two_days_from_the_ui(page, settings, api, dag_ready):
    before = {r["dag_run_id"] for r in _runs(api)}
    dialog = _open_trigger_dialog(page, settings)
    dialog.get_by_text("Backfill", exact=True).click()
    first, last = BACKFILL_DAYS[0], BACKFILL_DAYS[-1]
    _fill_date(page, dialog, 0, first)
    _fill_date(page, dialog, 1, last + timedelta(days=1))  # logical dates are 02:00: end 00:00
    dialog.locator("input[name='max_active_runs']").fill("1")  # one Spark job at a time
    dialog.get_by_text("2 runs will be triggered.").wait_for()  # the dialog's own dry run
    page.screenshot(path=str(ARTIFACTS / "airflow-backfill-dialog.png"))
    dialog.get_by_role("button", name="Run Backfill").click()

    wanted = {d.isoformat() for d in BACKFILL_DAYS}

    def ours(run):
        return (run["dag_run_id"] not in before and run["run_type"] == "backfill"
                and run["logical_date"][:10] in wanted)

    runs = _wait_for_runs(api, ours, len(BACKFILL_DAYS), "the two backfill runs")
    assert sorted(r["logical_date"][:10] for r in runs) == sorted(wanted), runs
    assert all(r["state"] == "success" for r in runs), runs
    for run in runs:
        _see_run_succeeded(page, settings, run, f"airflow-backfill-{run['logical_date'][:10]}.png")


def _fill_date(page, dialog, index: int, day: date) -> None:
    """The Backfill form's From (0) / To (1) pickers: a button opening a popover with a UTC
    date field and a time field."""
    dialog.locator("[data-testid='datetime-input']").nth(index).click()
    popover = page.locator("[data-scope='popover'][data-part='content']:visible").last
    popover.locator("input[placeholder='YYYY/MM/DD']").fill(day.strftime("%Y/%m/%d"))
    popover.locator("input[placeholder='HH:mm']").fill("00:00")
    popover.locator("input[placeholder='HH:mm']").press("Enter")
    page.keyboard.press("Escape")  # close the popover, not the dialog (it takes the first)
    shown = re.compile(rf"{day:%b} 0?{day.day}, {day.year}")  # e.g. "Jul 2, 2021 00:00"
    dialog.locator("[data-testid='datetime-input']").nth(index).get_by_text(shown).wait_for()


def test_lae_dashboard_nav_entry_opens(page, settings):
    if not (ROOT / "plugins" / "lae_views.py").exists():
        pytest.skip("plugins/lae_views.py (the LAE dashboard plugin) is not in this tree")
    page.goto(f"{settings.airflow_url}/dags")
    entry = page.get_by_role("link", name="LAE views").or_(page.get_by_text("LAE views"))
    entry.first.click()
    page.wait_for_url(lambda url: "/plugin/lae-views" in url)
    frame = page.locator("iframe").first
    frame.wait_for()
    assert frame.get_attribute("src").rstrip("/").endswith("/lae/dashboard")
    frame.content_frame.locator("body").wait_for()
    page.screenshot(path=str(ARTIFACTS / "airflow-lae-dashboard.png"), full_page=True)
