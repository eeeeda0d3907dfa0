"""The local Airflow requires a login by default: its API and the UI's data endpoints refuse
anonymous and forged requests; only health and version are public. (The browser side, the
UI sending an anonymous visitor to the login page, is in tests/e2e/test_airflow_ui.py.)"""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from lae.airflow_api import AirflowApi

pytestmark = pytest.mark.integration

PROTECTED = ["/api/v2/dags", "/api/v2/connections", "/api/v2/variables", "/api/v2/config",
             "/api/v2/dags/batch_recompute/dagRuns", "/api/v2/importErrors", "/ui/dags",
             "/ui/config", "/ui/dashboard/historical_metrics_data"]
PUBLIC = ["/api/v2/monitor/health", "/api/v2/version"]


def _get(settings, path: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(settings.airflow_url + path, headers=headers, timeout=60).status_code


def test_api_and_ui_data_need_a_login(settings, airflow_service):
    # Also what fails if simple_auth_manager_all_admins (everyone admin, no login) were on.
    assert {p: _get(settings, p) for p in PROTECTED} == {p: 401 for p in PROTECTED}
    assert {p: _get(settings, p) for p in PUBLIC} == {p: 200 for p in PUBLIC}


def test_a_forged_token_is_refused(settings, airflow_service):
    now = int(time.time())
    # Well-formed, claims the admin, signed with a key that is not the stack's JWT secret.
    forged = jwt.encode({"sub": "admin", "role": "ADMIN", "iat": now, "nbf": now,
                         "exp": now + 600, "aud": "apache-airflow"},
                        "not-the-secret-" + "x" * 32, algorithm="HS512")
    refused = {p: _get(settings, p, forged) for p in PROTECTED[:3]}
    assert set(refused.values()) <= {401, 403}, refused  # refused, however it is phrased
    # The same requests with a real login pass: the 401s above are about the token.
    real = AirflowApi.login(settings).token
    assert _get(settings, PROTECTED[0], real) == 200

