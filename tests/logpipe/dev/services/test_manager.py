"""The local service manager, told as stories with a real Alertmanager on a spare port.

Alertmanager starts in about a second, so it stands in for all three services here; Kafka and
Elasticsearch go through the same manager code (see tests/integration for their round trips).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logpipe.cli.main import app
from logpipe.dev.services.alertmanager import AlertmanagerService
from logpipe.dev.services.errors import PortTakenError
from logpipe.dev.services.manager import ServiceManager
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.ports import port_open

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ServiceManager]:
    paths = DevPaths(cache=tmp_path / "cache", state=tmp_path / "state")
    mgr = ServiceManager(paths, [AlertmanagerService(paths, port=free_port())])
    try:
        yield mgr
    finally:
        mgr.down()


def pid_of(mgr: ServiceManager) -> int | None:
    return mgr.status()[0].pid


def test_up_is_idempotent_and_down_leaves_nothing_listening(manager: ServiceManager) -> None:
    port = manager.service("alertmanager").ports[0]
    [first] = manager.up()
    assert first.state == "running" and first.pid is not None
    assert manager.up(["alertmanager"])[0].pid == first.pid  # already running: same process
    assert manager.healthy("alertmanager")

    manager.down(purge=True)
    assert not port_open("127.0.0.1", port)
    assert manager.status()[0].state == "stopped"
    assert [p.name for p in manager.paths.state.iterdir()] == ["services.lock"]


def test_stop_then_start_runs_a_new_process(manager: ServiceManager) -> None:
    endpoint = manager.ensure("alertmanager")
    before = pid_of(manager)
    manager.stop("alertmanager")
    assert manager.status()[0].state == "stopped"
    assert not manager.healthy("alertmanager")
    assert manager.start("alertmanager") == endpoint
    after = pid_of(manager)
    assert after is not None and after != before


def test_a_taken_port_is_named_with_its_process(manager: ServiceManager) -> None:
    port = manager.service("alertmanager").ports[0]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(PortTakenError, match=rf"port {port} \(pid \d+: .*python"):
            manager.up()
    assert manager.status()[0].state == "stopped"


def test_concurrent_callers_start_one_process(manager: ServiceManager) -> None:
    # Each caller has its own manager (as separate pytest sessions would) on the same state folder.
    paths, port = manager.paths, manager.service("alertmanager").ports[0]
    pids: list[int | None] = []
    errors: list[BaseException] = []

    def call_up() -> None:
        try:
            mgr = ServiceManager(paths, [AlertmanagerService(paths, port=port)])
            pids.append(mgr.up()[0].pid)
        except BaseException as exc:
            errors.append(exc)

    callers = [threading.Thread(target=call_up) for _ in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert errors == []
    assert len(pids) == 4 and len(set(pids)) == 1 and pids[0] is not None


def test_cli_up_status_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("LOGPIPE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LOGPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LOGPIPE_DEV_PORT_OFFSET", str(port - 9093))
    runner = CliRunner()
    try:
        up = runner.invoke(app, ["dev", "up", "alertmanager"])
        assert up.exit_code == 0, up.output
        assert f"alertmanager   running   http://127.0.0.1:{port}" in up.stdout

        status = runner.invoke(app, ["dev", "status"])
        assert status.exit_code == 1  # kafka and elasticsearch are not running on the shifted ports
        assert f"alertmanager   running   http://127.0.0.1:{port}" in status.stdout
    finally:
        down = runner.invoke(app, ["dev", "down", "--purge"])
    assert down.exit_code == 0, down.output
    assert "alertmanager   stopped" in down.stdout
    assert not port_open("127.0.0.1", port)
