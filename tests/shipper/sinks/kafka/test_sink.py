"""The Kafka sink against the real broker: records, headers, partitions by Component, rejection."""

from __future__ import annotations

import asyncio
import os

import pytest
from aiokafka import AIOKafkaConsumer

from consumer.ownership import partition_of
from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRecord, LineRun, SourceMeta, decode_headers
from shipper.sinks.kafka.config import KafkaSinkConfig
from shipper.sinks.kafka.sink import KafkaSink


def meta(component: str = "web", log_type: str = "access") -> SourceMeta:
    return SourceMeta("node-1", "default", f"{component}-7d4b9c-x2x9z", "uid-1", "", component, log_type,
                      "/pods/uid-1/volumes/kubernetes.io~empty-dir/logs/access.log", "fingerprint::00ff")


def test_bad_bootstrap_names_the_fix() -> None:
    with pytest.raises(ValueError, match="host:port"):
        KafkaSinkConfig(bootstrap="localhost")


async def consume(bootstrap: str, topic: str, n: int, timeout: float = 20.0) -> list[object]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    out: list[object] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < n:
                got = await consumer.getmany(timeout_ms=500)
                for msgs in got.values():
                    out.extend(msgs)
    finally:
        await consumer.stop()
    return out


@pytest.mark.integration
async def test_batch_is_delivered_with_value_key_and_headers(kafka_bootstrap: str, unique_name: str) -> None:
    sink = KafkaSink(KafkaSinkConfig(bootstrap=kafka_bootstrap, compression="lz4"))
    await sink.start()
    try:
        recs = [LineRecord(meta(c), i, f"line {i} \xff".encode("latin-1"), 1700000000000 + i, topic=unique_name)
                for i, c in enumerate(["web", "api", "web", "db"] * 5)]
        assert await sink.send(recs) is BatchStatus.DELIVERED
        assert sink.connected
    finally:
        await sink.close()
    msgs = await consume(kafka_bootstrap, unique_name, len(recs))
    assert sorted(m.value for m in msgs) == sorted(r.value for r in recs)  # type: ignore[attr-defined]
    by_key: dict[bytes, set[int]] = {}
    for m in msgs:
        by_key.setdefault(m.key, set()).add(m.partition)  # type: ignore[attr-defined]
        h = decode_headers(m.headers)  # type: ignore[attr-defined]
        assert h["lp.component"] == m.key.decode() and h["lp.type"] == "access"  # type: ignore[attr-defined]
    assert all(len(p) == 1 for p in by_key.values())  # one Component, one partition


@pytest.mark.integration
async def test_too_large_record_is_rejected_not_errored(kafka_bootstrap: str, unique_name: str) -> None:
    sink = KafkaSink(KafkaSinkConfig(bootstrap=kafka_bootstrap, max_request_bytes=4 * 1024 * 1024))
    await sink.start()
    try:
        # incompressible and past the broker's message.max.bytes (1 MiB by default)
        big = LineRecord(meta(), 0, os.urandom(1_500_000), 0, topic=unique_name)
        assert await sink.send([big]) is BatchStatus.REJECTED
    finally:
        await sink.close()


@pytest.mark.integration
async def test_runs_are_delivered_in_order_with_the_headers_of_their_lines(kafka_bootstrap: str,
                                                                          unique_name: str) -> None:
    # a small batch limit: each run spans several record batches
    sink = KafkaSink(KafkaSinkConfig(bootstrap=kafka_bootstrap, batch_max_bytes=16 * 1024,
                                     dead_letter_topic=f"{unique_name}-dl"))
    await sink.start()
    try:
        runs = []
        for c in ("web", "api"):
            values = [f"{c} line {i} \xff".encode("latin-1") for i in range(400)]
            runs.append(LineRun(meta(c), 1000, values, 1700000000000, sum(map(len, values)), topic=unique_name))
        bad = LineRun(meta(), 5, [b"too long"], 1700000000001, 8, ("deadletter", "reason:line_too_long", "truncated"))
        assert await sink.send_runs([*runs, bad]) is BatchStatus.DELIVERED
    finally:
        await sink.close()
    msgs = await consume(kafka_bootstrap, unique_name, 800)
    expected = {r.value: r for run in runs for r in run.records()}
    for m in msgs:
        r = expected.pop(m.value)  # type: ignore[attr-defined]
        assert m.key == r.key and list(m.headers) == r.headers()  # type: ignore[attr-defined]
    assert not expected
    for c in ("web", "api"):  # one Component's lines: one partition, in file order
        mine = [m for m in msgs if m.key == c.encode()]  # type: ignore[attr-defined]
        assert [int(decode_headers(m.headers)["lp.offset"]) for m in mine] == sorted(  # type: ignore[attr-defined]
            int(decode_headers(m.headers)["lp.offset"]) for m in mine)  # type: ignore[attr-defined]
    (dl,) = await consume(kafka_bootstrap, f"{unique_name}-dl", 1)
    assert dl.value == b"too long"  # type: ignore[attr-defined]
    assert decode_headers(dl.headers)["lp.flags"] == "deadletter,reason:line_too_long,truncated"  # type: ignore[attr-defined]


def test_a_compression_level_the_client_cannot_honour_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"remove kafka\.compression_level"):
        KafkaSinkConfig(compression_level=1)


@pytest.mark.integration
async def test_a_component_lands_in_the_partition_the_consumer_expects(kafka_bootstrap: str,
                                                                       unique_name: str) -> None:
    components = [f"svc-{i}" for i in range(12)]
    sink = KafkaSink(KafkaSinkConfig(bootstrap=kafka_bootstrap, partitions=4))
    await sink.start()
    try:
        recs = [LineRecord(meta(c), 0, c.encode(), 1700000000000, topic=unique_name) for c in components]
        assert await sink.send(recs) is BatchStatus.DELIVERED
    finally:
        await sink.close()
    msgs = await consume(kafka_bootstrap, unique_name, len(components))
    got = {m.value.decode(): m.partition for m in msgs}  # type: ignore[attr-defined]
    assert got == {c: partition_of(c, [0, 1, 2, 3]) for c in components}
    assert len(set(got.values())) > 1


@pytest.mark.integration
async def test_no_broker_means_start_fails_and_sends_error(unique_name: str) -> None:
    sink = KafkaSink(KafkaSinkConfig(bootstrap="127.0.0.1:1", request_timeout=1))
    with pytest.raises(Exception):  # noqa: B017 - the client's own exception type
        await sink.start()
    assert not sink.connected
    assert await sink.send_runs([LineRun(meta(), 0, [b"x"], 0, 1, topic=unique_name)]) is BatchStatus.ERRORED
