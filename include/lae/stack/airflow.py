"""Airflow as a local service: scheduler, dag-processor, triggerer and api-server on loopback.

AIRFLOW_HOME is the repo root, so the committed ``airflow.cfg``, ``dags/`` and ``plugins/`` are
used as they are; the metadata DB (SQLite), logs and the generated admin password live in the
service dir (``.lae/airflow``). ``airflow_env`` is the one way to run any ``airflow`` command
against this home and DB (the stack, tests, ``lae airflow ...``).

Why not ``airflow standalone``: it starts the scheduler and triggerer with their log servers
(8793/8794), which bind every interface with no setting to change it. On one machine the
api-server reads task logs from the shared log folder, so this module runs the same four
components itself with ``--skip-serve-logs`` under a small supervisor
(``lae.stack.airflow_supervisor``): one process group, one log file per component, and a
component that exits is restarted within a budget (as the Docker setup's restart policy does).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import urllib.request
from datetime import datetime
from pathlib import Path

from lae.config import Settings
from lae.stack.base import Service
from lae.stack.process import ServiceError

ADMIN_USER = "admin"
CONNECTIONS_FILE = "connections.json"

# SQLite's busy timeout for every Airflow process of this stack, read by import path
# ([database] sql_alchemy_connect_args and _async). sqlite3's default, 5 s, is shorter than the
# scheduler can hold the write lock on a loaded 2-core machine; a writer then failed with
# "database is locked" instead of waiting. (A transaction that has read before it writes gets
# no wait at all: see AirflowApi.create_backfill.) Two dicts: Airflow adds keys to the sync one.
SQLITE_CONNECT_ARGS = {"timeout": 60}
SQLITE_CONNECT_ARGS_ASYNC = {"timeout": 60}
# Not __name__: Airflow imports these by path from any process.
_THIS_MODULE = "lae.stack.airflow"

# (name, argv after `airflow`). The DB is migrated before these start.
COMPONENTS: list[tuple[str, list[str]]] = [
    ("scheduler", ["scheduler", "--skip-serve-logs"]),
    ("dag-processor", ["dag-processor"]),
    ("triggerer", ["triggerer", "--skip-serve-logs"]),
    ("api-server", ["api-server"]),
]

# Components whose heartbeat the health endpoint reports; all must be alive.
HEARTBEATS = {
    "scheduler": "latest_scheduler_heartbeat",
    "dag_processor": "latest_dag_processor_heartbeat",
    "triggerer": "latest_triggerer_heartbeat",
}


def venv_bin() -> Path:
    # Not resolved: the venv's python is a symlink to the base interpreter, and the `airflow`
    # script sits next to the symlink.
    return Path(sys.executable).parent


def password_file(settings: Settings) -> Path:
    return settings.service_dir("airflow") / "simple_auth_manager_passwords.json.generated"


def _local_secrets(settings: Settings) -> dict[str, str]:
    """Fernet key, JWT secret and API secret, generated once per state dir (mode 0600).

    Every Airflow process must share them: the scheduler signs task tokens that the api-server
    verifies, and connections encrypted by one CLI call are decrypted by the workers. Left
    empty, each process would invent its own. They never go into the committed airflow.cfg.
    """
    path = settings.service_dir("airflow") / "secrets.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        values = {
            "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "jwt_secret": secrets.token_urlsafe(32),
            "api_secret_key": secrets.token_urlsafe(32),
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first; use theirs
            pass
        else:
            with os.fdopen(fd, "w") as f:
                json.dump(values, f)
    return json.loads(path.read_text())


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for any `airflow` process of this stack (merge it over os.environ).

    The state paths repeat airflow.cfg's defaults on purpose: LAE_STATE_DIR may move them
    (a test stack), and the port/parallelism follow LAE_* settings.
    """
    state = settings.service_dir("airflow")
    keys = _local_secrets(settings)
    return {
        "AIRFLOW_HOME": str(settings.home),
        # A developer's own AIRFLOW_CONFIG must not leak in.
        "AIRFLOW_CONFIG": str(settings.home / "airflow.cfg"),
        "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file(settings)),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{state / 'airflow.db'}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{_THIS_MODULE}.SQLITE_CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC":
            f"{_THIS_MODULE}.SQLITE_CONNECT_ARGS_ASYNC",
        # Parsing one DAG file took 63 s at load ~24 on the 2-core machine: past the defaults
        # (30 s import, 50 s per file) the parse is killed and the DAG deactivated as stale, so
        # a run triggered then gets a 404. The DagBag parse budget (< 2 s) is enforced by tests.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "150",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(state / "logs"),
        "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(
            state / "logs" / "dag_processor"),
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": settings.airflow_url,
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
    }


def run_airflow(settings: Settings, *args: str, timeout: float = 120) -> str:
    """Run one `airflow` CLI command against this stack; returns stdout, raises on failure."""
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [str(venv_bin() / "airflow"), *args],
        env={**os.environ, **airflow_env(settings)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise ServiceError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def connections(settings: Settings) -> dict[str, dict]:
    """The Airflow connections DAGs use, pointing at the local services.

    A deployment defines the same conn_ids with real endpoints and credentials (env vars or a
    secrets backend); the DAGs do not change.
    """
    return {
        # Generic type: the apache-kafka provider is not installed. Its hooks read the client
        # config from this same extra, so only conn_type would change if it is added.
        "kafka_default": {
            "conn_type": "generic",
            "description": "Kafka brokers (client config in extra)",
            "extra": {"bootstrap.servers": settings.kafka_bootstrap},
        },
        # Placeholder keys for the auth-less local endpoint, not secrets.
        "aws_default": {
            "conn_type": "aws",
            "description": "S3 master dataset (local S3-compatible endpoint)",
            "login": settings.s3_access_key,
            "password": settings.s3_secret_key,
            "extra": {"endpoint_url": settings.s3_endpoint, "region_name": settings.s3_region},
        },
        "cassandra_default": {
            "conn_type": "cassandra",
            "description": "Cassandra serving views",
            "host": settings.cassandra_contact_point,
            "port": settings.cassandra_port,
            "schema": settings.keyspace,
        },
        "spark_default": {
            "conn_type": "spark",
            "description": "Spark master for spark-submit",
            "host": "local[*]",
            "extra": {"deploy-mode": "client"},
        },
    }


def admin_credentials(settings: Settings) -> tuple[str, str]:
    """Admin user and the password Airflow generated at its first start."""
    try:
        passwords = json.loads(password_file(settings).read_text())
        return ADMIN_USER, passwords[ADMIN_USER]
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise ServiceError(f"airflow: no generated admin password in {password_file(settings)} "
                           "(is the api-server started?)") from exc


class AirflowService(Service):
    name = "airflow"
    # Fresh DB on an idle 2-core machine: ~28 s; with the JVMs of the stack and other work
    # competing for the cores, 80-105 s was measured.
    start_timeout = 180.0

    def ports(self) -> list[int]:
        return [self.settings.airflow_port]

    @property
    def connections_file(self) -> Path:
        # Placeholder credentials only (see connections()); rewritten on every start.
        return self.dir / CONNECTIONS_FILE

    def prepare(self) -> None:
        _local_secrets(self.settings)
        # The supervisor imports this before the scheduler starts: scheduled runs that begin
        # at once would otherwise fail on missing connections until provision() ran.
        self.connections_file.write_text(json.dumps(connections(self.settings), indent=2))

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = {
            **airflow_env(self.settings),
            # Output goes to files: no ANSI colours, no stdout buffering hiding the last lines.
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
        }
        return [sys.executable, "-m", "lae.stack.airflow_supervisor"], env

    def health(self) -> dict:
        url = f"{self.settings.airflow_url}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own http URL
            return json.load(resp)

    def healthy(self) -> bool:
        status = self.health()
        if status["metadatabase"]["status"] != "healthy":
            return False
        # A component killed seconds ago still looks alive until its heartbeat ages out, so a
        # heartbeat only counts if it is newer than our start.
        try:
            started = self.process.pid_file.stat().st_mtime
        except FileNotFoundError:
            started = 0.0
        for component, beat_key in HEARTBEATS.items():
            info = status.get(component) or {}
            beat = info.get(beat_key)
            if info.get("status") != "healthy" or beat is None:
                return False
            if datetime.fromisoformat(beat).timestamp() < started:
                return False
        return True

    def provision(self) -> None:
        # Again here because a reused, already running Airflow may predate changed settings or
        # a connection deleted in the UI. Through the running api-server (create or overwrite:
        # idempotent), not `airflow connections import`: that CLI process took over 120 s to
        # start on a loaded machine and was one more writer of the SQLite DB.
        from lae.airflow_api import AirflowApi

        self.connections_file.write_text(json.dumps(connections(self.settings), indent=2))
        AirflowApi.login(self.settings).upsert_connections(connections(self.settings))
