"""A second local Kafka broker that demands what managed clusters demand: SASL over TLS, mutual TLS.

Listeners (ports are ``base`` + 0..2, plus ``LOGPIPE_DEV_PORT_OFFSET``):

- ``PLAINTEXT://127.0.0.1:<base>`` — inter-broker and the health probe only;
- ``SASL_SSL://localhost:<base+1>`` — PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for user ``logpipe``;
- ``SSL://localhost:<base+2>`` — mutual TLS (a client certificate signed by the dev CA is required).

The broker's certificate names ``localhost`` only (not 127.0.0.1), so connecting by IP address is
how tests provoke a host name mismatch. The CA, the certificates and the password are generated
on the first start (``cryptography``, ``secrets``) into the state folder; SCRAM users are created
the KRaft way, by ``kafka-storage format --add-scram``. It runs in its own state folder
(``<state>/secure-kafka``) so it never disturbs the usual broker; :func:`ensure_secure_kafka` starts
it (tests call it from a session fixture).
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.dev.services.errors import ServiceStartError
from logpipe.dev.services.kafka import KafkaService
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.service import Report, _silent
from logpipe.dev.services.tls import CertFiles, ensure_ca, issue

if TYPE_CHECKING:
    from logpipe.dev.services.manager import ServiceManager

BASE_PORT = 9192
USER = "logpipe"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SecureKafka:
    """What a client needs to reach the secured broker (the password only as a file)."""

    plaintext: str
    sasl_ssl: str
    mtls: str
    host: str
    ca_file: Path
    username: str
    password_file: Path
    client_cert: CertFiles


class SecureKafkaService(KafkaService):
    """Kafka with SASL_SSL and SSL (mutual TLS) listeners beside a loopback plaintext one."""

    def __init__(self, paths: DevPaths, report: Report = _silent, base_port: int = BASE_PORT) -> None:
        super().__init__(paths, report, port=base_port, controller_port=base_port + 10000)
        self.sasl_port = base_port + 1
        self.mtls_port = base_port + 2

    @property
    def ports(self) -> list[int]:
        return [self.port, self.sasl_port, self.mtls_port, self.controller_port]

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def password_file(self) -> Path:
        return self.state_dir / "secrets" / "sasl-password"

    def _password(self) -> str:
        p = self.password_file
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(secrets.token_urlsafe(18))
            p.chmod(0o600)
        return p.read_text().strip()

    def _certs(self) -> tuple[CertFiles, CertFiles]:
        ca = ensure_ca(self.tls_dir, "logpipe dev Kafka CA")
        broker = issue(self.tls_dir, "broker", ["localhost"], ca)
        client = issue(self.tls_dir, "client", ["logpipe-client"], ca, client=True)
        return broker, client

    def endpoints(self) -> SecureKafka:
        broker, client = self._certs()
        return SecureKafka(
            plaintext=f"127.0.0.1:{self.port}",
            sasl_ssl=f"localhost:{self.sasl_port}",
            mtls=f"localhost:{self.mtls_port}",
            host="localhost",
            ca_file=broker.ca,
            username=USER,
            password_file=self.password_file,
            client_cert=client,
        )

    def server_properties(self) -> str:
        broker, _ = self._certs()
        pw = self._password()
        base = super().server_properties()
        lines = [ln for ln in base.splitlines() if not ln.startswith(("listeners=", "advertised.listeners=",
                                                                         "listener.security.protocol.map="))]
        extra = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},SASL_SSL://127.0.0.1:{self.sasl_port},"
            f"SSL://127.0.0.1:{self.mtls_port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},SASL_SSL://localhost:{self.sasl_port},"
            f"SSL://localhost:{self.mtls_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": ",".join(MECHANISMS),
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}="{pw}";',
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(broker.bundle),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(broker.ca),
            "listener.name.ssl.ssl.client.auth": "required",
            # A wrong password must be answered at once, not after the default 1 s penalty per try.
            "connection.failed.authentication.delay.ms": "0",
        }
        return "\n".join(lines) + "\n" + "".join(f"{k}={v}\n" for k, v in extra.items())

    def prepare(self) -> None:
        fresh = not (self._data / "meta.properties").exists()
        if not fresh:
            super().prepare()
            return
        self._config.mkdir(parents=True, exist_ok=True)
        # The base class formats storage without users; format here with them, then let it write configs.
        (self._config / "server.properties").write_text(self.server_properties())
        pw = self._password()
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = [*self._java_args(), "kafka.tools.StorageTool", "format", "-t", cluster_id,
               "-c", str(self._config / "server.properties")]
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            cmd += ["--add-scram", f"{mech}=[name={USER},password={pw}]"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).replace(pw, "***").strip().splitlines()[-15:])
            raise ServiceStartError(f"formatting the secured Kafka's storage in {self._data} failed:\n{tail}")
        super().prepare()  # writes log4j2.properties; storage is formatted now


def secure_paths(paths: DevPaths) -> DevPaths:
    """The secured broker's own state folder (the download cache stays shared)."""
    return DevPaths(cache=paths.cache, state=paths.state / "secure-kafka")


def ensure_secure_kafka(paths: DevPaths | None = None, report: Report = _silent) -> SecureKafka:
    """Start the secured broker unless it runs; return its endpoints and credential files."""
    manager, svc = _manager(paths, report)
    manager.ensure("kafka")
    return svc.endpoints()


def _manager(paths: DevPaths | None = None, report: Report = _silent) -> tuple[ServiceManager, SecureKafkaService]:
    from logpipe.dev.services.manager import ServiceManager, port_offset  # manager imports services: no cycle

    own = secure_paths(paths or DevPaths.from_env())
    svc = SecureKafkaService(own, report, base_port=BASE_PORT + port_offset())
    return ServiceManager(own, [svc], report), svc


def main(argv: list[str] | None = None) -> int:
    """``python -m logpipe.dev.services.kafka_secure up|status|down`` (scripts/test.sh stops what it started)."""
    from logpipe.dev.services.manager import own_broker_main

    manager, svc = _manager()

    def started() -> str:
        e = svc.endpoints()
        return (f"sasl_ssl={e.sasl_ssl} mtls={e.mtls} plaintext={e.plaintext} ca_file={e.ca_file} "
                f"username={e.username} password_file={e.password_file}")

    return own_broker_main(manager, argv, started)


if __name__ == "__main__":
    raise SystemExit(main())
