"""Integration helpers: a kubelet-shaped tree, a real ``logpipe ship`` process, and a topic counter.

Every line written is unique (``<run>|<pod>|<file>|<n>``), so consuming the topics tells exactly
which lines were lost and which were duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from logpipe.dev.scrape import sample_total

LOG_TYPES = ("access", "app", "stdout", "trace")


@dataclass
class Pod:
    name: str
    uid: str
    namespace: str = "shop"

    @property
    def component(self) -> str:
        return self.name.rsplit("-", 2)[0]


@dataclass
class Tree:
    """``<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/logs/...`` and ``<root>/logs/<ns>_<pod>_<uid>/``."""

    root: Path
    run: str
    pods: dict[str, Pod] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    written: list[bytes] = field(default_factory=list)

    @property
    def pods_root(self) -> Path:
        return self.root / "pods"

    @property
    def logs_root(self) -> Path:
        return self.root / "logs"

    def add_pod(self, name: str) -> Pod:
        uid = f"{abs(hash((self.run, name))) % 10**8:08d}-aaaa-4bbb-8ccc-{len(self.pods):012d}"
        pod = Pod(name, uid)
        self.pods[name] = pod
        self.volume(pod).mkdir(parents=True, exist_ok=True)
        (self.logs_root / f"{pod.namespace}_{pod.name}_{pod.uid}" / "app").mkdir(parents=True, exist_ok=True)
        return pod

    def volume(self, pod: Pod) -> Path:
        return self.pods_root / pod.uid / "volumes" / "kubernetes.io~empty-dir" / "logs"

    def path(self, pod: str, name: str) -> Path:
        return self.volume(self.pods[pod]) / name

    def stdout_path(self, pod: str) -> Path:
        p = self.pods[pod]
        return self.logs_root / f"{p.namespace}_{p.name}_{p.uid}" / "app" / "0.log"

    def line(self, pod: str, name: str) -> bytes:
        key = f"{pod}|{name}"
        n = self.counters[key]
        self.counters[key] += 1
        return f"{self.run}|{key}|{n}".encode()

    def write_lines(self, pod: str, name: str, n: int, path: Path | None = None) -> list[bytes]:
        lines = [self.line(pod, name) for _ in range(n)]
        target = path or self.path(pod, name)
        with open(target, "ab") as f:
            f.write(b"".join(x + b"\n" for x in lines))
        self.written.extend(lines)
        return lines


class Shipper:
    """A ``logpipe ship`` child process with its own config, registry and HTTP port."""

    def __init__(self, tree: Tree, bootstrap: str, prefix: str, **overrides: Any) -> None:
        self.tree = tree
        self.prefix = prefix
        self.registry = tree.root / "registry.json"
        cfg: dict[str, Any] = {
            "node_name": "node-test",
            "pods_root": str(tree.pods_root),
            "logs_root": str(tree.logs_root),
            "registry": {"path": str(self.registry), "flush_interval": "200ms"},
            "kafka": {"bootstrap": bootstrap, "request_timeout": "5s"},
            "rules": {"topic_prefix": prefix},
            "discovery": {"rescan_interval": "1s"},
            "pod_metadata": {"kubernetes_api": "off"},
            "tail": {"poll_interval": "100ms", "partial_line_timeout": "1s"},
            "pipeline": {"retry_initial": "100ms", "retry_max": "1s"},
            "http": {"host": "127.0.0.1", "port": 0},
            "shutdown_grace": "10s",
        }
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k] = cfg[k] | v
            else:
                cfg[k] = v
        self.config = tree.root / "shipper.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.stderr = tree.root / "shipper.stderr"

    def start(self, timeout: float = 20.0) -> None:
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logpipe.cli.main", "ship", "--config", str(self.config)],
                stdout=subprocess.PIPE, stderr=err, cwd=self.tree.root,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"shipper exited early: {self.stderr.read_text()[-3000:]}")
            if line.startswith(b"http_port="):
                self.port = int(line.split(b"=", 1)[1])
                return
        raise AssertionError("shipper did not print its port")

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.http("/readyz")[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError("shipper not ready")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def sigterm(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def metric(self, name: str) -> float:
        return sample_total(self.http("/metrics")[1], name)

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


@dataclass
class Received:
    counts: Counter[bytes]
    records: list[Any]

    def lost(self, written: list[bytes]) -> list[bytes]:
        return [w for w in written if self.counts[w] == 0]

    def duplicated(self) -> int:
        return sum(c - 1 for c in self.counts.values() if c > 1)


async def collect(bootstrap: str, prefix: str, expected: set[bytes], timeout: float = 60.0,
                  idle: float = 1.0, types: tuple[str, ...] = LOG_TYPES) -> Received:
    """Read the test's topics from the start until every expected line arrived (then ``idle`` more seconds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", metadata_max_age_ms=1000)
    await consumer.start()
    counts: Counter[bytes] = Counter()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        assigned: set[str] = set()
        done_at: float | None = None
        while time.monotonic() < deadline:
            if len(assigned) < len(types):
                cluster = await consumer._client.fetch_all_metadata()
                want = {f"{prefix}{t}" for t in types} & set(cluster.topics())
                if want - assigned:
                    tps = [TopicPartition(t, p) for t in want for p in (cluster.partitions_for_topic(t) or ())]
                    if tps:
                        assigned = want
                        consumer.assign(tps)
                        # a fresh assignment starts from the beginning (auto_offset_reset) for every partition
                        counts.clear()
                        records.clear()
                        await consumer.seek_to_beginning(*tps)
            if not assigned:  # getmany without an assignment waits for one, ignoring its timeout
                await asyncio.sleep(0.3)
                continue
            got = await consumer.getmany(timeout_ms=300)
            for msgs in got.values():
                for m in msgs:
                    counts[m.value] += 1
                    records.append(m)
            if expected <= set(counts):
                done_at = done_at or time.monotonic()
                if time.monotonic() - done_at >= idle:
                    break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return Received(counts, records)


def rss_of(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def env_without_proxy() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


class Watcher:
    """Consumes the test's topics in the background, counting every value seen."""

    def __init__(self, bootstrap: str, prefix: str, types: tuple[str, ...] = LOG_TYPES) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.types = types
        self.counts: Counter[bytes] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        assigned: set[str] = set()
        try:
            while True:
                if len(assigned) < len(self.types):
                    cluster = await consumer._client.fetch_all_metadata()
                    want = {f"{self.prefix}{t}" for t in self.types} & set(cluster.topics())
                    if want - assigned:
                        tps = [TopicPartition(t, p) for t in want for p in (cluster.partitions_for_topic(t) or ())]
                        if tps:
                            assigned = want
                            consumer.assign(tps)
                            self.counts.clear()
                            await consumer.seek_to_beginning(*tps)
                if not assigned:
                    await asyncio.sleep(0.3)
                    continue
                got = await consumer.getmany(timeout_ms=300)
                for msgs in got.values():
                    for m in msgs:
                        self.counts[m.value] += 1
        finally:
            await consumer.stop()

    async def wait_for(self, lines: list[bytes] | set[bytes], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.counts[x] for x in lines):
                return True
            await asyncio.sleep(0.1)
        return False
