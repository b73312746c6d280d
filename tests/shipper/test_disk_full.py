"""A real ``logpipe ship`` with its registry on a full 64 KiB tmpfs, shipping to the real Kafka.

While every registry write fails with ENOSPC: every line still reaches Kafka, the registry on disk
stays the previous complete version, ``/readyz`` answers 503 naming the error, the gauge
``logpipe_shipper_registry_write_failing`` is 1 and ``/healthz`` stays 200 (a full disk is no reason
for the kubelet to restart the agent). As soon as there is space the registry is written with the
final offsets. A ``kill -9`` while the disk is full loses nothing: the restarted agent resumes from
the previous registry (those lines are sent again, at least once).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
import pytest

from tests.shipper.disk import fill, tmpfs
from tests.shipper.live import Shipper, Tree, Watcher

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

PODS = [f"web-7d4b9c5f6-p{i:04d}" for i in range(10)]
FILES = ("access.log", "app.log", "trace.log")


def offsets(registry: Path) -> dict[str, int]:
    doc = orjson.loads(registry.read_bytes())
    assert doc["version"] == 1
    return {f["path"]: f["offset"] for f in doc["files"]}


def sizes(tree: Tree) -> dict[str, int]:
    return {str(tree.path(p, f)): tree.path(p, f).stat().st_size for p in PODS for f in FILES}


async def until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except (FileNotFoundError, KeyError, ValueError):
            pass
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.1)


async def test_registry_on_a_full_disk(tmp_path: Path, kafka_bootstrap: str, unique_name: str) -> None:
    tree = Tree(tmp_path, unique_name)
    for p in PODS:
        tree.add_pod(p)
    with tmpfs(tmp_path / "state", "64k") as state:
        registry = state / "registry.json"
        shipper = Shipper(tree, kafka_bootstrap, f"{unique_name}-", registry={"path": str(registry)})

        def write_all(n: int) -> list[bytes]:
            return [x for p in PODS for f in FILES for x in tree.write_lines(p, f, n)]

        first = write_all(100)
        shipper.start()
        try:
            async with Watcher(kafka_bootstrap, shipper.prefix) as watch:
                assert await watch.wait_for(first, timeout=60)
                await until(lambda: offsets(registry) == sizes(tree), 20, "registry at the files' ends")
                before = registry.read_bytes()

                filler = fill(state)
                second = write_all(200)  # 6 000 lines while no checkpoint can be saved
                assert await watch.wait_for(second, timeout=60), "lines lost while the disk was full"
                await until(lambda: shipper.http("/readyz")[0] == 503, 10, "readyz failing")
                why = shipper.http("/readyz")[1]
                assert why.startswith("checkpoints not saved for ") and "No space left on device" in why
                assert shipper.metric("logpipe_shipper_registry_write_failing") == 1
                assert shipper.metric('logpipe_shipper_registry_writes_total{result="error"}') >= 1
                assert shipper.http("/healthz") == (200, "ok\n")
                assert registry.read_bytes() == before  # the previous complete version, untouched

                filler.unlink()  # space again: written at the next turn, without a restart
                await until(lambda: offsets(registry) == sizes(tree), 10, "registry written once there is space")
                await until(lambda: shipper.http("/readyz") == (200, "ready\n"), 10, "ready again")
                assert shipper.metric("logpipe_shipper_registry_write_failing") == 0

                # full again, more lines, then kill -9 before any checkpoint could be saved
                saved = offsets(registry)
                filler = fill(state)
                third = write_all(100)
                assert await watch.wait_for(third, timeout=60)
                shipper.kill9()
                assert offsets(registry) == saved
                filler.unlink()
                shipper.start()
                fourth = write_all(50)
                assert await watch.wait_for(first + second + third + fourth, timeout=60)
                await until(lambda: offsets(registry) == sizes(tree), 20, "registry at the ends after restart")
                lost = [x for x in tree.written if watch.counts[x] == 0]
                dups = sum(c - 1 for c in watch.counts.values() if c > 1)
                print(f"{len(tree.written)} lines over {len(PODS) * len(FILES)} files: {len(lost)} lost, "
                      f"{dups} sent again after the kill -9 on a full disk (at most the {len(third)} unsaved)")
                assert lost == [] and dups <= len(third)
        finally:
            shipper.stop()
