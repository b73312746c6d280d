"""The Kafka source says when the brokers stop answering (``broker_error``, behind ``/readyz``): real
aiokafka against the faulted broker through the consumer's fault proxy."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pytest

from consumer.config import KafkaConfig
from consumer.sources.kafka.source import KafkaSource
from consumer.work import TopicPartitionKey
from logpipe.dev.faults.kafka import FaultedKafka

pytestmark = pytest.mark.integration


class _Listener:
    def __init__(self) -> None:
        self.assigned: list[TopicPartitionKey] = []

    async def partitions_assigned(self, partitions: Sequence[TopicPartitionKey]) -> None:
        self.assigned.extend(partitions)

    async def partitions_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        pass


async def _fetch_until(source: KafkaSource, check: Callable[[], bool], timeout: float) -> float:
    """Keep fetching (as the consume loop does) until ``check()``; the seconds it took."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"not within {timeout}s (broker_error={source.broker_error!r})"
        await source.fetch(0.2)
    return time.monotonic() - began


@pytest.mark.parametrize("mode", ["blackhole", "mute"])
async def test_broker_error_while_the_broker_does_not_answer(
    faulted_kafka: FaultedKafka, unique_name: str, mode: str
) -> None:
    _, proxy = faulted_kafka.proxies()
    await proxy.start()
    cfg = KafkaConfig(bootstrap=faulted_kafka.consume, group_id=f"{unique_name}-g", topics=[f"{unique_name}-t"],
                      instance_id="", session_timeout=10.0, request_timeout=6.0, probe_timeout=1.0)
    source = KafkaSource(cfg)
    listener = _Listener()
    try:
        await source.start(listener)
        await _fetch_until(source, lambda: bool(listener.assigned), 90)  # a fresh broker creates its offsets topic
        began = time.monotonic()
        while time.monotonic() - began < 3:  # quiet topics are no outage: the probes get answers
            await source.fetch(0.2)
        assert source.broker_error is None
        proxy.set_mode(mode)
        took = await _fetch_until(source, lambda: source.broker_error is not None, 10)
        assert "Kafka" in (source.broker_error or "")
        proxy.set_mode("pass")
        back = await _fetch_until(source, lambda: source.broker_error is None, 20)
        print(f"{mode}: broker_error after {took:.1f}s, cleared {back:.1f}s after the fault ended")
        assert took < 4  # probe_timeout without records, then a probe of probe_timeout
    finally:
        proxy.set_mode("pass")
        await source.close()
        await proxy.stop()
