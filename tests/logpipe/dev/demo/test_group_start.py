"""A new group committed at the topics' current end reads only what is written afterwards (real Kafka)."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from logpipe.dev.demo.group_start import GroupStart, committed, start_group_at_end
from logpipe.dev.demo.prefill import prefill

pytestmark = pytest.mark.integration


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=v)
    finally:
        await producer.stop()


async def _read_as_group(bootstrap: str, group: str, topic: str, want: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        for _ in range(20):
            batches = await consumer.getmany(timeout_ms=500)
            got += [r.value for records in batches.values() for r in records if r.value is not None]
            if len(got) >= want:
                break
        batches = await consumer.getmany(timeout_ms=1000)  # and nothing more behind them
        return got + [r.value for records in batches.values() for r in records if r.value is not None]
    finally:
        await consumer.stop()


async def test_the_group_skips_the_backlog_and_reads_what_follows(kafka_bootstrap: str, unique_name: str) -> None:
    topic, group = f"{unique_name}-access", f"{unique_name}-group"
    await prefill(kafka_bootstrap, 500, "backlog-node", topic=topic, partitions=3)

    start = await start_group_at_end(kafka_bootstrap, group, [topic, f"{unique_name}-not-there"])

    assert start.skipped == 500
    assert sum(start.offsets.values()) == 500 and {tp.topic for tp in start.offsets} == {topic}
    assert await committed(kafka_bootstrap, group, list(start.offsets)) == start.offsets
    assert "500 records of earlier runs are not read again" in start.describe()

    await _produce(kafka_bootstrap, topic, [b"new-1", b"new-2", b"new-3"])
    assert sorted(await _read_as_group(kafka_bootstrap, group, topic, 3)) == [b"new-1", b"new-2", b"new-3"]


async def test_topics_that_do_not_exist_yet_have_nothing_to_skip(kafka_bootstrap: str, unique_name: str) -> None:
    start = await start_group_at_end(kafka_bootstrap, f"{unique_name}-group", [f"{unique_name}-new"])
    assert start == GroupStart(f"{unique_name}-group", {}, 0)
    assert "the topics are new" in start.describe()
    assert await committed(kafka_bootstrap, f"{unique_name}-group", [TopicPartition(f"{unique_name}-new", 0)]) == {
        TopicPartition(f"{unique_name}-new", 0): -1
    }
