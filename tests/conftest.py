"""Shared fixtures: settings, the real local stack, a local SparkSession.

Services are started once per test session and reused when already up (a developer's
`lae stack up`). What this session started it also stops at the end, unless LAE_KEEP_STACK=1.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from lae.config import Settings, get_settings
from lae.stack.airflow import airflow_env as _airflow_env
from lae.stack.manager import get_service

# DagBag and the airflow CLI read the project's airflow.cfg, never a personal one.
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# A test stack's scheduler runs only what a test asks for (AirflowApi.trigger unpauses the DAG
# it triggers): unpaused at creation, streaming_supervisor's 5-minute schedule would start a
# Spark streaming job beside the whole suite, and the archive would run on its own every 15
# minutes. Inherited by the stack's airflow processes that a test session starts.
os.environ.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True")
# Airflow reads its config once per process, at its first import: set it up here, before any
# test module imports airflow, so the result does not depend on which module is collected first.
os.environ.update(_airflow_env(get_settings()))
# py4j logs "closing connection" from __del__ at interpreter exit, after pytest closed the
# streams, which prints a "--- Logging error ---" traceback; nothing is wrong.
logging.getLogger("py4j").setLevel(logging.WARNING)


def _airflow_supervisor_log() -> Path:
    return get_service("airflow", get_settings()).log_file


def pytest_sessionstart(session):
    # Where this session's part of the local Airflow's supervisor log begins.
    try:
        session.config._lae_airflow_log_offset = _airflow_supervisor_log().stat().st_size
    except FileNotFoundError:
        session.config._lae_airflow_log_offset = 0


def pytest_terminal_summary(terminalreporter, config):
    """Airflow components that exited during this session (the supervisor restarts them): a
    failure that follows one is then explained in CI's output, not only in a state dir."""
    offset = getattr(config, "_lae_airflow_log_offset", 0)
    try:
        with open(_airflow_supervisor_log(), "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return
    exits = [i for i, line in enumerate(lines) if " exited with code " in line]
    if exits:
        terminalreporter.section("Airflow components that exited (lae.stack.airflow_supervisor)")
        for i in exits[:5]:  # each with the end of the component's log the supervisor printed
            for line in lines[i:i + 9]:
                terminalreporter.write_line(line[:300])


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


def _service_fixture(name: str):
    @pytest.fixture(scope="session")
    def _fixture(settings):
        service = get_service(name, settings)
        started_here = service.start()
        service.wait_healthy()
        service.provision()
        yield service
        if started_here and os.environ.get("LAE_KEEP_STACK") != "1":
            service.down()

    _fixture.__name__ = f"{name}_service"
    return _fixture


s3_service = _service_fixture("s3")
kafka_service = _service_fixture("kafka")
cassandra_service = _service_fixture("cassandra")
airflow_service = _service_fixture("airflow")


@pytest.fixture(scope="session")
def airflow_running(settings):
    """Airflow started and healthy, without ``provision()`` (connections import, pools):
    for tests that need only the api-server (a UI plugin) or the metadata DB (``dag.test()``
    with connections from AIRFLOW_CONN_* env vars), where the import's airflow CLI call is
    pure cost (over 120 s on a loaded 2-core machine)."""
    service = get_service("airflow", settings)
    started_here = service.start()
    service.wait_healthy()
    yield service
    if started_here and os.environ.get("LAE_KEEP_STACK") != "1":
        service.down()


@pytest.fixture(scope="session")
def spark(settings):
    """A local SparkSession (UTC) with the Kafka source and S3A jars on its classpath."""
    from lae.spark import build_session

    session = build_session("lae-tests", settings=settings, master="local[2]")
    yield session
    session.stop()
