"""A Spark standalone cluster on loopback, started from pyspark's own jars.

One master and N workers (``spark-class org.apache.spark.deploy.master.Master`` / ``...Worker``
of the pyspark wheel, so the cluster runs exactly the Spark version the jobs were written
for). Each part is a ``ManagedProcess`` (own process group, pid file, log) under
``<state_dir>/spark-cluster/``. Ports: the master's RPC port ``base_port``, its web UI
``base_port + 1``, worker i (from 0) ``base_port + 2 + 2i`` and its UI ``base_port + 3 + 2i``.

Jobs reach it through the ``spark_default`` connection (host ``spark://127.0.0.1``, port
``base_port``); ``lae.batch.operators.LaeSparkSubmitOperator`` adds the jars and S3A settings,
and the executors run this virtualenv's Python (``PYSPARK_PYTHON``), which has ``lae``. The
submitting side's ``SPARK_CONF_DIR`` (``client_conf_dir()``) sizes shuffles for the cluster.

    python -m lae.stack.spark_cluster up --port 7077 --workers 2   # prints the master URL
    python -m lae.stack.spark_cluster down
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lae.config import Settings, get_settings
from lae.stack.process import ManagedProcess, ServiceError, ensure_ports_free

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class SparkStandalone:
    def __init__(self, settings: Settings, base_port: int = 7077, workers: int = 2,
                 cores: int = 1, memory: str = "1g"):
        self.settings = settings
        self.base_port = base_port
        self.cores = cores
        self.memory = memory
        self.dir = settings.state_dir / "spark-cluster"
        self.master = ManagedProcess("spark-master", self.dir)
        self.workers = [ManagedProcess(f"spark-worker-{i + 1}", self.dir)
                        for i in range(workers)]

    @property
    def master_url(self) -> str:
        return f"spark://{self.settings.host}:{self.base_port}"

    def spark_connection(self) -> dict:
        """The ``spark_default`` connection (Airflow JSON form) that points at this master."""
        return {"conn_type": "spark", "host": f"spark://{self.settings.host}",
                "port": self.base_port, "extra": {"deploy-mode": "client"}}

    @property
    def total_cores(self) -> int:
        return self.cores * len(self.workers)

    def client_conf_dir(self) -> Path:
        """A ``SPARK_CONF_DIR`` for the submitting side (the Airflow worker's spark-submit).

        Its ``spark-defaults.conf`` sizes the jobs for this cluster, as a deployment's does:
        ``spark.sql.shuffle.partitions`` = 2 x the cluster's cores. Spark's default of 200 is
        not coalesced by adaptive execution where a job caches an aggregate (the batch job
        caches its views): one day of a small test ran ~1,400 tasks on 2 one-core executors,
        minutes of scheduling for a few hundred rows. ``--conf`` of the submit still wins.
        """
        conf_dir = self.dir / "client-conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "spark-defaults.conf").write_text(
            f"spark.sql.shuffle.partitions {2 * self.total_cores}\n")
        return conf_dir

    def env(self) -> dict[str, str]:
        return {**os.environ, "SPARK_HOME": str(spark_home()),
                "SPARK_LOCAL_IP": self.settings.host, "PYSPARK_PYTHON": sys.executable,
                # The REST submission server binds every interface; jobs use the RPC port.
                "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
                # Logs and pid files of Spark's own scripts stay with ours.
                "SPARK_LOG_DIR": str(self.dir), "SPARK_PID_DIR": str(self.dir)}

    def _argv(self, main: str, *args: str) -> list[str]:
        return [str(spark_home() / "bin" / "spark-class"), main, *args]

    def start(self, timeout: float = 180.0) -> float:
        """Start the master, then the workers; wait until every worker registered."""
        t0 = time.monotonic()
        host = self.settings.host
        ports = [self.base_port + i for i in range(2 + 2 * len(self.workers))]
        if not self.master.is_running():
            ensure_ports_free("spark-cluster", host, ports, self.master.log_file)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.master.is_running():
            self._start(self.master, self._argv(
                MASTER, "--host", host, "--port", str(self.base_port),
                "--webui-port", str(self.base_port + 1)))
        self._wait_for(self.master, "I have been elected leader", t0 + timeout)
        for i, worker in enumerate(self.workers):
            if not worker.is_running():
                port = self.base_port + 2 + 2 * i
                self._start(worker, self._argv(
                    WORKER, "--host", host, "--port", str(port), "--webui-port", str(port + 1),
                    "--cores", str(self.cores), "--memory", self.memory,
                    "--work-dir", str(self.dir / f"work-{i + 1}"), self.master_url))
        for worker in self.workers:
            self._wait_for(worker, "Successfully registered with master", t0 + timeout)
        return time.monotonic() - t0

    def _start(self, process: ManagedProcess, argv: list[str]) -> None:
        # Truncated per start: the markers waited for must come from this start's output.
        process.log_file.parent.mkdir(parents=True, exist_ok=True)
        process.log_file.write_bytes(b"")
        process.start(argv, env=self.env(), cwd=self.dir)

    @staticmethod
    def _wait_for(process: ManagedProcess, marker: str, deadline: float) -> None:
        while marker not in process.log_file.read_text(errors="replace"):
            if not process.is_running():
                raise ServiceError(f"{process.name} exited; see {process.log_file}")
            if time.monotonic() > deadline:
                raise ServiceError(f"{process.name}: no '{marker}' in time; "
                                   f"see {process.log_file}")
            time.sleep(0.5)

    def executors_launched(self) -> dict[str, int]:
        """Per worker: executors it was asked to launch (proof a job ran on it)."""
        return {w.name: w.log_file.read_text(errors="replace").count("Asked to launch executor")
                for w in self.workers}

    def stop(self) -> None:
        for process in [*reversed(self.workers), self.master]:
            process.stop(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--port", type=int, default=7077, help="master RPC port (+1: UI, ...)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="1g", help="memory per worker")
    args = parser.parse_args(argv)
    cluster = SparkStandalone(get_settings(), args.port, args.workers, args.cores, args.memory)
    if args.action == "down":
        cluster.stop()
        return 0
    took = cluster.start()
    print(f"Spark master {cluster.master_url} with {args.workers} workers, up in {took:.1f}s; "
          f"logs in {cluster.dir}; submit with SPARK_CONF_DIR={cluster.client_conf_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
