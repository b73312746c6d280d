"""Session fixtures for the real services (Kafka 4 KRaft, Elasticsearch 9, Alertmanager) on 127.0.0.1.

The contract other tests rely on:

- ``kafka_bootstrap`` (``"127.0.0.1:9092"``), ``es_url`` (``"http://127.0.0.1:9200"``) and
  ``alertmanager_url`` (``"http://127.0.0.1:9093"``): session-scoped; each starts only its own service,
  or reuses one that is already running (started by ``logpipe dev up``, another pytest run, or named
  by ``LOGPIPE_KAFKA_BOOTSTRAP`` / ``LOGPIPE_ES_URL`` / ``LOGPIPE_ALERTMANAGER_URL``). Services started
  here keep running after the session so the next run starts in no time; ``logpipe dev down`` stops them.
- ``service_manager``: ``.stop(name)`` / ``.start(name)`` for ``"kafka"``, ``"elasticsearch"`` or
  ``"alertmanager"`` to test outages. Whatever a test stopped is started again (and waited for) when
  the test ends, so later tests find every service running. Skips for services logpipe does not control.
  Tests in other pytest processes that use services wait while an outage test runs (see
  ``logpipe/devservices/sharing.py``), so engineers sharing one machine do not break each other's runs.
- ``unique_name``: function-scoped, lowercase ``[a-z0-9-]``, unique per test and run; a valid Kafka topic
  and Elasticsearch index name.

``LOGPIPE_SERVICES=local|testcontainers|external|auto`` forces how services are provided
(see ``logpipe/devservices/backend.py``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from logpipe.devservices import ServiceBackend, ServiceName, open_backend
from logpipe.devservices.backend import service_name
from logpipe.devservices.paths import DevPaths
from logpipe.devservices.sharing import ServiceUseLock


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


_SERVICE_FIXTURES = {"kafka_bootstrap", "es_url", "alertmanager_url", "service_manager", "dev_services"}


@pytest.fixture(autouse=True)
def _service_use(request: pytest.FixtureRequest) -> Iterator[ServiceUseLock | None]:
    """Tests using services hold a shared lock, so another process's outage test waits for them."""
    if not (request.node.get_closest_marker("integration") or _SERVICE_FIXTURES & set(request.fixturenames)):
        yield None
        return
    lock = ServiceUseLock(DevPaths.from_env().in_use)
    lock.shared()
    try:
        yield lock
    finally:
        lock.release()


class OutageControl:
    """Stops and starts services for one test, and restarts whatever is still stopped afterwards."""

    def __init__(self, backend: ServiceBackend, use: ServiceUseLock | None = None) -> None:
        self._backend = backend
        self._use = use
        self._stopped: list[ServiceName] = []

    def stop(self, name: str) -> None:
        """Stop ``name``; returns once it no longer answers. Skips the test for external services."""
        svc = service_name(name)
        if not self._backend.controls(svc):
            pytest.skip(f"{svc} is not run by logpipe here (external service): outage tests need control")
        self._backend.ensure(svc)  # stop what is running, so start() later is a real restart
        if self._use is not None:
            self._use.exclusive()  # wait for other processes' tests to finish with the services
        if svc not in self._stopped:
            self._stopped.append(svc)
        self._backend.stop(svc)

    def start(self, name: str) -> str:
        """Start ``name`` again; returns its endpoint once healthy."""
        svc = service_name(name)
        endpoint = self._backend.start(svc)
        if svc in self._stopped:
            self._stopped.remove(svc)
        return endpoint

    def healthy(self, name: str) -> bool:
        """One quick health probe of ``name``."""
        return self._backend.healthy(service_name(name))

    def restore(self) -> None:
        """Start every service this test stopped and did not start again."""
        while self._stopped:
            self._backend.start(self._stopped.pop())


@pytest.fixture
def service_manager(
    dev_services: ServiceBackend, _service_use: ServiceUseLock | None
) -> Iterator[OutageControl]:
    """Stop/start services to test outages; they are running again when the test ends.

    Other pytest processes on this machine wait (their tests using services do not start) from the
    first ``stop`` until this test ends, so an outage here never fails someone else's test.
    """
    control = OutageControl(dev_services, _service_use)
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
