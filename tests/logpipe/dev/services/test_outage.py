"""Outage control: what a test stops is running again afterwards, external services are refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from logpipe.dev.services import DevServiceError
from logpipe.dev.services.alertmanager import AlertmanagerService
from logpipe.dev.services.backend import ExternalServices
from logpipe.dev.services.health import reachable
from logpipe.dev.services.manager import ServiceManager
from logpipe.dev.services.outage import OutageControl
from logpipe.dev.services.paths import DevPaths

pytestmark = pytest.mark.integration


@pytest.fixture
def private_manager(tmp_path: Path) -> Iterator[ServiceManager]:
    """An Alertmanager of this test's own, so stopping it disturbs nobody."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    paths = DevPaths(cache=tmp_path / "cache", state=tmp_path / "state")
    mgr = ServiceManager(paths, [AlertmanagerService(paths, port=port)])
    try:
        yield mgr
    finally:
        mgr.down()


def test_restore_starts_what_the_test_left_stopped(private_manager: ServiceManager) -> None:
    endpoint = private_manager.ensure("alertmanager")
    control = OutageControl(private_manager)
    control.stop("alertmanager")
    assert not reachable(endpoint)
    assert not control.healthy("alertmanager")
    control.restore()
    assert control.healthy("alertmanager")


def test_stop_then_start_by_the_test_needs_no_restore(private_manager: ServiceManager) -> None:
    control = OutageControl(private_manager)
    control.stop("alertmanager")
    endpoint = control.start("alertmanager")
    assert reachable(endpoint)
    before = private_manager.status()[0].pid
    control.restore()  # nothing left to do: the same process keeps running
    assert private_manager.status()[0].pid == before


def test_external_services_cannot_be_stopped() -> None:
    backend = ExternalServices({"alertmanager": "http://127.0.0.1:1"}, fallback=None)
    with pytest.raises(DevServiceError, match="external service"):
        OutageControl(backend).stop("alertmanager")


def test_the_fixture_stops_and_starts_the_session_service(
    service_manager: OutageControl, alertmanager_url: str
) -> None:
    service_manager.stop("alertmanager")
    assert not reachable(alertmanager_url)
    assert service_manager.start("alertmanager") == alertmanager_url
    assert service_manager.healthy("alertmanager")
