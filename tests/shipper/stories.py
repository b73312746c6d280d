"""Test helpers: an in-memory sink that can hold back acks, and a story-style shipper environment.

``ShipperEnv`` drives the real agent parts (streams, tailers, pipeline, the ack path, the registry)
without discovery or threads: ``env.write_lines("access.log", 3)``, ``await env.ship()``,
``env.rotate("access.log")``, ``env.expect_offset("access.log", ...)``, ``await env.restart()``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRecord
from shipper.agent import Agent
from shipper.config import ShipperConfig
from shipper.multiline import MultilineSpec
from shipper.target import FileTarget, PodInfo

UIDS = {
    "pod-a": "0b6f3c1e-1111-4a4a-9a9a-000000000001",
    "pod-b": "0b6f3c1e-2222-4a4a-9a9a-000000000002",
}


class MemorySink:
    """A sink keeping what it delivered; ``hold()`` makes sends wait until ``release()``."""

    name = "memory"

    def __init__(self) -> None:
        self.delivered: list[LineRecord] = []
        self.sends = 0
        self.errors_left = 0
        self.reject: Callable[[LineRecord], bool] = lambda r: False
        self._hold = False
        self._held: list[tuple[Sequence[LineRecord], asyncio.Future[BatchStatus]]] = []
        self._connected = False

    async def start(self) -> None:
        self._connected = True

    @property
    def connected(self) -> bool:
        return self._connected

    async def close(self) -> None:
        self._connected = False

    async def send(self, batch: Sequence[LineRecord]) -> BatchStatus:
        self.sends += 1
        if self.errors_left > 0:
            self.errors_left -= 1
            return BatchStatus.ERRORED
        if any(self.reject(r) for r in batch):
            return BatchStatus.REJECTED
        if self._hold:
            fut: asyncio.Future[BatchStatus] = asyncio.get_running_loop().create_future()
            self._held.append((batch, fut))
            return await fut
        self.delivered.extend(batch)
        return BatchStatus.DELIVERED

    def hold(self) -> None:
        self._hold = True

    @property
    def held(self) -> int:
        return len(self._held)

    def release(self, order: Callable[[list[int]], list[int]] = lambda ix: ix) -> None:
        """Deliver the held batches in ``order`` (a permutation of their indices) and stop holding."""
        held, self._held, self._hold = self._held, [], False
        for i in order(list(range(len(held)))):
            batch, fut = held[i]
            if fut.done():  # the sender was cancelled (a crash): nothing arrives
                continue
            self.delivered.extend(batch)
            fut.set_result(BatchStatus.DELIVERED)

    def values(self, path_suffix: str = "") -> list[bytes]:
        return [r.value for r in self.delivered if r.meta.path.endswith(path_suffix)]


class ShipperEnv:
    """A pods tree in ``tmp``, a memory sink and the agent's parts, driven step by step."""

    def __init__(self, tmp: Path, sink: MemorySink | None = None, **tail: object) -> None:
        self.tmp = tmp
        self.pods_root = tmp / "pods"
        self.pods_root.mkdir(exist_ok=True)
        self.sink = sink or MemorySink()
        self.now = 1000.0
        self.counters: dict[str, int] = {}
        tail_cfg = {"poll_interval": 0.01, "partial_line_timeout": 5.0} | tail
        identity = tail_cfg.pop("identity", "fingerprint")
        pipeline = tail_cfg.pop("pipeline", {})
        self.cfg = ShipperConfig.model_validate(
            {
                "node_name": "node-1",
                "pods_root": str(self.pods_root),
                "logs_root": str(tmp / "logs"),
                "registry": {"path": str(tmp / "registry.json")},
                "identity": {"strategy": identity},
                "tail": tail_cfg,
                "pipeline": {"linger": 0.001} | dict(pipeline),  # type: ignore[call-overload]
            }
        )
        self.agent = self._new_agent()

    def _new_agent(self) -> Agent:
        agent = Agent(self.cfg, sink=self.sink)
        agent.load_state(clock=lambda: self.now)
        return agent

    # --- the tree -----------------------------------------------------------------------------

    def relpath(self, name: str, pod: str = "pod-a") -> str:
        return f"{UIDS[pod]}/volumes/kubernetes.io~empty-dir/logs/{name}"

    def path(self, name: str, pod: str = "pod-a") -> Path:
        return self.pods_root / self.relpath(name, pod)

    def target(self, name: str, pod: str = "pod-a", log_type: str = "app",
               multiline: MultilineSpec | None = None) -> FileTarget:
        info = PodInfo(namespace="default", pod=pod, pod_uid=UIDS[pod], component=pod.split("-")[0])
        return FileTarget(str(self.pods_root), self.relpath(name, pod), log_type, f"logpipe-{log_type}", info,
                          "node-1", multiline)

    def write(self, name: str, data: bytes, pod: str = "pod-a") -> None:
        p = self.path(name, pod)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "ab") as f:
            f.write(data)

    def write_lines(self, name: str, n: int, pod: str = "pod-a", tag: str = "") -> list[bytes]:
        """Append ``n`` numbered lines ``<pod> <name><tag> <i>`` (numbering continues per file name)."""
        key = f"{pod}/{name}{tag}"
        start = self.counters.get(key, 0)
        lines = [f"{pod} {name}{tag} {i}".encode() for i in range(start, start + n)]
        self.counters[key] = start + n
        self.write(name, b"".join(x + b"\n" for x in lines), pod)
        return lines

    def add(self, name: str, pod: str = "pod-a", log_type: str = "app", multiline: MultilineSpec | None = None) -> None:
        """Discovery reports the file (``multiline``: its rule joins lines into events)."""
        assert self.agent.streams is not None
        self.agent.streams.add(self.target(name, pod, log_type, multiline))

    def remove(self, name: str, pod: str = "pod-a") -> None:
        assert self.agent.streams is not None
        self.agent.streams.remove(self.target(name, pod))

    def rotate(self, name: str, to: str | None = None, pod: str = "pod-a") -> None:
        """Rename rotation: ``name`` -> ``name.1``; the writer starts a new ``name``."""
        os.rename(self.path(name, pod), self.path(to or f"{name}.1", pod))
        self.remove(name, pod)
        self.add(to or f"{name}.1", pod)

    def copytruncate(self, name: str, to: str | None = None, pod: str = "pod-a") -> None:
        """logrotate's copytruncate: copy ``name`` to ``name.1``, then truncate ``name`` to 0."""
        src, dst = self.path(name, pod), self.path(to or f"{name}.1", pod)
        dst.write_bytes(src.read_bytes())
        self.add(to or f"{name}.1", pod)
        os.truncate(src, 0)

    def delete(self, name: str, pod: str = "pod-a") -> None:
        os.unlink(self.path(name, pod))
        self.remove(name, pod)

    # --- the shipper ----------------------------------------------------------------------------

    async def ship(self, rounds: int = 3, advance: float = 0.0) -> None:
        """Poll, read, seal and wait for the sink, ``rounds`` times; the clock moves by ``advance``."""
        agent = self.agent
        assert agent.streams is not None
        for _ in range(rounds):
            self.now += advance
            agent.streams.poll()
            while await agent.read_round(self.now):
                pass
            agent.pipeline.seal()
            await self.settle()
        agent.streams.poll()

    async def settle(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0)
        tasks = list(self.agent.pipeline._tasks)
        if tasks and not self.sink._hold:
            await asyncio.wait(tasks, timeout=5)

    async def restart(self, crash: bool = False) -> None:
        """Stop (crash: without the final registry write; in-flight acks are lost) and start again."""
        agent = self.agent
        await agent.pipeline.close()
        if not crash:
            agent.registry.write()
        assert agent.streams is not None
        agent.streams.close_all()
        self.agent = self._new_agent()

    def write_registry(self) -> None:
        self.agent.registry.write()

    def offset(self, name: str, pod: str = "pod-a") -> int | None:
        assert self.agent.streams is not None
        t = self.agent.streams.stream_for(str(self.path(name, pod)))
        if t is None:
            return None
        e = self.agent.registry.get(t.id)
        return None if e is None else e.offset

    def expect_offset(self, name: str, offset: int, pod: str = "pod-a") -> None:
        assert self.offset(name, pod) == offset, f"{name}: committed {self.offset(name, pod)}, expected {offset}"

    def file_id(self, name: str, pod: str = "pod-a") -> str:
        assert self.agent.streams is not None
        t = self.agent.streams.stream_for(str(self.path(name, pod)))
        assert t is not None, f"no stream for {name}"
        return t.id
