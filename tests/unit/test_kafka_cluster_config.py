"""The multi-broker Kafka configuration (``lae stack up --kafka-brokers N``), without brokers:
ports, quorum, replication, and that the one-broker default is what it was."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lae.config import Settings
from lae.kafka import topic_specs
from lae.stack.kafka import KafkaClusterService, KafkaService, cluster_settings, recorded_brokers
from lae.stack.manager import get_service


@pytest.fixture
def base(tmp_path: Path, monkeypatch) -> Settings:
    monkeypatch.delenv("LAE_KAFKA_REPLICATION_FACTOR", raising=False)
    return Settings(home=tmp_path, state_dir=tmp_path / "state", jars_dir=tmp_path / "jars",
                    kafka_port=19092, kafka_controller_port=19093)


def test_single_broker_default_is_unchanged(base):
    service = get_service("kafka", base)
    assert type(service) is KafkaService and service.name == "kafka"
    props = service.server_properties()
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert "controller.quorum.voters" not in props
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert base.kafka_bootstrap == "127.0.0.1:19092"
    assert service.ports() == [19092, 19093]


def test_three_brokers_ports_quorum_and_replication(base):
    cfg = cluster_settings(base, 3)
    assert cfg.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112"
    cluster = get_service("kafka", cfg)
    assert isinstance(cluster, KafkaClusterService)
    assert [n.name for n in cluster.nodes] == ["kafka", "kafka-2", "kafka-3"]
    assert cluster.ports() == [19092, 19093, 19102, 19103, 19112, 19113]
    voters = "1@127.0.0.1:19093,2@127.0.0.1:19103,3@127.0.0.1:19113"
    for node in cluster.nodes:
        props = node.server_properties()
        assert props["node.id"] == str(node.node_id)
        assert props["controller.quorum.voters"] == voters
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{node.port}"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"
        assert node.cluster_id_file == cluster.nodes[0].cluster_id_file
    raw, dlq = topic_specs(cfg)
    assert raw.replication_factor == 3 and raw.configs["min.insync.replicas"] == "2"
    assert dlq.replication_factor == 3


def test_the_state_dir_remembers_the_cluster(base):
    cluster = get_service("kafka", cluster_settings(base, 3))
    (cluster.dir).mkdir(parents=True)
    (cluster.dir / "brokers").write_text("3\n")
    assert recorded_brokers(base) == 3
    # `lae stack down` from a shell without LAE_KAFKA_BROKERS still finds every node.
    assert len(get_service("kafka", base).nodes) == 3


def test_an_explicit_replication_factor_wins(base, monkeypatch):
    monkeypatch.setenv("LAE_KAFKA_REPLICATION_FACTOR", "2")
    cfg = cluster_settings(replace(base, kafka_replication_factor=2), 3)
    assert cfg.kafka_replication_factor == 2
