"""Session fixtures for the real services (Kafka 4 KRaft, Elasticsearch 9, Alertmanager, Jaeger v2) on 127.0.0.1.

The contract other tests rely on:

- ``kafka_bootstrap`` (``"127.0.0.1:9092"``), ``es_url`` (``"http://127.0.0.1:9200"``) and
  ``alertmanager_url`` (``"http://127.0.0.1:9093"``) and ``jaeger_url`` (``"http://127.0.0.1:16686"``,
  reading the ``logpipe`` prefix): session-scoped; each starts only its own service,
  or reuses one that is already running (started by ``logpipe dev up``, another pytest run, or named
  by ``LOGPIPE_KAFKA_BOOTSTRAP`` / ``LOGPIPE_ES_URL`` / ``LOGPIPE_ALERTMANAGER_URL``). Services started
  here keep running after the session so the next run starts in no time; ``logpipe dev down`` stops them.
- ``service_manager`` (type it ``logpipe.dev.services.outage.OutageControl``): ``.stop(name)`` /
  ``.start(name)`` for ``"kafka"``, ``"elasticsearch"`` or ``"alertmanager"`` to test outages. Whatever
  a test stopped is started again (and waited for) when the test ends, so later tests find every
  service running. Skips for services logpipe does not control. Tests in other pytest processes that
  use services wait while an outage test runs (see ``logpipe/dev/services/sharing.py``), so engineers
  sharing one machine do not break each other's runs.
- ``unique_name``: function-scoped, lowercase ``[a-z0-9-]``, unique per test and run; a valid Kafka topic
  and Elasticsearch index name.

``LOGPIPE_SERVICES=local|testcontainers|external|auto`` forces how services are provided
(see ``logpipe/dev/services/backend.py``).
"""

from __future__ import annotations

import re
import signal
import socket
import uuid
from collections.abc import Iterator

import pytest

from logpipe.dev.faults.kafka import FaultedKafka, faulted_kafka_running, start_faulted_kafka, stop_faulted_kafka
from logpipe.dev.services import ServiceBackend, ServiceName, open_backend
from logpipe.dev.services.alertmanager_secure import SecureAlertmanager, SecuredAlertmanager
from logpipe.dev.services.es_proxy import ProxyThread, SecuredEs
from logpipe.dev.services.health import reachable
from logpipe.dev.services.kafka_secure import SecureKafka, ensure_secure_kafka
from logpipe.dev.services.outage import OutageControl
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.sharing import ServiceUseLock


def pytest_configure(config: pytest.Config) -> None:
    """Turn SIGTERM (``timeout 600 pytest ...``) into an interrupt, so fixtures still tear down and
    services an outage test stopped are started again."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def dev_services() -> Iterator[ServiceBackend]:
    """The provider of the real services for this session (local processes by default)."""
    backend = open_backend()
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(dev_services: ServiceBackend) -> str:
    """Bootstrap servers of a running Kafka 4 (KRaft), e.g. ``"127.0.0.1:9092"``."""
    return dev_services.ensure("kafka")


@pytest.fixture(scope="session")
def es_url(dev_services: ServiceBackend) -> str:
    """Base URL of a running Elasticsearch 9, e.g. ``"http://127.0.0.1:9200"``."""
    return dev_services.ensure("elasticsearch")


@pytest.fixture(scope="session")
def alertmanager_url(dev_services: ServiceBackend) -> str:
    """Base URL of a running Alertmanager, e.g. ``"http://127.0.0.1:9093"``."""
    return dev_services.ensure("alertmanager")


@pytest.fixture(scope="session")
def secure_kafka() -> SecureKafka:
    """A second local broker with SASL_SSL (PLAIN, SCRAM-SHA-256/512) and mutual-TLS listeners, its CA
    and credential files (``logpipe/dev/services/kafka_secure.py``); started once, kept running."""
    return ensure_secure_kafka()


@pytest.fixture(scope="session")
def faulted_kafka() -> Iterator[FaultedKafka]:
    """A broker of its own reached through fault proxies (``logpipe/dev/faults/kafka.py``): network
    faults never touch the shared broker. Stopped at the end of the session if this session started it."""
    was_running = faulted_kafka_running()
    kafka = start_faulted_kafka()
    try:
        yield kafka
    finally:
        if not was_running:
            stop_faulted_kafka()


@pytest.fixture(scope="session")
def es_proxy_control(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyThread]:
    """The proxy behind ``secure_es`` itself (``.proxy.set_password(...)`` rotates the password)."""
    proxy = ProxyThread(es_url, tmp_path_factory.mktemp("es-proxy"))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def secure_es(es_proxy_control: ProxyThread) -> SecuredEs:
    """The real Elasticsearch behind a TLS proxy that demands basic auth or an API key
    (``logpipe/dev/services/es_proxy.py``: the integ-test-zip has no security module)."""
    assert es_proxy_control.started is not None
    return es_proxy_control.started


@pytest.fixture(scope="session")
def secure_alertmanager(
    alertmanager_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuredAlertmanager]:
    """The real Alertmanager run with its own ``--web.config.file`` (TLS, basic auth with a bcrypt
    hash) on a free port (``alertmanager_url`` first: it installs the package on a fresh machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    am = SecureAlertmanager(tmp_path_factory.mktemp("secure-am"), port)
    try:
        yield am.start()
    finally:
        am.stop()


@pytest.fixture(scope="session")
def jaeger_url(dev_services: ServiceBackend) -> str:
    """Base URL of a running Jaeger v2 query service reading the ``logpipe`` index prefix of
    ``es_url``'s Elasticsearch, e.g. ``"http://127.0.0.1:16686"`` (its HTTP API: ``/api/...``)."""
    return dev_services.ensure("jaeger")


_ENDPOINT_FIXTURES: dict[str, ServiceName] = {
    "kafka_bootstrap": "kafka",
    "es_url": "elasticsearch",
    "alertmanager_url": "alertmanager",
    "jaeger_url": "jaeger",
}
_SERVICE_FIXTURES = {*_ENDPOINT_FIXTURES, "service_manager", "dev_services"}


@pytest.fixture(autouse=True)
def _service_use(request: pytest.FixtureRequest) -> Iterator[ServiceUseLock | None]:
    """Tests using services hold a shared lock (another process's outage test waits for them), and
    find their services running: one that something stopped (not a test's own outage) is restarted."""
    if not (request.node.get_closest_marker("integration") or _SERVICE_FIXTURES & set(request.fixturenames)):
        yield None
        return
    lock = ServiceUseLock(DevPaths.from_env().in_use)
    lock.shared()
    try:
        used = [(f, name) for f, name in _ENDPOINT_FIXTURES.items() if f in request.fixturenames]
        if used:
            backend: ServiceBackend = request.getfixturevalue("dev_services")
            for fixture, name in used:
                if backend.controls(name) and not reachable(request.getfixturevalue(fixture)):
                    backend.start(name)
        yield lock
    finally:
        lock.release()


@pytest.fixture
def service_manager(
    dev_services: ServiceBackend, _service_use: ServiceUseLock | None
) -> Iterator[OutageControl]:
    """Stop/start services to test outages; they are running again when the test ends.

    Other pytest processes on this machine wait (their tests using services do not start) from the
    first ``stop`` until this test ends, so an outage here never fails someone else's test.
    """
    control = OutageControl(dev_services, _service_use, uncontrolled=pytest.skip)
    try:
        yield control
    finally:
        control.restore()


_UNSAFE = re.compile(r"[^a-z0-9]+")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A lowercase name unique to this test and run, valid as a Kafka topic and an ES index."""
    base = _UNSAFE.sub("-", request.node.name.lower()).strip("-")[:40].strip("-") or "test"
    return f"t-{base}-{uuid.uuid4().hex[:10]}"
