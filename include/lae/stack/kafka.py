"""The local Kafka: one broker in KRaft combined mode (broker and controller in one JVM).

Runs ``kafka.Kafka`` straight from the jars that ``scripts/fetch-jars.sh`` resolved
(``$LAE_JARS_DIR/kafka``), with a ``server.properties`` and a log4j2 config that ``prepare``
writes to the service dir on every start (so port changes in the settings apply). The storage
is formatted once: the cluster id is generated on the first start and kept in ``cluster.id``;
later starts see ``meta.properties`` and reuse the data, so topics and messages survive
``down``/``up``. Kafka stops cleanly on SIGTERM (controlled shutdown), which is what
``ManagedProcess.stop`` sends first.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from lae.health import kafka_round_trip
from lae.stack.base import Service
from lae.stack.process import ServiceError, port_open

# Kafka 4's storage formatter (what bin/kafka-storage.sh runs).
STORAGE_TOOL = "kafka.tools.StorageTool"

_LOG4J2 = """\
# Written by lae.stack.kafka: everything goes to stdout, which the stack appends to kafka.log.
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# The per-request and state-change chatter is useless locally and grows the log fast.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
"""


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (like Uuid)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # Kafka's Uuid.randomUuid() also rejects ids starting with "-": they read as CLI flags.
        if not text.startswith("-"):
            return text


class KafkaService(Service):
    name = "kafka"
    start_timeout = 120.0

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def config_file(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.dir / "log4j2.properties"

    @property
    def cluster_id_file(self) -> Path:
        return self.dir / "cluster.id"

    def ports(self) -> list[int]:
        return [self.settings.kafka_port, self.settings.kafka_controller_port]

    def server_properties(self) -> dict[str, str]:
        s = self.settings
        controller = f"{s.host}:{s.kafka_controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Dynamic KRaft quorum (KIP-853): the one voter is declared at format time
            # (--standalone), so only the bootstrap address is configured here.
            "controller.quorum.bootstrap.servers": controller,
            "listeners": f"PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{s.host}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            # Topics come from provision() with their configured partitions; a typo'd topic
            # name in a producer must fail, not silently create a 1-partition topic.
            "auto.create.topics.enable": "false",
            # One broker: the internal topics cannot have more than one replica. The pipeline's
            # topics take their replication factor from the settings (provision).
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests and the archiver join groups often; the default 3 s delay only slows them.
            "group.initial.rebalance.delay.ms": "0",
            # Small local footprint; retention is a week like Kafka's default so replays work.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "168",
            "log.segment.bytes": str(128 * 1024 * 1024),
        }

    def _java(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        jars = self.settings.jars_dir / "kafka"
        if not (jars / ".complete").exists():
            raise ServiceError(
                f"{self.name}: jars missing in {jars}; run scripts/fetch-jars.sh. "
                f"Log: {self.log_file}"
            )
        heap_flags = [f"-Xms{heap}", f"-Xmx{heap}"] if heap else ["-Xmx256m"]
        return [
            "java", *heap_flags,
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp", f"{jars}/*",
            main, *args,
        ]

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            "# Written by lae.stack.kafka on every start; edit the settings, not this file.\n"
            + "".join(f"{k}={v}\n" for k, v in self.server_properties().items())
        )
        self.log4j_file.write_text(_LOG4J2)
        if (self.data_dir / "meta.properties").exists():
            return  # formatted before: keep data (formatting again would refuse or wipe it)
        if not self.cluster_id_file.exists():
            self.cluster_id_file.write_text(new_cluster_id() + "\n")
        cluster_id = self.cluster_id_file.read_text().strip()
        argv = self._java(STORAGE_TOOL, "format", "--cluster-id", cluster_id,
                          "--config", str(self.config_file), "--standalone", "--ignore-formatted")
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- formatting storage: {' '.join(argv)}\n".encode())
            log.flush()
            result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                    stdin=subprocess.DEVNULL, timeout=120, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"{self.name}: formatting storage failed (exit {result.returncode}); "
                f"see {self.log_file}"
            )

    def command(self) -> tuple[list[str], dict[str, str]]:
        heap = self.settings.kafka_heap
        return self._java("kafka.Kafka", str(self.config_file), heap=heap), {}

    def healthy(self) -> bool:
        """A produce/consume round trip of a unique marker on the health topic."""
        # Cheap pre-check: kafka-python clients block for seconds against a closed port, which
        # would delay noticing that the process died (wait_until checks between probes).
        if not port_open(self.settings.host, self.settings.kafka_port):
            return False
        kafka_round_trip(self.settings.kafka_bootstrap, timeout_s=10)
        return True

    def provision(self) -> None:
        """logs.raw and logs.dlq, as ``lae.kafka.topic_specs`` defines them (partitions,
        replication factor from the settings, retention, min ISR); existing topics are kept."""
        from lae.kafka import ensure_topics

        ensure_topics(self.settings)
