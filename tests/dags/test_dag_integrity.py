"""Policy as tests: every DAG in dags/ parses, quickly, and follows the house rules.

No services needed: parsing a DAG folder does not touch the metadata DB. Airflow reads the
project's airflow.cfg (AIRFLOW_HOME = repo root, via airflow_env), never a personal one.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lae.config import get_settings
from lae.stack.airflow import airflow_env
from lae.tags import Tag

SETTINGS = get_settings()
DAGS_DIR = SETTINGS.home / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
ALLOWED_TAGS = {t.value for t in Tag}
# The scheduler re-parses every file every 30 s on 2 cores; a slow file delays every DAG.
PARSE_BUDGET_SECONDS = 2.0
# Imports that belong inside tasks, never at parse time.
HEAVY_MODULES = {"pyspark", "pandas", "pyarrow", "cassandra", "kafka", "boto3", "botocore",
                 "datasketches"}

# Must happen before this process first imports airflow, which reads its config once.
os.environ.update(airflow_env(SETTINGS))


@pytest.fixture(scope="session")
def parsed():
    from airflow.dag_processing.dagbag import DagBag

    start = time.monotonic()  # after importing airflow: only the DAG files are timed
    bag = DagBag(dag_folder=str(DAGS_DIR))
    return bag, time.monotonic() - start


@pytest.fixture(scope="session")
def dagbag(parsed):
    return parsed[0]


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _dag_of(dagbag, path: Path):
    dags = [d for d in dagbag.dags.values() if Path(d.fileloc) == path]
    assert len(dags) == 1, f"{path.name}: expected one DAG per file, found {len(dags)}"
    return dags[0]


def _dag_calls(path: Path) -> list[ast.Call]:
    """`DAG(...)` / `@dag(...)` calls in a file, found without importing it."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("DAG", "dag"):
                calls.append(node)
    return calls


def test_dags_folder_is_not_empty():
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


def test_no_import_errors(dagbag):
    errors = "\n\n".join(f"{path}:\n{err}" for path, err in dagbag.import_errors.items())
    assert not dagbag.import_errors, errors


def test_whole_folder_parses_within_budget(parsed):
    _, seconds = parsed
    assert seconds < PARSE_BUDGET_SECONDS, (
        f"parsing {DAGS_DIR} took {seconds:.2f}s (budget {PARSE_BUDGET_SECONDS}s): "
        "move heavy imports and I/O into tasks"
    )


def test_no_heavy_imports_at_parse_time():
    # A fresh interpreter: this test session may have imported pyspark for other tests.
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"DagBag(dag_folder={str(DAGS_DIR)!r})\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=os.environ, check=True, timeout=120).stdout
    loaded = set(json.loads(out.strip().splitlines()[-1]))
    assert not loaded & HEAVY_MODULES, f"imported while parsing: {sorted(loaded & HEAVY_MODULES)}"


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_one_dag_per_file_named_after_it(dagbag, path):
    assert _dag_of(dagbag, path).dag_id == path.stem


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_no_cycles(dagbag, path):
    _dag_of(dagbag, path).check_cycle()  # raises AirflowDagCycleException


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_every_task_has_a_real_owner_and_retries(dagbag, path):
    dag = _dag_of(dagbag, path)
    assert dag.tasks, f"{dag.dag_id} has no tasks"
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", (
            f"{dag.dag_id}.{task.task_id}: owner {task.owner!r}; use lae.dag_defaults"
        )
        assert task.retries >= 2, f"{dag.dag_id}.{task.task_id}: retries={task.retries} < 2"


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_tags_come_from_the_enum(dagbag, path):
    dag = _dag_of(dagbag, path)
    tags = {str(t) for t in dag.tags}
    assert tags, f"{dag.dag_id} has no tags"
    assert tags <= ALLOWED_TAGS, f"{dag.dag_id}: unknown tags {sorted(tags - ALLOWED_TAGS)}"


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_doc_md_is_the_module_docstring(dagbag, path):
    dag = _dag_of(dagbag, path)
    docstring = ast.get_docstring(ast.parse(path.read_text()), clean=False)
    assert docstring and docstring.strip(), f"{path.name} has no module docstring"
    assert (dag.doc_md or "").strip() == docstring.strip(), f"{dag.dag_id}: doc_md != __doc__"


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_schedule_and_catchup_are_explicit(path):
    # Checked in the source: the parsed DAG cannot tell a default from an explicit value.
    calls = _dag_calls(path)
    assert calls, f"{path.name}: no DAG(...) or @dag(...) call"
    for call in calls:
        given = {kw.arg for kw in call.keywords}
        missing = {"schedule", "catchup"} - given
        assert not missing, f"{path.name}:{call.lineno}: pass {sorted(missing)} explicitly"


def test_airflow_reads_the_project_config():
    from airflow.configuration import conf

    state = SETTINGS.service_dir("airflow")
    assert Path(conf.get("core", "dags_folder")) == DAGS_DIR
    assert not conf.getboolean("core", "load_examples")
    assert conf.get("api", "host") == SETTINGS.host
    assert conf.get("database", "sql_alchemy_conn") == f"sqlite:///{state / 'airflow.db'}"
    for key in ("base_log_folder", "dag_processor_child_process_log_directory"):
        assert Path(conf.get("logging", key)).is_relative_to(state), key


def _callbacks(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_every_task_alerts_through_the_lae_notifier(dagbag, path):
    # A task without it fails silently once its retries are exhausted: nobody is paged and the
    # health view never hears of it. lae.dag_defaults.default_args() attaches it.
    from lae.alerts import LaeNotifier

    dag = _dag_of(dagbag, path)
    for task in dag.tasks:
        pages = [c for c in _callbacks(task.on_failure_callback)
                 if isinstance(c, LaeNotifier) and c.severity == "critical"]
        assert pages, (f"{dag.dag_id}.{task.task_id}: on_failure_callback lacks a critical "
                       "LaeNotifier; use lae.dag_defaults.default_args()")
        retries = [c for c in _callbacks(task.on_retry_callback) if isinstance(c, LaeNotifier)]
        assert retries, f"{dag.dag_id}.{task.task_id}: on_retry_callback lacks the LaeNotifier"
