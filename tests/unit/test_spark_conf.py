"""How the Spark jars reach the JVMs: on the classpath in place for a local master, shipped
with spark.jars to a cluster; the Airflow operator decides from the spark_default connection."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from lae.config import get_settings
from lae.spark import classpath_conf, spark_conf


@pytest.fixture
def settings(tmp_path):
    folder = tmp_path / "spark"
    folder.mkdir()
    for name in ("bundle-2.35.4.jar", "hadoop-aws-3.4.1.jar"):
        (folder / name).write_bytes(b"PK")
    (folder / ".complete").touch()
    return replace(get_settings(), jars_dir=tmp_path)


@pytest.mark.parametrize("master", ["local[*]", "local[2]", "local"])
def test_a_local_master_gets_the_jars_on_the_driver_classpath(settings, master):
    conf = spark_conf(settings, master)
    assert "spark.jars" not in conf
    assert conf["spark.driver.extraClassPath"].split(os.pathsep) == [
        str(settings.jars_dir / "spark" / n) for n in ("bundle-2.35.4.jar",
                                                       "hadoop-aws-3.4.1.jar")]


@pytest.mark.parametrize("master", ["spark://127.0.0.1:7077", "yarn", None, ""])
def test_a_cluster_or_unknown_master_ships_the_jars(settings, master):
    conf = spark_conf(settings, master)
    assert "spark.driver.extraClassPath" not in conf
    assert conf["spark.jars"].split(",") == [
        str(settings.jars_dir / "spark" / n) for n in ("bundle-2.35.4.jar",
                                                       "hadoop-aws-3.4.1.jar")]


@pytest.mark.parametrize(("master", "compressed"), [
    ("local[*]", "false"), ("local[2]", "false"), ("local", "false"),
    ("spark://127.0.0.1:7077", None), ("yarn", None), (None, None)])
def test_only_a_local_master_leaves_its_shuffle_blocks_uncompressed(settings, master, compressed):
    assert spark_conf(settings, master).get("spark.shuffle.compress") == compressed


def test_classpath_conf_is_one_or_the_other():
    assert classpath_conf([], "local[1]") == {"spark.driver.extraClassPath": ""}
    assert classpath_conf([], "spark://h:7077") == {"spark.jars": ""}


@pytest.mark.parametrize(("host", "key"), [("local[2]", "spark.driver.extraClassPath"),
                                           ("spark://127.0.0.1", "spark.jars")])
def test_the_operator_takes_the_master_from_spark_default(settings, monkeypatch, host, key):
    """SparkSubmitOperator.execute (which would run spark-submit) is replaced by a recorder:
    this checks the conf the LAE operator hands it, not Spark."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from lae.batch.operators import LaeSparkSubmitOperator

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(
        {"conn_type": "spark", "host": host, "port": 7077 if host.startswith("spark") else None}))
    monkeypatch.setattr("lae.config.get_settings", lambda: settings)
    seen = {}
    monkeypatch.setattr(SparkSubmitOperator, "execute",
                        lambda self, context: seen.update(self.conf))
    op = LaeSparkSubmitOperator(task_id="t", application="app.py",
                                conf={"spark.executor.memory": "1g"})
    op.execute({})
    assert key in seen
    assert ("spark.sql.shuffle.partitions" in seen) == host.startswith("local")
    assert seen["spark.executor.memory"] == "1g"
