"""Static checks of the Docker stack (docker/ and the root .dockerignore).

No Docker engine runs on the development machine, so the compose file, the Dockerfile and the
build context are checked as files. Expected values come from the project's own sources of
truth (pyproject.toml, lae.config, lae.stack.*, scripts/bootstrap.sh, jvm/*/pom.xml) or from
the contracts below, never from the compose file itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
import yaml

from lae.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile.airflow"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

# The stack's contract (docker/README.md).
AIRFLOW_SERVICES = {
    "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
    "airflow-triggerer",
}
EXPECTED_SERVICES = AIRFLOW_SERVICES | {
    "postgres", "kafka", "kafka-init", "cassandra", "cassandra-init", "minio", "minio-init",
    "spark-master", "spark-worker", "lae-api", "lae-serve", "speed-layer", "zeppelin",
}
ONE_SHOT_SERVICES = {"airflow-init", "kafka-init", "cassandra-init", "minio-init"}
# Services that run the project image (docker/Dockerfile.airflow) with the LAE settings.
PROJECT_IMAGE_SERVICES = AIRFLOW_SERVICES | {
    "cassandra-init", "spark-master", "spark-worker", "lae-api", "lae-serve", "speed-layer",
}
OPTIONAL_SERVICES = {"zeppelin": "notebook"}
CONNECTION_IDS = ("kafka_default", "aws_default", "cassandra_default", "spark_default")
# What the project image needs from the build context (DESIGN.md §2 layout + packaging files).
BUILD_CONTEXT = (
    "pyproject.toml", "uv.lock", "README.md", "airflow.cfg",
    "include/", "dags/", "plugins/", "spark_jobs/", "jvm/", "scripts/",
)
# Per-service host settings the compose file already sets and lae.config does not read yet
# (today it has one LAE_HOST). Remove a name here once lae.config reads it.
PENDING_LAE_SETTINGS: set[str] = set()

_SUBST = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
# PASSWORD/SECRET anywhere, KEY as a word (FERNET_KEY, ACCESS_KEY; not KEYSPACE).
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|(?:^|_)KEY(?:_|$)")
_WHOLE_SUBST = re.compile(r"^\$\{\w+(?::?-[^}]*)?\}$")


def _unescape(text: str) -> str:
    return text.replace("$$", "\x00")


def resolve(value: object) -> str:
    """The value compose would use with no .env: every ${VAR:-default} replaced by its default."""
    text = _unescape(str(value))
    return _SUBST.sub(lambda m: m.group(2) or "", text).replace("\x00", "$")


def _command_text(service: dict) -> str:
    command = service.get("command", "")
    return resolve(" ".join(command) if isinstance(command, list) else command)


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pinned(name: str) -> str:
    for dep in _pyproject()["project"]["dependencies"]:
        match = re.fullmatch(rf"{re.escape(name)}==([\w.]+)", dep.strip())
        if match:
            return match.group(1)
    raise AssertionError(f"{name} is not pinned with == in pyproject.toml")


def _pom_property(part: str, prop: str) -> str:
    # The repo's own pom, not untrusted input.
    tree = ElementTree.parse(ROOT / "jvm" / part / "pom.xml")  # noqa: S314
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = tree.find(f"m:properties/m:{prop}", ns)
    if node is None:
        node = tree.find(f"properties/{prop}")
    assert node is not None, f"jvm/{part}/pom.xml has no <{prop}>"
    return node.text.strip()


def _settings_defaults() -> dict:
    """lae.config defaults as written in the code, whatever LAE_* the developer has set."""
    return {f.name: f.default for f in fields(Settings) if isinstance(f.default, (str, int))}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "use the mapping form of environment (anchors merge it)"
    return env


def _depends(service: dict) -> dict:
    deps = service.get("depends_on") or {}
    assert isinstance(deps, dict), "depends_on must use the long form with a condition"
    return deps


def _all_environments(compose: dict):
    for name, value in compose.items():
        if name.startswith("x-") and isinstance(value, dict):
            env = value.get("environment", value)
            if isinstance(env, dict):
                yield name, env
    for name, service in compose["services"].items():
        yield name, _env(service)


# ------------------------------------------------------------------------- services and order


def test_expected_services_exist(services):
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"services missing from {COMPOSE_FILE.name}: {sorted(missing)}"


def test_long_running_services_have_a_healthcheck(services):
    lacking = [
        name for name, svc in services.items()
        if name not in ONE_SHOT_SERVICES
        and (not svc.get("healthcheck") or svc["healthcheck"].get("disable")
             or not svc["healthcheck"].get("test"))
    ]
    assert not lacking, f"long-running services without a healthcheck: {lacking}"


def test_one_shot_services_are_awaited_and_never_restarted(services):
    awaited = {
        target
        for svc in services.values()
        for target, dep in _depends(svc).items()
        if dep.get("condition") == "service_completed_successfully"
    }
    assert awaited == ONE_SHOT_SERVICES
    for name in ONE_SHOT_SERVICES:
        assert services[name].get("restart", "no") == "no", f"{name} would be restarted forever"


def test_depends_on_targets_exist_with_a_condition(services):
    for name, svc in services.items():
        for target, dep in _depends(svc).items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = dep.get("condition")
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {target}: condition {condition!r} does not wait for readiness")
            if condition == "service_healthy":
                assert services[target].get("healthcheck"), (
                    f"{name} waits for {target} to be healthy, but it has no healthcheck")
            if not svc.get("profiles"):
                assert not services[target].get("profiles"), (
                    f"{name} (always started) depends on {target}, which only a profile starts")


def test_no_dependency_cycle(services):
    graph = {name: set(_depends(svc)) for name, svc in services.items()}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("dependency cycle: " + " -> ".join([*path, node]))
        if node in done:
            return
        for nxt in graph.get(node, ()):
            visit(nxt, [*path, node])
        done.add(node)

    for name in graph:
        visit(name, [])


def test_optional_services_sit_behind_their_profile(services):
    for name, svc in services.items():
        if name in OPTIONAL_SERVICES:
            assert OPTIONAL_SERVICES[name] in (svc.get("profiles") or []), name
        else:
            assert not svc.get("profiles"), f"{name} would not start with a plain `up`"


# ------------------------------------------------------------------------- Airflow


def test_airflow_services_share_the_common_anchor(compose, services):
    common = compose["x-airflow-common"]
    common_env = common["environment"]
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc.get("image") == common["image"], name
        assert svc.get("build") == common["build"], name
        assert svc.get("volumes") == common["volumes"], name
        env = _env(svc)
        differing = sorted(k for k, v in common_env.items() if env.get(k) != v)
        assert not differing, f"{name} does not carry the shared env: {differing}"


def test_airflow_uses_local_executor_and_postgres(compose, services):
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    db = urlsplit(resolve(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    assert db.scheme.startswith("postgresql") and db.hostname in services
    assert not {"redis", "airflow-worker", "flower"} & set(services), "no Celery on this stack"
    execution_api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution_api.hostname == "airflow-apiserver"


def test_the_four_connections_are_in_the_shared_env(compose, services):
    from lae.stack.airflow import connections

    reference = connections(Settings.from_env())
    assert set(CONNECTION_IDS) <= set(reference), "lae.stack.airflow defines the conn ids"
    env = compose["x-airflow-common"]["environment"]
    for conn_id in CONNECTION_IDS:
        key = f"AIRFLOW_CONN_{conn_id.upper()}"
        assert key in env, f"{key} missing from x-airflow-common"
        conn = json.loads(resolve(env[key]))
        expected = reference[conn_id]
        assert conn["conn_type"] == expected["conn_type"], conn_id
        assert set(expected.get("extra", {})) <= set(conn.get("extra", {})), conn_id
        # Every address in it is a compose service, never the process stack's loopback.
        extra = conn.get("extra", {})
        if conn_id == "kafka_default":
            hosts = [s.rsplit(":", 1)[0] for s in extra["bootstrap.servers"].split(",")]
        elif conn_id == "aws_default":
            hosts = [urlsplit(extra["endpoint_url"]).hostname]
        elif conn_id == "spark_default":
            hosts = [urlsplit(conn["host"]).hostname]
        else:
            hosts = [conn["host"]]
        for host in hosts:
            assert host in services, f"{conn_id} points at {host!r}, not a compose service"


def test_airflow_secrets_are_shared_not_generated_per_container(compose):
    env = compose["x-airflow-common"]["environment"]
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY",
                "AIRFLOW__API__SECRET_KEY"):
        assert key in env, f"{key} must be set once for every Airflow container"


# ------------------------------------------------------------------------- LAE settings


def test_project_image_services_get_the_lae_settings(compose, services):
    image = compose["x-airflow-common"]["image"]
    lae_env = compose["x-lae-env"]
    for name in PROJECT_IMAGE_SERVICES:
        svc = services[name]
        assert svc.get("image") == image, f"{name} does not run the project image"
        env = _env(svc)
        differing = sorted(k for k, v in lae_env.items() if env.get(k) != v)
        assert not differing, f"{name} lacks the shared LAE settings: {differing}"


def _known_lae_variables() -> set[str]:
    known = {f"LAE_{name.upper()}" for name in _settings_defaults()}
    config = (ROOT / "include/lae/config.py").read_text()
    known |= {f"LAE_{name}" for name in re.findall(r'_env\("(\w+)"', config)}
    for path in (ROOT / "include/lae").rglob("*.py"):
        known |= set(re.findall(r'"(LAE_[A-Z0-9_]+)"', path.read_text()))
    return known


def test_lae_variables_are_ones_the_code_reads(compose):
    known = _known_lae_variables() | PENDING_LAE_SETTINGS
    for where, env in _all_environments(compose):
        unknown = sorted(k for k in env if k.startswith("LAE_") and k not in known)
        assert not unknown, f"{where}: LAE_* variables no code reads (typo?): {unknown}"


def test_pending_lae_settings_are_still_pending():
    implemented = PENDING_LAE_SETTINGS & _known_lae_variables()
    assert not implemented, f"lae now reads {sorted(implemented)}: drop them from PENDING"


def test_lae_defaults_match_lae_config(compose):
    defaults = _settings_defaults()
    env = compose["x-lae-env"]
    for key, value in env.items():
        field = key.removeprefix("LAE_").lower()
        if field in defaults and field not in ("host",) and not field.endswith("_host"):
            assert resolve(value) == str(defaults[field]), (
                f"{key}={resolve(value)!r} differs from lae.config's {defaults[field]!r}")


# ------------------------------------------------------------------------- ports and secrets


def test_published_ports_bind_loopback_only(services):
    for name, svc in services.items():
        assert svc.get("network_mode") != "host", name
        for port in svc.get("ports") or []:
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:
                text = str(port)
                host_ip = text.split(":", 1)[0] if text.count(":") >= 2 else None
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"


def test_no_literal_secrets(compose):
    for where, env in _all_environments(compose):
        for key, value in env.items():
            # *_FILE names where a secret is kept (a path), not the secret.
            if _SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert _WHOLE_SUBST.match(str(value)), (
                    f"{where}: {key} must be a ${{VAR:-default}} substitution, not a literal")
            text = str(value)
            if key.startswith("AIRFLOW_CONN_") and text.lstrip().startswith("{"):
                password = json.loads(_SUBST.sub("x", text)).get("password")
                if password is not None:
                    raw = re.search(r'"password":\s*"([^"]*)"', text).group(1)
                    assert _WHOLE_SUBST.match(raw), f"{where}: {key} has a literal password"
            for userinfo in re.findall(r"://[^/@\s:]+:([^@\s]+)@", text):
                assert _WHOLE_SUBST.match(userinfo), f"{where}: {key} has a literal password"


def test_variables_have_one_default_and_are_documented():
    text = _unescape("\n".join(line for line in COMPOSE_FILE.read_text().splitlines()
                                if not line.lstrip().startswith("#")))
    defaults: dict[str, set[str]] = {}
    for var, default in _SUBST.findall(text):
        defaults.setdefault(var, set()).add(default)
    conflicting = {v: d for v, d in defaults.items() if len(d) > 1}
    assert not conflicting, f"variables with different defaults: {conflicting}"
    documented = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    undocumented = sorted(set(defaults) - set(documented))
    assert not undocumented, f"not in docker/.env.example: {undocumented}"
    stale = sorted(set(documented) - set(defaults))
    assert not stale, f"docker/.env.example lists variables compose does not use: {stale}"
    for var, (default,) in ((v, tuple(d)) for v, d in defaults.items()):
        assert documented[var] == default, f"{var}: .env.example {documented[var]!r} != {default!r}"


# ------------------------------------------------------------------- Kafka, S3, Cassandra, Spark


def test_kafka_init_creates_the_topics(services):
    from lae.health import HEALTH_TOPIC

    defaults = _settings_defaults()
    command = _command_text(services["kafka-init"])
    created = {
        topic: int(partitions)
        for topic, partitions in re.findall(
            r"--create\b[^\n]*?--topic\s+(\S+)\s+--partitions\s+(\d+)", command)
    }
    assert created.get(defaults["raw_topic"]) == defaults["raw_partitions"] == 6, created
    assert defaults["dlq_topic"] in created, created
    if services["kafka"]["environment"].get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false":
        assert HEALTH_TOPIC in created, "the lae_stack_health DAG writes to it"


def test_kafka_image_matches_the_process_stack(services):
    image = services["kafka"]["image"]
    repo, _, tag = image.partition(":")
    assert repo == "apache/kafka" and tag.split(".")[0] == "4", image
    assert tag == _pom_property("kafka", "kafka.version"), "same Kafka as jvm/kafka/pom.xml"
    assert services["kafka-init"]["image"] == image


def test_minio_init_creates_the_bucket(services):
    bucket = _settings_defaults()["bucket"]
    command = _command_text(services["minio-init"])
    assert re.search(rf"\bmc mb\b[^\n]*/{re.escape(bucket)}\b", command), command


def test_cassandra_init_applies_the_cql_migrations(services):
    import lae.cassandra_schema as schema

    assert schema.discover(), "include/lae/cql has migrations"
    command = _command_text(services["cassandra-init"])
    assert "lae.cassandra_schema" in command and "migrate" in command
    assert services["cassandra"]["image"].split(":")[1].startswith("5.0")


def test_spark_cluster_runs_the_locked_pyspark(compose, services):
    pyspark = _pinned("pyspark")
    assert _pom_property("spark", "spark.version") == pyspark, "jars must match pyspark"
    project_image = compose["x-airflow-common"]["image"]
    for name in ("spark-master", "spark-worker"):
        image = services[name]["image"]
        if image != project_image:
            assert image.split(":")[1].startswith(pyspark), f"{name}: {image} vs pyspark {pyspark}"


# ------------------------------------------------------------------------- Dockerfile


def _dockerfile_from_images() -> list[str]:
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, flags=re.M))
    images = re.findall(r"^FROM\s+(?:--\S+\s+)?(\S+)", text, flags=re.M)
    return [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), i)
            for i in images]


def test_dockerfile_base_matches_pyproject():
    airflow = _pinned("apache-airflow")
    lower = re.search(r">=\s*(\d+\.\d+)", _pyproject()["project"]["requires-python"]).group(1)
    images = _dockerfile_from_images()
    assert images[-1].startswith("apache/airflow:"), "the final stage is the Airflow image"
    for image in images:
        if image.startswith("apache/airflow:"):
            assert image == f"apache/airflow:{airflow}-python{lower}", image


def test_dockerfile_installs_the_lock_with_the_bootstrap_uv():
    text = DOCKERFILE.read_text()
    uv_version = re.search(r"^UV_VERSION=(\S+)", (ROOT / "scripts/bootstrap.sh").read_text(),
                           flags=re.M).group(1)
    assert f'"uv=={uv_version}"' in text or f"uv=={uv_version} " in text
    syncs = re.findall(r"uv sync[^\n&]*", text)
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs), syncs
    assert "pip install -r" not in text and "uv pip install" not in text, "only the lock"


def test_dockerfile_has_java_17_and_the_maven_jars_stage():
    text = DOCKERFILE.read_text()
    assert re.search(r"apt-get install[^\n]*openjdk-17-jre", text)
    assert re.search(r"^FROM\s+maven:\S*temurin-17\S*\s+AS\s+jars", text, flags=re.M)
    assert "scripts/fetch-jars.sh" in text and "COPY --from=jars" in text


def test_build_context_is_an_allow_list_with_what_the_image_needs():
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[0] == "*", ".dockerignore starts by excluding everything"
    allowed = {ln[1:] for ln in lines if ln.startswith("!")}
    missing = [p for p in BUILD_CONTEXT if p not in allowed and p.rstrip("/") not in allowed]
    assert not missing, f"not in the build context: {missing}"
    for secretish in (".env", "docker/.env", ".lae/", ".venv/", ".git/"):
        assert secretish not in allowed and secretish.rstrip("/") not in allowed
    for path in BUILD_CONTEXT:
        assert (ROOT / path).exists(), f"{path} is in the build context but missing in the repo"
    text = DOCKERFILE.read_text()
    for sources in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$", text, flags=re.M):
        for src in sources.split():
            if src != ".":
                top = src.split("/")[0] + ("/" if "/" in src else "")
                assert top in allowed or top.rstrip("/") in allowed, f"COPY {src} is ignored"


# ------------------------------------------------------------------------- docker compose config


def test_docker_compose_config_is_valid():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True,
                           timeout=30, check=False)
    if probe.returncode != 0:
        pytest.skip(f"the docker compose plugin is not installed: {probe.stderr.strip()[:200]}")
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
