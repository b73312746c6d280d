"""Kafka smoke test: what we produce with aiokafka comes back, in order, to a consumer."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.integration


async def test_produced_records_are_consumed_back(kafka_bootstrap: str, unique_name: str) -> None:
    sent = [f"line {i}".encode() for i in range(20)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in sent:
            await producer.send_and_wait(unique_name, value, key=b"same-partition")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        unique_name,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[bytes] = []
        partitions = set()
        while len(received) < len(sent):
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, f"no records within 10 s; got {len(received)} of {len(sent)}"
            for tp, records in batches.items():
                partitions.add(tp)
                received += [r.value for r in records if r.value is not None]
        await consumer.commit()
        assert len(partitions) == 1  # one key, so one partition
        committed = await consumer.committed(partitions.pop())
    finally:
        await consumer.stop()
    assert received == sent  # one partition keeps the order
    assert committed == len(sent)
