"""The testcontainers backend: the same three services in Docker, where a Docker engine answers.

Host ports are chosen once per service and bound explicitly, so an endpoint stays the same across
``stop``/``start`` (outage tests). Containers are removed when the session closes the backend.
"""

from __future__ import annotations

import socket
from typing import Any

from logpipe.dev.services.backend import ServiceName
from logpipe.dev.services.elasticsearch import ES_VERSION
from logpipe.dev.services.errors import DevServiceError
from logpipe.dev.services.health import probe, wait_healthy
from logpipe.dev.services.kafka import KAFKA_VERSION

ALERTMANAGER_IMAGE = "prom/alertmanager:v0.28.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _container(name: ServiceName, host_port: int) -> tuple[Any, str]:
    """An unstarted container for ``name`` published on ``host_port``, and its endpoint."""
    from testcontainers.core.container import DockerContainer

    if name == "kafka":
        c = DockerContainer(f"apache/kafka:{KAFKA_VERSION}").with_bind_ports(9092, host_port)
        env = {
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{host_port}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
            "KAFKA_NUM_PARTITIONS": "3",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_HEAP_OPTS": "-Xmx512m -Xms512m",
        }
        return c.with_envs(**env), f"127.0.0.1:{host_port}"
    if name == "elasticsearch":
        image = f"docker.elastic.co/elasticsearch/elasticsearch:{ES_VERSION}"
        c = DockerContainer(image).with_bind_ports(9200, host_port)
        env = {
            "discovery.type": "single-node",
            "xpack.security.enabled": "false",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false",
            "ES_JAVA_OPTS": "-Xms1g -Xmx1g",
        }
        return c.with_envs(**env), f"http://127.0.0.1:{host_port}"
    if name == "jaeger":  # it must reach Elasticsearch by a host name the container resolves: not wired
        raise DevServiceError(
            "no Jaeger container in the testcontainers backend — use LOGPIPE_SERVICES=local, or point "
            "LOGPIPE_JAEGER_URL at a Jaeger that reads this Elasticsearch (docs/TRACES.md)"
        )
    c = DockerContainer(ALERTMANAGER_IMAGE).with_bind_ports(9093, host_port)
    return c, f"http://127.0.0.1:{host_port}"


class ContainerServices:
    """Kafka, Elasticsearch and Alertmanager as containers, started on first use."""

    kind = "testcontainers"
    start_timeout = 240.0

    def __init__(self) -> None:
        self._running: dict[ServiceName, tuple[Any, str]] = {}

    def ensure(self, name: ServiceName) -> str:
        if name not in self._running:
            container, endpoint = _container(name, _free_port())
            container.start()
            self._running[name] = (container, endpoint)
        return self._wait(name)

    def controls(self, name: ServiceName) -> bool:
        return True

    def stop(self, name: ServiceName) -> None:
        container, _ = self._get(name)
        container.get_wrapped_container().stop(timeout=30)

    def start(self, name: ServiceName) -> str:
        container, _ = self._get(name)
        container.get_wrapped_container().start()
        return self._wait(name)

    def healthy(self, name: ServiceName) -> bool:
        return name in self._running and probe(name, self._running[name][1])

    def close(self) -> None:
        while self._running:
            _, (container, _) = self._running.popitem()
            container.stop()  # removes the container

    def _get(self, name: ServiceName) -> tuple[Any, str]:
        if name not in self._running:
            raise DevServiceError(f"{name} has no container yet — request its fixture first")
        return self._running[name]

    def _wait(self, name: ServiceName) -> str:
        container, endpoint = self._running[name]

        def logs() -> str:
            out, err = container.get_logs()
            return "\n".join((out + err).decode(errors="replace").splitlines()[-25:])

        wait_healthy(name, endpoint, timeout=self.start_timeout, what="container", log_tail=logs)
        return str(endpoint)
