"""The SLS source against the local SLS server: records as the Kafka path has them, checkpoints only
over committed positions, shards shared by members, splits followed in order."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aliyun.log.proto import LogGroupRaw

from consumer.sources.sls.config import SlsSourceConfig
from consumer.sources.sls.records import log_records
from consumer.sources.sls.source import SHIFT, SlsSource
from logpipe.core.envelope import H_FILE_ID, H_FORMAT, H_OFFSET, H_POD, H_TYPE, decode_headers
from logpipe.dev.services.sls import SlsServer
from shipper.sinks.sls.config import SlsSinkConfig
from shipper.sinks.sls.sink import SlsSink
from tests.shipper.sinks.sls.stories import lines, meta

KEY_ID, SECRET = "src-ak", "src-secret-0123456789"
PROJECT = "shop-prod"


class Listener:
    """Records the assignment as the loop would see it."""

    def __init__(self) -> None:
        self.held: set[tuple[str, int]] = set()
        self.revoked: list[tuple[str, int]] = []

    async def partitions_assigned(self, partitions: Sequence[tuple[str, int]]) -> None:
        self.held.update(partitions)

    async def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        self.held.difference_update(partitions)
        self.revoked.extend(partitions)


@pytest.fixture
async def sls() -> AsyncIterator[SlsServer]:
    # port 80 of an address of its own: the SDK addresses a bare IP endpoint through its public API
    host = f"127.78.{random.randint(1, 254)}.{random.randint(1, 254)}"
    server = SlsServer({KEY_ID: SECRET}, host=host, port=80, shard_count=2)
    await server.start()
    yield server
    await server.stop()


def source_config(server: SlsServer, name: str = "c1", **over: Any) -> SlsSourceConfig:
    values: dict[str, Any] = {
        "endpoint": server.host,
        "project": PROJECT,
        "logstores": ["logpipe-access"],
        "consumer_group": "indexers",
        "consumer_name": name,
        "access_key_id": KEY_ID,
        "access_key_secret": SECRET,
        "heartbeat_interval": 0.3,
        "timeout": 5,
        "request_timeout": 5,
        **over,
    }
    return SlsSourceConfig.model_validate(values)


async def ship(server: SlsServer, batch: list[Any]) -> None:
    sink = SlsSink(
        SlsSinkConfig.model_validate(
            {"endpoint": server.endpoint, "project": PROJECT, "access_key_id": KEY_ID, "access_key_secret": SECRET}
        )
    )
    await sink.start()
    try:
        assert (await sink.send(batch)).name == "DELIVERED"
    finally:
        await sink.close()


async def drain(source: SlsSource, want: int, timeout: float = 20) -> dict[tuple[str, int], list[Any]]:
    got: dict[tuple[str, int], list[Any]] = {}
    deadline = time.monotonic() + timeout
    while sum(len(v) for v in got.values()) < want:
        assert time.monotonic() < deadline, f"only {sum(len(v) for v in got.values())} of {want} records"
        for tp, records in (await source.fetch(0.2)).items():
            got.setdefault(tp, []).extend(records)
    return got


pytestmark = pytest.mark.integration


async def test_records_carry_the_kafka_paths_value_and_headers(sls: SlsServer) -> None:
    cart = meta("cart-1")
    ingress = dataclasses.replace(meta("ingress-1"), access_format="upstreaminfo")  # a rule's chosen format
    batch = lines(cart, 5)
    await ship(sls, batch + lines(ingress, 2))
    source = SlsSource(source_config(sls))
    await source.start(Listener())
    try:
        got = await drain(source, 7)
    finally:
        await source.close()
    records = sorted((r for rs in got.values() for r in rs), key=lambda r: (r.key != b"cart", r.offset))
    assert decode_headers(records[5].headers)[H_FORMAT] == "upstreaminfo"
    assert decode_headers(records[6].headers) == decode_headers(lines(ingress, 2)[1].headers())
    for shipped, rec in zip(batch, records[:5], strict=True):
        assert rec.value == shipped.value  # the line's bytes, invalid UTF-8 included
        assert decode_headers(rec.headers) == decode_headers(shipped.headers())  # same _id, same metadata
        assert rec.key == shipped.key


async def test_the_checkpoint_moves_only_over_committed_positions_and_a_new_member_resumes_there(
    sls: SlsServer,
) -> None:
    sls.store.create(PROJECT, "logpipe-access", shard_count=1)
    first, second = lines(meta("cart-1"), 4), lines(meta("cart-1"), 3, start_offset=10_000)
    await ship(sls, first)
    source = SlsSource(source_config(sls))
    listener = Listener()
    await source.start(listener)
    try:
        ((tp, records),) = (await drain(source, 4)).items()
        assert await source.commit({tp: records[2].offset})  # inside the batch: its start is saved
        group = sls.groups.get(PROJECT, "logpipe-access", "indexers")
        assert group is not None
        assert group.checkpoints[tp[1]].cursor == source.cursor_for(tp, records[0].offset)
        await ship(sls, second)
    finally:
        await source.close()
    again = SlsSource(source_config(sls, name="c1"))
    await again.start(Listener())
    try:
        got = await drain(again, 4 + 3)  # the unfinished batch is read again, then the new lines
        assert await again.fetch(0.5) == {}
    finally:
        await again.close()
    offsets = [int(decode_headers(r.headers)[H_OFFSET]) for recs in got.values() for r in recs]
    assert offsets == [r.offset for r in first + second]


async def test_a_whole_batch_committed_saves_the_cursor_after_it(sls: SlsServer) -> None:
    sls.store.create(PROJECT, "logpipe-access", shard_count=1)
    await ship(sls, lines(meta("cart-1"), 4))
    source = SlsSource(source_config(sls))
    await source.start(Listener())
    try:
        ((tp, records),) = (await drain(source, 4)).items()
        assert await source.commit({tp: records[-1].offset + 1})
        await ship(sls, lines(meta("cart-1"), 2, start_offset=5000))
        ((_, more),) = (await drain(source, 2)).items()
        assert more[0].offset == 1 << SHIFT  # the next batch
        assert await source.commit({tp: more[-1].offset + 1})
    finally:
        await source.close()
    again = SlsSource(source_config(sls))
    await again.start(Listener())
    try:
        assert await again.fetch(1.0) == {}  # everything was committed: nothing is read again
    finally:
        await again.close()


async def test_two_members_share_the_shards_and_a_dead_ones_shards_move_after_the_timeout(
    sls: SlsServer,
) -> None:
    a_listener, b_listener = Listener(), Listener()
    a = SlsSource(source_config(sls, name="a"))
    b = SlsSource(source_config(sls, name="b"))
    await a.start(a_listener)
    await b.start(b_listener)
    deadline = time.monotonic() + 10
    while not (len(a_listener.held) == 1 and len(b_listener.held) == 1):
        assert time.monotonic() < deadline, (a_listener.held, b_listener.held)
        await asyncio.gather(a.fetch(0.1), b.fetch(0.1))
    assert a_listener.held.isdisjoint(b_listener.held)
    # b dies without a word (no close: its heartbeats simply stop)
    assert b._heartbeat_task is not None
    b._heartbeat_task.cancel()
    started = time.monotonic()
    while len(a_listener.held) < 2:
        assert time.monotonic() - started < 12, a_listener.held
        await a.fetch(0.2)
    assert time.monotonic() - started >= 4  # not before the group's 5 s timeout
    await a.close()


async def test_a_split_shards_children_are_read_after_the_parent(sls: SlsServer) -> None:
    sls.store.create(PROJECT, "logpipe-access", shard_count=1)
    await ship(sls, lines(meta("cart-1"), 3))
    children = sls.split_shard(PROJECT, "logpipe-access", 0)
    later = lines(meta("cart-1"), 3, start_offset=100)
    await ship(sls, later)  # into the children
    listener = Listener()
    source = SlsSource(source_config(sls))
    await source.start(listener)
    try:
        assert listener.held == {("logpipe-access", 0)}  # the parent first
        ((tp, parent),) = (await drain(source, 3)).items()
        await source.fetch(0.3)  # the parent's end: nothing more
        assert await source.commit({tp: parent[-1].offset + 1})
        deadline = time.monotonic() + 5
        got: list[Any] = []
        while len(got) < 3:
            assert time.monotonic() < deadline, listener.held
            for recs in (await source.fetch(0.2)).values():
                got.extend(recs)
        assert {("logpipe-access", c) for c in children} & listener.held
        assert ("logpipe-access", 0) in listener.revoked  # finished: given up
    finally:
        await source.close()
    assert sorted(int(decode_headers(r.headers)[H_OFFSET]) for r in got) == [r.offset for r in later]


def test_logs_of_other_agents_keep_their_fields_and_get_a_stable_identity() -> None:
    group = LogGroupRaw()
    group.Topic, group.Source = "", "10.0.0.7"
    for key, value in [("__pack_id__", "5F1E2D-3"), ("_namespace_", "shop"), ("_pod_name_", "pay-7d9f8b6c4-x2k9p"),
                       ("_container_name_", "app"), ("__path__", "/var/log/pay/app.log")]:
        tag = group.LogTags.add()
        tag.Key, tag.Value = key, value
    log = group.Logs.add()
    log.Time = 1795780800
    for key, value in [("level", "ERROR"), ("msg", "declined"), ("status", "502")]:
        c = log.Contents.add()
        c.Key, c.Value = key, value.encode()
    (rec,) = log_records(group, first_offset=7, location="ls/0")
    headers = decode_headers(rec.headers)
    assert headers[H_POD] == "pay-7d9f8b6c4-x2k9p" and headers["lp.component"] == "pay"
    assert headers[H_TYPE] == "app" and headers["lp.namespace"] == "shop" and headers["lp.node"] == "10.0.0.7"
    assert (headers[H_FILE_ID], headers[H_OFFSET]) == ("sls-pack::5F1E2D-3", "0")
    assert rec.value == b'{"level":"ERROR","msg":"declined","status":"502"}' and rec.offset == 7
    del group.LogTags[0]  # no pack id: a hash of the stored group, the same on every read
    (a,) = log_records(group, first_offset=0, location="ls/0")
    (b,) = log_records(group, first_offset=99, location="ls/0")
    assert decode_headers(a.headers)[H_FILE_ID] == decode_headers(b.headers)[H_FILE_ID]
    assert decode_headers(a.headers)[H_FILE_ID].startswith("sls::ls/0/")


async def test_pull_slots_go_round_every_shard(sls: SlsServer) -> None:
    """More shards than pulls in flight: no shard waits forever behind busier ones."""
    sls.store.create(PROJECT, "logpipe-access", shard_count=6)
    batch = [r for pod in range(6) for r in lines(meta(f"cart-{pod}"), 2)]  # one LogGroup per file
    await ship(sls, batch)
    assert all(s["shardID"] is not None for s in sls.shards(PROJECT, "logpipe-access"))
    source = SlsSource(source_config(sls, max_inflight_pulls=2))
    await source.start(Listener())
    try:
        got = await drain(source, len(batch), timeout=10)
    finally:
        await source.close()
    assert len(got) == 6  # every shard was read
