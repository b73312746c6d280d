"""The agent with ``sink: {type: sls}`` against the local SLS server, on a kubelet-shaped tree.

While SLS is unreachable the agent reads but no checkpoint moves; once SLS is up every line arrives
with its file's tags and the checkpoints reach the files' ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import pytest

from logpipe.dev.demo.podsim import PodSimulator, SimPod
from logpipe.dev.services.sls import SlsServer
from logpipe.dev.services.sls.server import StoredLog
from shipper.agent import Agent
from shipper.config import ShipperConfig
from shipper.sinks.sls.sink import SlsSink

pytestmark = pytest.mark.integration

KEY_ID, SECRET = "test-ak", "test-secret-0123456789"
PROJECT = "shop-prod"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shipper_config(tmp: Path, port: int) -> ShipperConfig:
    return ShipperConfig.model_validate(
        {
            "node_name": "node-7",
            "pods_root": str(tmp / "pods"),
            "logs_root": str(tmp / "logs"),
            "registry": {"path": str(tmp / "registry.json"), "flush_interval": "100ms"},
            "sink": {
                "type": "sls",
                "endpoint": f"http://127.0.0.1:{port}",
                "project": PROJECT,
                "access_key_id": KEY_ID,
                "access_key_secret": SECRET,
                "request_timeout": "2s",
            },
            "pod_metadata": {"kubernetes_api": "off"},
            "tail": {"poll_interval": "20ms"},
            "pipeline": {"linger": "10ms", "retry_initial": "50ms", "retry_max": "300ms"},
            "http": {"host": "127.0.0.1", "port": 0},
            "shutdown_grace": "5s",
        }
    )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Agent, int, PodSimulator]]:
    """An agent shipping to a port where SLS does not run yet."""
    sim = PodSimulator(tmp_path / "pods", tmp_path / "logs", seed=7)
    port = free_port()
    agent = Agent(shipper_config(tmp_path, port))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent, port, sim
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


async def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def offsets(agent: Agent) -> dict[str, int]:
    return {e.path: e.offset for e in agent.registry.entries()}


def sizes_of(paths: Iterable[str]) -> dict[str, int]:
    return {p: Path(p).stat().st_size for p in paths}


def stored(server: SlsServer, pods: list[SimPod]) -> dict[tuple[str, str], list[StoredLog]]:
    """The logs SLS holds, by (pod, log_type)."""
    out: dict[tuple[str, str], list[StoredLog]] = {}
    for log_type in ("access", "stdout"):
        for log in server.logs(PROJECT, f"logpipe-{log_type}"):
            out.setdefault((log.tags["__tag__:pod"], log_type), []).append(log)
    return out


async def test_every_line_arrives_with_its_tags_and_checkpoints_follow_delivery(
    running: tuple[Agent, int, PodSimulator],
) -> None:
    agent, port, sim = running
    assert isinstance(agent.sink, SlsSink)
    pods = [sim.add_pod("cart"), sim.add_pod("pay", namespace="payments")]
    for pod in pods:
        sim.write_access(pod, 40)
        sim.write_stdout(pod, [f"started {pod.name}", f"listening {pod.name}"])
    files = {str(p.access_log): p for p in pods} | {str(p.stdout_log): p for p in pods}

    # SLS is down: the lines are read and held, and no checkpoint moves past 0.
    await until(lambda: set(files) <= set(offsets(agent)) and agent.pipeline.bytes_in_flight > 0)
    await asyncio.sleep(0.5)  # several failed sends later
    assert all(offsets(agent)[f] == 0 for f in files)
    assert not agent.sink.connected

    server = SlsServer({KEY_ID: SECRET}, port=port)
    await server.start()
    try:
        sizes = sizes_of(files)
        await until(lambda: all(offsets(agent).get(f) == n for f, n in sizes.items()))
        got = stored(server, pods)
        # Checkpoints moved only for delivered bytes: everything they cover is in SLS.
        for pod in pods:
            access = got[(pod.name, "access")]
            stdout = got[(pod.name, "stdout")]
            assert [log.contents["content"] for log in access] == pod.access_log.read_bytes().splitlines()
            assert len(stdout) == 2
            assert stdout[0].contents["content"].endswith(f"started {pod.name}".encode())
            for log, path in [*((x, pod.access_log) for x in access), *((x, pod.stdout_log) for x in stdout)]:
                assert log.source == "node-7"
                assert log.topic == pod.component
                tags = {k.removeprefix("__tag__:"): v for k, v in log.tags.items()}
                keys = ("namespace", "pod", "pod_uid", "container", "component", "node", "log_type", "path")
                assert {k: tags[k] for k in keys} == {
                    "namespace": pod.namespace,
                    "pod": pod.name,
                    "pod_uid": pod.uid,
                    "container": pod.container,
                    "component": pod.component,
                    "node": "node-7",
                    "log_type": "access" if path == pod.access_log else "stdout",
                    "path": str(path),
                }
        await until(lambda: agent.sink.connected)

        # Lines written now are shipped too, and their checkpoint follows them.
        sim.write_access(pods[0], 5)
        size = sizes_of([str(pods[0].access_log)])[str(pods[0].access_log)]
        await until(lambda: offsets(agent)[str(pods[0].access_log)] == size)
        assert len(stored(server, pods)[(pods[0].name, "access")]) == 45
    finally:
        with contextlib.suppress(Exception):
            await server.stop()

