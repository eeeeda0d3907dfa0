"""The local Kafka: one broker in KRaft combined mode (broker and controller in one JVM).

Runs ``kafka.Kafka`` straight from the jars that ``scripts/fetch-jars.sh`` resolved
(``$LAE_JARS_DIR/kafka``), with a ``server.properties`` and a log4j2 config that ``prepare``
writes to the service dir on every start (so port changes in the settings apply). The storage
is formatted once: the cluster id is generated on the first start and kept in ``cluster.id``;
later starts see ``meta.properties`` and reuse the data, so topics and messages survive
``down``/``up``. Kafka stops cleanly on SIGTERM (controlled shutdown), which is what
``ManagedProcess.stop`` sends first.

With ``Settings.kafka_brokers`` > 1 (``lae stack up --kafka-brokers 3``) it is a cluster of
that many combined-mode nodes instead: ``kafka`` is node 1 and ``kafka-2``, ``kafka-3`` … are
the others, each with its own dir, log, pid file and ports (``Settings.kafka_broker_ports``).
The controllers form a static quorum (``controller.quorum.voters``: every node votes, so the
cluster keeps a majority with one node down), the internal topics are replicated like the
pipeline's topics, and the storage of every node is formatted with the same cluster id.
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


def node_name(node_id: int) -> str:
    return "kafka" if node_id == 1 else f"kafka-{node_id}"


def cluster_settings(settings, brokers: int):
    """``settings`` for a ``brokers``-node cluster: replication factor min(3, brokers) unless
    LAE_KAFKA_REPLICATION_FACTOR says otherwise (min ISR then derives to rf - 1)."""
    import os
    from dataclasses import replace

    changes = {"kafka_brokers": brokers}
    if not os.environ.get("LAE_KAFKA_REPLICATION_FACTOR") and brokers > 1:
        changes["kafka_replication_factor"] = min(3, brokers)
    return replace(settings, **changes)


def broker_services(settings) -> list[KafkaService]:
    """One service per node of the configured cluster (just ``kafka`` for one broker)."""
    return [KafkaService(settings, node_id) for node_id in range(1, settings.kafka_brokers + 1)]


def recorded_brokers(settings) -> int:
    """Brokers the last ``lae stack up`` of this state dir started (``down``/``status`` must
    find all of them even when the shell that runs them lacks LAE_KAFKA_BROKERS)."""
    try:
        return int((settings.service_dir("kafka") / "brokers").read_text().strip())
    except (FileNotFoundError, ValueError):
        return 1


class KafkaService(Service):
    name = "kafka"
    start_timeout = 120.0

    def __init__(self, settings, node_id: int = 1):
        self.node_id = node_id
        self.name = node_name(node_id)  # before Service.__init__: it names the process
        super().__init__(settings)

    @property
    def clustered(self) -> bool:
        return self.settings.kafka_brokers > 1

    @property
    def port(self) -> int:
        return self.settings.kafka_broker_ports[self.node_id - 1]

    @property
    def controller_port(self) -> int:
        from lae.config import KAFKA_PORT_STEP

        return self.settings.kafka_controller_port + KAFKA_PORT_STEP * (self.node_id - 1)

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
        # One id for every node of a cluster: node 1's dir keeps it.
        return self.settings.service_dir("kafka") / "cluster.id"

    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    def _quorum(self) -> dict[str, str]:
        s = self.settings
        if not self.clustered:
            # Dynamic KRaft quorum (KIP-853): the one voter is declared at format time
            # (--standalone), so only the bootstrap address is configured here.
            return {"controller.quorum.bootstrap.servers": f"{s.host}:{self.controller_port}"}
        # A static quorum of every node: fixed membership is all a local cluster needs, and
        # it needs no add-controller step after formatting.
        nodes = [KafkaService(s, n) for n in range(1, s.kafka_brokers + 1)]
        return {"controller.quorum.voters": ",".join(
            f"{n.node_id}@{s.host}:{n.controller_port}" for n in nodes)}

    def _internal_replication(self) -> dict[str, str]:
        # One broker: the internal topics cannot have more than one replica. A cluster
        # replicates them like the pipeline's topics, or a broker loss would lose the
        # archiver's committed offsets.
        rf = min(3, self.settings.kafka_brokers)
        min_isr = str(max(1, rf - 1))
        return {
            "offsets.topic.replication.factor": str(rf),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": min_isr,
        }

    def server_properties(self) -> dict[str, str]:
        s = self.settings
        controller = f"{s.host}:{self.controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            **self._quorum(),
            "listeners": f"PLAINTEXT://{s.host}:{self.port},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{s.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            # Topics come from provision() with their configured partitions; a typo'd topic
            # name in a producer must fail, not silently create a 1-partition topic.
            "auto.create.topics.enable": "false",
            # The pipeline's topics take their replication factor from the settings (provision).
            **self._internal_replication(),
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
        # A static quorum (cluster) is formatted without --standalone: the voters are in the
        # config, and naming a standalone voter as well is an error.
        quorum = [] if self.clustered else ["--standalone"]
        argv = self._java(STORAGE_TOOL, "format", "--cluster-id", cluster_id,
                          "--config", str(self.config_file), *quorum, "--ignore-formatted")
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
        if not port_open(self.settings.host, self.port):
            return False
        if self.clustered:
            return self._registered()
        kafka_round_trip(self.settings.kafka_bootstrap, timeout_s=10)
        return True

    def _registered(self) -> bool:
        """This node answers metadata requests on its own port and is in the cluster's broker
        list (a round trip through one topic would say nothing about this node)."""
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=f"{self.settings.host}:{self.port}",
                                 request_timeout_ms=10_000, client_id=f"lae-health-{self.name}")
        try:
            brokers = admin.describe_cluster()["brokers"]
            return any(b["broker_id"] == self.node_id and not b.get("is_fenced") for b in brokers)
        finally:
            admin.close()

    def provision(self) -> None:
        """logs.raw and logs.dlq, as ``lae.kafka.topic_specs`` defines them (partitions,
        replication factor from the settings, retention, min ISR); existing topics are kept."""
        from lae.kafka import ensure_topics

        if self.clustered and self.node_id != self.settings.kafka_brokers:
            return  # topics need every replica's broker: the last node provisions them
        if self.clustered:
            kafka_round_trip(self.settings.kafka_bootstrap, timeout_s=30)
        ensure_topics(self.settings)


class KafkaClusterService(Service):
    """Every node of a multi-broker cluster behind the one ``kafka`` service name, so that
    ``lae stack up|down|status`` and the test fixtures treat the cluster like the one broker.
    ``process`` is node 1's (status shows it); ``nodes`` are the per-node services, which the
    fault tests stop or kill one at a time."""

    name = "kafka"

    def __init__(self, settings):
        super().__init__(settings)
        self.nodes = broker_services(settings)
        self.process = self.nodes[0].process

    def ports(self) -> list[int]:
        return [port for node in self.nodes for port in node.ports()]

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError("a cluster starts its nodes, not a command of its own")

    def start(self) -> bool:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "brokers").write_text(f"{len(self.nodes)}\n")
        # Formatting reads node 1's cluster id: create it before any node formats.
        if not self.nodes[0].cluster_id_file.exists():
            self.nodes[0].cluster_id_file.write_text(new_cluster_id() + "\n")
        started = [node.start() for node in self.nodes]  # all first: the quorum needs a majority
        return any(started)

    def wait_healthy(self) -> float:
        return max(node.wait_healthy() for node in self.nodes)

    def healthy(self) -> bool:
        return all(node.healthy() for node in self.nodes)

    def provision(self) -> None:
        self.nodes[-1].provision()

    def down(self) -> bool:
        stopped = [node.down() for node in reversed(self.nodes)]
        return any(stopped)
