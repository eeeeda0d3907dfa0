"""A small client for Airflow 3's REST API (v2): log in, trigger a DAG run, wait for it.

Used by `lae demo` and the tests to drive the *running* Airflow (scheduler, executor,
execution API) the way a person does from the UI, rather than calling DAG code in-process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from lae.config import Settings

FINISHED = ("success", "failed")


class AirflowApiError(RuntimeError):
    pass


@dataclass
class AirflowApi:
    base_url: str
    token: str
    timeout: float = 30.0
    # How long a refused connection is retried: the local stack's supervisor restarts an
    # api-server that exited within seconds (lae.stack.airflow_supervisor).
    connect_retry_s: float = 90.0

    @classmethod
    def login(cls, settings: Settings, username: str | None = None,
              password: str | None = None) -> AirflowApi:
        """Log in with the given user, by default the local stack's generated admin."""
        if username is None or password is None:
            from lae.stack.airflow import admin_credentials

            username, password = admin_credentials(settings)
        resp = httpx.post(f"{settings.airflow_url}/auth/token", timeout=30,
                          json={"username": username, "password": password})
        if resp.status_code != 201:
            raise AirflowApiError(f"login as {username} failed: HTTP {resp.status_code}")
        return cls(settings.airflow_url, resp.json()["access_token"])

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, parsed JSON or text); HTTP errors are returned for the caller to judge.

        A refused connection is retried for ``connect_retry_s`` (safe for any method: nothing
        was sent), then raised as AirflowApiError.
        """
        deadline = time.monotonic() + self.connect_retry_s
        while True:
            try:
                resp = httpx.request(method, f"{self.base_url}{path}", json=body,
                                     timeout=self.timeout,
                                     headers={"Authorization": f"Bearer {self.token}"})
                break
            except httpx.ConnectError as exc:
                if time.monotonic() >= deadline:
                    raise AirflowApiError(
                        f"{method} {path}: Airflow's api-server at {self.base_url} refused "
                        f"connections for {self.connect_retry_s:.0f}s ({exc}); is Airflow "
                        "running? `lae stack status`, and its log under the state dir "
                        "(airflow/airflow.log)") from exc
                time.sleep(2)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, resp.text

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.request(method, path, body)
        if status >= 300:
            raise AirflowApiError(f"{method} {path}: HTTP {status}: {payload}")
        return payload

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has registered ``dag_id``."""
        deadline = time.monotonic() + timeout
        while self.request("GET", f"/api/v2/dags/{dag_id}")[0] != 200:
            if time.monotonic() > deadline:
                raise AirflowApiError(f"{dag_id} not registered after {timeout:.0f}s")
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict | None = None, note: str | None = None,
                logical_date: str | None = None) -> str:
        """Unpause and trigger ``dag_id``; returns the run id."""
        self._ok("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self._ok("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                       {"logical_date": logical_date, "conf": conf or {}, "note": note})
        return run["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Poll until the run finishes; returns its final state ("success" or "failed")."""
        deadline = time.monotonic() + timeout
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"
        while True:
            state = self._ok("GET", path)["state"]
            if state in FINISHED:
                return state
            if time.monotonic() > deadline:
                raise AirflowApiError(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(2)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        payload = self._ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {t["task_id"]: t["state"] for t in payload["task_instances"]}

    def upsert_connections(self, connections: dict[str, dict]) -> None:
        """Create or overwrite connections (conn_id → fields as in ``airflow connections
        import``) in one bulk request to the running api-server: no `airflow` CLI process."""
        import json

        entities = [{"connection_id": conn_id,
                     **{k: json.dumps(v) if k == "extra" else v for k, v in fields.items()}}
                    for conn_id, fields in connections.items()]
        result = self._ok("PATCH", "/api/v2/connections", {"actions": [
            {"action": "create", "entities": entities, "action_on_existence": "overwrite"}]})
        errors = (result.get("create") or {}).get("errors")
        if errors:
            raise AirflowApiError(f"connections not saved: {errors}")

    def create_backfill(self, dag_id: str, from_date: str, to_date: str, *,
                        reprocess_behavior: str = "none", max_active_runs: int = 1,
                        attempts: int = 12, retry_wait: float = 5.0) -> dict:
        """``POST /api/v2/backfills`` (what ``airflow backfill create`` and the UI do); returns
        the backfill (``id``, ``completed_at`` …).

        On SQLite, Airflow creates each run inside a SAVEPOINT that reads before it writes; when
        another component holds or has just taken the write lock, SQLite refuses that upgrade at
        once ("database is locked", no busy timeout applies). Airflow then removes the partial
        backfill and answers 503, so the request is simply repeated.
        """
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date,
                "reprocess_behavior": reprocess_behavior, "max_active_runs": max_active_runs}
        for attempt in range(1, attempts + 1):
            status, payload = self.request("POST", "/api/v2/backfills", body)
            if status == 200:
                return payload
            if status != 503 or attempt == attempts:
                raise AirflowApiError(f"backfill of {dag_id}: HTTP {status}: {payload}")
            time.sleep(retry_wait)
        raise AssertionError("unreachable")

    def wait_for_backfill(self, backfill_id: int, timeout: float = 1800,
                          interval: float = 5.0) -> dict:
        """Poll until the backfill has completed (all its runs finished); returns it."""
        deadline = time.monotonic() + timeout
        while True:
            status, backfill = self.request("GET", f"/api/v2/backfills/{backfill_id}")
            # A 5xx is a busy metadata DB (SQLite) at that moment: poll again.
            if status < 300 and backfill["completed_at"]:
                return backfill
            if 300 <= status < 500:
                raise AirflowApiError(f"backfill {backfill_id}: HTTP {status}: {backfill}")
            if time.monotonic() > deadline:
                raise AirflowApiError(f"backfill {backfill_id} not completed after {timeout:.0f}s")
            time.sleep(interval)
