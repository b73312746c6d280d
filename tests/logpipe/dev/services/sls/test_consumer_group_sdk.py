"""The local SLS against the SDK's own ``ConsumerWorker``: the consumer-group protocol as the cloud speaks it.

The server listens on port 80 of an address of its own in 127.0.0.0/8, so the unmodified SDK addresses
it as a bare IP endpoint (it cannot address ``ip:port``) and puts the project in the Host header.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aliyun.log import LogClient, LogItem, PutLogsRequest
from aliyun.log.consumer import ConsumerProcessorBase, ConsumerWorker, CursorPosition, LogHubConfig

from logpipe.dev.services.sls import SlsServer

KEY_ID, SECRET = "ak-cg", "secret-cg"
PROJECT, LOGSTORE = "proj", "app"


@pytest.fixture
async def server() -> AsyncIterator[SlsServer]:
    s = SlsServer({KEY_ID: SECRET}, host=f"127.77.{random.randint(1, 254)}.{random.randint(1, 254)}", port=80,
                  shard_count=2)
    await s.start()
    yield s
    await s.stop()


def put(client: LogClient, first: int, count: int) -> None:
    for n in range(first, first + count):
        item = LogItem(contents=[("n", str(n))])
        client.put_logs(PutLogsRequest(PROJECT, LOGSTORE, "", "", [item]))


class Seen:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: list[int] = []
        self.by: dict[str, set[int]] = {}


def processor_class(seen: Seen, name: str) -> type[ConsumerProcessorBase]:
    class Collect(ConsumerProcessorBase):  # type: ignore[misc]
        def process(self, log_groups: Any, check_point_tracker: Any) -> None:
            with seen.lock:
                for group in log_groups.LogGroups:
                    for log in group.Logs:
                        seen.values.append(int(next(c.Value for c in log.Contents if c.Key == "n")))
                seen.by.setdefault(name, set()).add(self.shard_id)
            check_point_tracker.save_check_point(True)

    return Collect


async def worker(server: SlsServer, seen: Seen, name: str) -> ConsumerWorker:
    """A started worker; built in a thread, since the SDK creates the group there with blocking I/O
    (and the server answers on this event loop)."""
    config = LogHubConfig(
        server.host, KEY_ID, SECRET, PROJECT, LOGSTORE, "indexers", name,
        cursor_position=CursorPosition.BEGIN_CURSOR, heartbeat_interval=1, data_fetch_interval=0.1, in_order=True,
    )
    w = await asyncio.to_thread(ConsumerWorker, processor_class(seen, name), config)
    w.start()
    return w


async def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_the_sdk_worker_reads_every_log_across_a_shard_split(server: SlsServer) -> None:
    client = LogClient(server.host, KEY_ID, SECRET)
    await asyncio.to_thread(put, client, 0, 40)
    seen = Seen()
    w = await worker(server, seen, "c1")
    try:
        await wait_for(lambda: len(seen.values) >= 40)
        children = server.split_shard(PROJECT, LOGSTORE, 0)
        await asyncio.to_thread(put, client, 40, 40)  # lands in shard 1 and the two children
        await wait_for(lambda: len(seen.values) >= 80)
        await asyncio.sleep(2.5)  # a few more heartbeats: nothing is read twice
    finally:
        await asyncio.to_thread(w.shutdown)
    assert sorted(seen.values) == list(range(80))
    assert set(children) <= seen.by["c1"]
    shards = {s["shardID"]: s["status"] for s in server.shards(PROJECT, LOGSTORE)}
    assert shards == {0: "readonly", 1: "readwrite", children[0]: "readwrite", children[1]: "readwrite"}
    group = server.groups.get(PROJECT, LOGSTORE, "indexers")
    assert group is not None and group.in_order
    assert set(group.checkpoints) == {0, 1, *children}  # the worker saved a checkpoint on each shard


@pytest.mark.integration
async def test_two_sdk_workers_share_the_shards_and_a_restarted_one_resumes_at_its_checkpoint(
    server: SlsServer,
) -> None:
    client = LogClient(server.host, KEY_ID, SECRET)
    await asyncio.to_thread(put, client, 0, 4)
    seen = Seen()
    a = await worker(server, seen, "a")
    await wait_for(lambda: len(seen.values) >= 4)  # a alone holds both shards
    b = await worker(server, seen, "b")

    def owners() -> set[str]:
        group = server.groups.get(PROJECT, LOGSTORE, "indexers")
        return set(group.owner.values()) if group else set()

    try:
        await wait_for(lambda: owners() == {"a", "b"})  # a gave one shard up, b got it
        with seen.lock:
            seen.by.clear()  # from now on each reads only its own shard
        await asyncio.to_thread(put, client, 4, 16)
        await wait_for(lambda: len(seen.values) >= 20 and len(seen.by) == 2)
    finally:
        await asyncio.gather(asyncio.to_thread(a.shutdown), asyncio.to_thread(b.shutdown))
    assert sorted(seen.values) == list(range(20))
    assert seen.by["a"].isdisjoint(seen.by["b"]) and seen.by["a"] | seen.by["b"] == {0, 1}
    await asyncio.to_thread(put, client, 20, 10)
    again = await worker(server, seen, "a")
    try:
        await wait_for(lambda: len(seen.values) >= 30)
        await asyncio.sleep(2)
    finally:
        await asyncio.to_thread(again.shutdown)
    assert sorted(seen.values) == list(range(30))  # from the checkpoints on: nothing read twice


@pytest.mark.integration
async def test_injected_quota_errors_and_slow_answers_are_survived(server: SlsServer) -> None:
    client = LogClient(server.host, KEY_ID, SECRET)
    await asyncio.to_thread(put, client, 0, 10)
    server.fail_next(3, 403, "ReadQuotaExceed", "Read quota is exceeded", only="pull")
    server.slow_next(2, 1.5, only="pull")
    seen = Seen()
    w = await worker(server, seen, "c1")
    try:
        await wait_for(lambda: len(seen.values) >= 10, timeout=60)
    finally:
        await asyncio.to_thread(w.shutdown)
    assert sorted(seen.values) == list(range(10))
