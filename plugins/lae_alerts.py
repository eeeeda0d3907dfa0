"""Airflow plugin for LAE alerting: records every failed DAG run in the alerts file.

The notifier itself needs no registration: Airflow notifiers are plain callbacks, attached to
every task through lae.dag_defaults (code in lae.alerts). What callbacks cannot see is a run
that fails without a task failing (``dagrun_timeout``, a run marked failed in the UI); this
listener, called by the scheduler and the api-server, records those too, at warning severity.

It writes only to the component's log and the alerts file, never to the webhook or email:
the listener runs inside the scheduler's DB session, and resolving a connection there goes
through the metastore secrets backend, whose session handling detached the scheduler's DagRun
objects and crashed the scheduler (seen on 3.3.2). Paging is the task callbacks' job; they
already paged for the usual case, a task that ran out of retries.
"""

from __future__ import annotations

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


class DagRunFailureListener:
    @hookimpl
    def on_dag_run_failed(self, dag_run, msg: str) -> None:
        # Imported on the first failure, not at plugin load: every Airflow process loads plugins.
        try:
            from airflow.configuration import conf

            from lae.alerts import send_alert

            base_url = conf.get("api", "base_url", fallback="").rstrip("/")
            send_alert(
                "dag_run_failed",
                f"DAG run failed: {dag_run.dag_id}",
                {"reason": msg} if msg else None,
                severity="warning",
                dag_id=dag_run.dag_id,
                run_id=dag_run.run_id,
                log_url=f"{base_url}/dags/{dag_run.dag_id}/runs/{dag_run.run_id}" if base_url
                else None,
                channels=[],  # see the module docstring: no connection lookups in here
            )
        except Exception:  # a listener error must never disturb the scheduler loop
            import logging

            logging.getLogger("lae.alerts").exception("dag run failure listener failed")


class LaeAlertsPlugin(AirflowPlugin):
    name = "lae_alerts"
    listeners = [DagRunFailureListener()]
