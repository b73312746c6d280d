"""The agent under its supervisor: failures injected into each task kind, a hung read, honest health.

Each story runs the real agent (discovery, streams, read loop, pipeline, registry) on a kubelet-shaped
tree with the in-memory sink, injects one failure, and checks what an SRE would: the task recovered
(or the agent exited 1 with the acknowledged registry on disk), /healthz or /readyz said so, and every
line arrived exactly once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipper import agent as agent_module
from shipper import telemetry
from shipper.agent import Agent
from shipper.config import ShipperConfig
from shipper.discovery import Discovery
from shipper.tailer import Tailer
from tests.logpipe.event_capture import records_of
from tests.shipper.stories import UIDS, MemorySink


def volume(tmp: Path, pod: str = "pod-a") -> Path:
    return tmp / "pods" / UIDS[pod] / "volumes" / "kubernetes.io~empty-dir" / "logs"


@dataclass
class Running:
    agent: Agent
    sink: MemorySink
    stop: asyncio.Event
    task: asyncio.Task[int]
    tmp: Path
    counters: dict[str, int]

    def write_lines(self, name: str, n: int, pod: str = "pod-a") -> list[bytes]:
        start = self.counters.get(name, 0)
        self.counters[name] = start + n
        lines = [f"{pod} {name} {i}".encode() for i in range(start, start + n)]
        p = volume(self.tmp, pod) / name
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "ab") as f:
            f.write(b"".join(x + b"\n" for x in lines))
        return lines

    def delivered(self) -> list[bytes]:
        return [r.value for r in self.sink.delivered]

    async def wait_delivered(self, lines: list[bytes], timeout: float = 15.0) -> None:
        await until(lambda: set(lines) <= set(self.delivered()), timeout, f"lines not delivered: {len(lines)}")

    def registry_bytes(self) -> bytes:
        return Path(self.agent.cfg.registry.path).read_bytes()

    def registry_offsets(self) -> dict[str, int]:
        path = Path(self.agent.cfg.registry.path)
        if not path.exists():
            return {}
        doc = orjson.loads(path.read_bytes())
        return {Path(f["path"]).name: f["offset"] for f in doc["files"]}


async def until(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.02)


def nbytes(lines: list[bytes]) -> int:
    return sum(len(x) + 1 for x in lines)


def config(tmp: Path, **over: Any) -> ShipperConfig:
    base: dict[str, Any] = {
        "node_name": "node-1",
        "pods_root": str(tmp / "pods"),
        "logs_root": str(tmp / "logs"),
        "registry": {"path": str(tmp / "state" / "registry.json"), "flush_interval": "50ms"},
        "pod_metadata": {"kubernetes_api": "off"},
        "discovery": {"rescan_interval": "200ms"},
        "tail": {"poll_interval": "20ms", "read_timeout": "300ms"},
        "pipeline": {"linger": "5ms"},
        "http": {"host": "127.0.0.1", "port": 0},
        "shutdown_grace": "5s",
    }
    for k, v in over.items():
        base[k] = base.get(k, {}) | v if isinstance(v, dict) else v
    return ShipperConfig.model_validate(base)


@pytest.fixture
def start(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    runs: list[Running] = []

    async def _start(sink: MemorySink | None = None, **over: Any) -> Running:
        volume(tmp_path).mkdir(parents=True, exist_ok=True)
        sink = sink or MemorySink()
        agent = Agent(config(tmp_path, **over), sink=sink)
        stop = asyncio.Event()
        r = Running(agent, sink, stop, asyncio.create_task(agent.run(stop)), tmp_path, {})
        runs.append(r)
        await until(lambda: agent.http_port > 0 and agent.streams is not None, what="agent started")
        return r

    async def gen() -> AsyncIterator[Callable[..., Any]]:
        yield _start
        for r in runs:
            r.stop.set()
            if not r.task.done():
                await asyncio.wait_for(r.task, 30)

    return gen()  # type: ignore[return-value]


@pytest.fixture
async def shipper(start: AsyncIterator[Callable[..., Any]]) -> AsyncIterator[Callable[..., Any]]:
    fn = await start.__anext__()
    yield fn
    with pytest.raises(StopAsyncIteration):
        await start.__anext__()


def task_failures(recs: list[logging.LogRecord]) -> list[tuple[object, object]]:
    return [(r.fields["task"], r.fields["action"]) for r in recs  # type: ignore[attr-defined]
            if r.getMessage() == "TaskFailed"]


async def test_a_read_loop_failure_is_restarted_and_nothing_is_lost(shipper: Callable[..., Any],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    run: Running = await shipper()
    first = run.write_lines("app.log", 50)
    await run.wait_delivered(first)
    real = Agent.read_round
    calls = {"n": 0}

    async def failing_once(self: Agent, now: float) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected read failure")
        return await real(self, now)

    with records_of("logpipe.supervisor") as recs:
        monkeypatch.setattr(Agent, "read_round", failing_once)
        second = run.write_lines("app.log", 50)
        await run.wait_delivered(first + second)
    assert task_failures(recs) == [("read", "restart")]
    assert sorted(run.delivered()) == sorted(first + second)  # exactly once
    assert run.agent._healthy() == (True, "ok")


async def test_a_discovery_failure_is_restarted_and_new_files_are_found(shipper: Callable[..., Any],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = Discovery.run
    calls = {"n": 0}

    async def failing_once(self: Discovery) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.EIO, "injected discovery failure")
        await real(self)

    monkeypatch.setattr(Discovery, "run", failing_once)
    with records_of("logpipe.supervisor") as recs:
        run: Running = await shipper()
        await until(lambda: calls["n"] >= 2, what="discovery restarted")
    lines = run.write_lines("new.log", 20)
    await run.wait_delivered(lines)
    assert task_failures(recs) == [("discovery", "restart")]


async def test_registry_writes_failing_keep_shipping_and_say_so(shipper: Callable[..., Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run: Running = await shipper()
    first = run.write_lines("app.log", 10)
    await run.wait_delivered(first)
    await until(lambda: run.registry_offsets().get("app.log") == 10 * len(first[0] + b"\n"), what="checkpoint")
    before = run.registry_bytes()

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(agent_module, "write_atomically", full_disk)
    second = run.write_lines("app.log", 10)
    await run.wait_delivered(first + second)
    await until(lambda: not run.agent._ready()[0], what="readyz failing")
    why = run.agent._ready()[1]
    assert why.startswith("checkpoints not saved for ") and "No space left on device" in why
    assert telemetry.REGISTRY_WRITE_FAILING._value.get() == 1
    assert run.registry_bytes() == before  # the previous version stays
    assert run.agent._healthy()[0]  # a full disk is not a reason to restart the process

    monkeypatch.undo()  # space again: the next turn writes
    await until(lambda: run.agent._ready() == (True, "ready"), what="ready again")
    assert telemetry.REGISTRY_WRITE_FAILING._value.get() == 0
    assert run.registry_offsets()["app.log"] == nbytes(first + second)


async def test_a_hung_read_delays_that_file_only(shipper: Callable[..., Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = Tailer.read

    def read(self: Tailer, *a: Any, **kw: Any) -> Any:
        if self.target.relpath.endswith("stuck.log"):
            release.wait(30)  # an NFS server gone away
        return real(self, *a, **kw)

    monkeypatch.setattr(Tailer, "read", read)
    run: Running = await shipper()
    with records_of("logpipe.shipper") as recs:
        stuck = run.write_lines("stuck.log", 5)
        await until(lambda: any(r.getMessage() == "ReadStalled" for r in recs), what="ReadStalled")
        fine = run.write_lines("app.log", 30)
        await run.wait_delivered(fine, timeout=5)
        more = run.write_lines("app.log", 30)
        await run.wait_delivered(more, timeout=5)
        assert not set(stuck) & set(run.delivered())
        assert run.agent._healthy() == (True, "ok")  # one hung file, three threads left
        release.set()
        await run.wait_delivered(stuck)
    assert sorted(run.delivered()) == sorted(stuck + fine + more)


async def test_a_sink_that_cannot_connect_is_retried_and_not_ready(shipper: Callable[..., Any]) -> None:
    sink = MemorySink()
    attempts = {"n": 0}
    real_start = sink.start

    async def flaky_start() -> None:
        attempts["n"] += 1
        if attempts["n"] <= 3:
            raise ConnectionRefusedError("injected: broker down")
        await real_start()

    sink.start = flaky_start  # type: ignore[method-assign]
    run: Running = await shipper(sink)
    assert not run.agent._ready()[0]
    lines = run.write_lines("app.log", 10)
    await run.wait_delivered(lines)
    assert attempts["n"] == 4 and run.agent._ready() == (True, "ready")


async def test_a_hung_send_turns_healthz_failing_and_an_outage_does_not(shipper: Callable[..., Any]) -> None:
    sink = MemorySink()
    run: Running = await shipper(sink, health={"delivery_stall_after": "400ms", "stall_after": "400ms"},
                                 pipeline={"max_bytes_in_flight": 65536, "batch_max_bytes": 4096})
    sink.errors_left = 10**9  # an outage: every send fails, is retried, and the reader waits for capacity
    lines = run.write_lines("app.log", 8000)
    await until(lambda: not run.agent.pipeline.has_capacity, what="backpressure")
    await asyncio.sleep(1.0)
    assert run.agent._healthy() == (True, "ok")  # failing sends still turn; waiting readers are not stuck
    sink.errors_left = 0
    sink.hold()  # now a send that never returns: a hung client
    await until(lambda: not run.agent._healthy()[0], timeout=10, what="healthz failing")
    assert run.agent._healthy()[1].startswith("stalled: delivery")
    sink.release()
    await until(lambda: run.agent._healthy()[0], timeout=10, what="healthy again")
    await run.wait_delivered(lines, timeout=30)


async def test_a_task_that_keeps_failing_exits_1_with_only_acknowledged_offsets(
        shipper: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    run: Running = await shipper(health={"max_restarts": 1}, shutdown_grace="200ms")
    first = run.write_lines("app.log", 20)
    await run.wait_delivered(first)

    async def broken(self: Agent, now: float) -> bool:
        raise RuntimeError("injected: the read loop is broken")

    run.sink.hold()
    held = run.write_lines("app.log", 5)
    await until(lambda: run.sink.held > 0, what="a batch held")
    monkeypatch.setattr(Agent, "read_round", broken)
    assert await asyncio.wait_for(run.task, 30) == 1
    ok, why = run.agent._healthy()
    assert not ok and why.startswith("task read failed: RuntimeError: injected")
    # the held batch was never acknowledged: the registry holds the first 20 lines only
    assert run.registry_offsets()["app.log"] == nbytes(first)
    assert not set(held) & set(run.delivered())
