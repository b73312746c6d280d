"""Kafka 4 in KRaft mode (one combined broker and controller) from Maven Central jars, on Java 17+."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from logpipe.dev.services.errors import ServiceStartError
from logpipe.dev.services.java import find_java
from logpipe.dev.services.maven import Artifact, copy_dependencies
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.service import LocalService, Report, _silent

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
# Kafka's pom brings log4j-core but no SLF4J binding; this one matches the log4j it ships with.
LOG4J_VERSION = "2.24.3"
HEAP = "512m"

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = info
"""


class KafkaService(LocalService):
    """Kafka broker+controller on 127.0.0.1 (clients on ``port``, the controller on ``controller_port``)."""

    name = "kafka"
    start_timeout = 120.0

    def __init__(
        self, paths: DevPaths, report: Report = _silent, port: int = 9092, controller_port: int = 19093
    ) -> None:
        super().__init__(paths, report)
        self.port = port
        self.controller_port = controller_port

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    @property
    def libs(self) -> Path:
        """The folder of Kafka's jars in the cache."""
        return self.paths.cache / "kafka" / KAFKA_VERSION / "libs"

    def provision(self) -> None:
        if self.libs.is_dir():
            return
        self.report(f"fetching Kafka {KAFKA_VERSION} jars with mvn (first run only)...")
        tmp = self.libs.with_name(f"libs.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        copy_dependencies(
            [
                Artifact("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION),
                Artifact("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
            ],
            tmp,
            self.paths.cache / "kafka" / KAFKA_VERSION / "mvn",
        )
        os.replace(tmp, self.libs)

    @property
    def _config(self) -> Path:
        return self.state_dir / "config"

    @property
    def _data(self) -> Path:
        return self.state_dir / "data"

    def server_properties(self) -> str:
        """The broker's configuration: single node, loopback only, replication factors of 1."""
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self._data),
            "num.partitions": "3",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            # Fewer offset partitions: creating the 50 default ones slows the first consumer group.
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "6",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        return "".join(f"{k}={v}\n" for k, v in settings.items())

    def _java_args(self) -> list[str]:
        java = find_java(17, service="Kafka", env_vars=("LOGPIPE_KAFKA_JAVA_HOME", "JAVA_HOME"))
        return [
            str(java.java),
            f"-Xms{HEAP}",
            f"-Xmx{HEAP}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._config / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
        ]

    def prepare(self) -> None:
        self._config.mkdir(parents=True, exist_ok=True)
        (self._config / "server.properties").write_text(self.server_properties())
        (self._config / "log4j2.properties").write_text(_LOG4J2)
        if (self._data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = [
            *self._java_args(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self._config / "server.properties"),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise ServiceStartError(f"formatting Kafka's storage in {self._data} failed:\n{tail}")

    def command(self) -> list[str]:
        return [*self._java_args(), "kafka.Kafka", str(self._config / "server.properties")]
