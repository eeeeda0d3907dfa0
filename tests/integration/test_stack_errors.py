"""Start-up failures name the service and its log instead of hanging or failing silently."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from lae.stack.kafka import KafkaService
from lae.stack.process import ServiceError

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def other_settings(settings, tmp_path):
    """A second stack: own state dir and ports, the same jars."""
    return dataclasses.replace(settings, state_dir=tmp_path / "state",
                               kafka_port=_free_port(), kafka_controller_port=_free_port())


def test_kafka_port_taken_by_a_listener(other_settings):
    service = KafkaService(other_settings)
    with socket.socket() as squatter:
        squatter.bind((other_settings.host, other_settings.kafka_port))
        squatter.listen()
        with pytest.raises(ServiceError) as err:
            service.up()
    message = str(err.value)
    assert message.startswith("kafka:")
    assert str(other_settings.kafka_port) in message
    assert str(service.log_file) in message
    assert not service.process.is_running()


def test_kafka_port_bound_but_not_listening(other_settings):
    """The port check cannot see a bound, non-listening socket: Kafka itself fails to bind,
    and the stack reports the process exit with the log instead of waiting for the timeout."""
    service = KafkaService(other_settings)
    with socket.socket() as squatter:  # no SO_REUSEADDR, so Kafka's bind must fail
        squatter.bind((other_settings.host, other_settings.kafka_port))
        try:
            with pytest.raises(ServiceError) as err:
                service.up()
        finally:
            service.down()
    message = str(err.value)
    assert message.startswith("kafka:")
    assert str(service.log_file) in message
    assert "Address already in use" in service.log_file.read_text()


def test_cli_up_exits_non_zero_with_one_line_naming_service_and_log(tmp_path):
    """What a person sees: `lae stack up s3` with its port taken prints one error line."""
    import os
    import subprocess
    import sys

    port = _free_port()
    env = {**os.environ, "LAE_STATE_DIR": str(tmp_path / "state"), "LAE_S3_PORT": str(port)}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = subprocess.run([sys.executable, "-m", "lae.cli", "stack", "up", "s3"],
                                env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "s3" in errors[0] and str(port) in errors[0]
    assert str(tmp_path / "state" / "s3" / "s3.log") in errors[0]
