"""The only module that talks to the Kafka client: aiokafka, through its public API only.

``create_batch()``/``BatchBuilder.append()``/``send_batch()``: the sink fills one record batch per
topic-partition and hands it over; aiokafka keeps the contract (``acks=all``, idempotent producer
id and sequence, retries) and compresses the batch when it sends it.

Why this client: measured end to end on the local broker with our 11 headers per record, this path
costs ~1.5 µs of CPU a line (all threads) where confluent-kafka's ``produce()`` costs 6-7 µs
(librdkafka handles and serialises each header of each message on its own); docs/BENCHMARKS.md.

:func:`new_producer` is the one place the producer is configured (the security keys come from
``logpipe/core/kafka_security.py``, shared with the consumer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)
from aiokafka.partitioner import murmur2

from logpipe.core.delivery import BatchStatus
from logpipe.core.kafka_security import aiokafka_kwargs, start_guarded
from shipper.sinks.kafka.config import KafkaSinkConfig

log = logging.getLogger("logpipe.shipper.kafka")

# refused for good: the pipeline splits the batch and dead-letters the line that stays refused
_REJECT = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError, InvalidTopicError)


def new_producer(cfg: KafkaSinkConfig) -> AIOKafkaProducer:
    """The producer: the delivery contract (acks=all, idempotent), batching, compression, security."""
    return AIOKafkaProducer(
        bootstrap_servers=cfg.bootstrap,
        client_id=cfg.client_id,
        acks="all",
        enable_idempotence=True,
        compression_type=None if cfg.compression == "none" else cfg.compression,
        max_batch_size=cfg.batch_max_bytes,
        max_request_size=cfg.max_request_bytes,
        linger_ms=int(cfg.linger * 1000),
        request_timeout_ms=int(cfg.request_timeout * 1000),
        **aiokafka_kwargs(cfg),
    )


def status_of(exc: BaseException) -> BatchStatus:
    """A client error as a :class:`BatchStatus`: REJECTED when no retry can help, else ERRORED."""
    return BatchStatus.REJECTED if isinstance(exc, _REJECT) else BatchStatus.ERRORED


def partition_of(key: bytes, partitions: list[int]) -> int:
    """Kafka's default for a keyed record (murmur2, as Java's client): ``consumer/ownership.py`` relies on it."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


class KafkaService:
    """The producer, topic creation and the topics' partitions (cached)."""

    def __init__(self, cfg: KafkaSinkConfig) -> None:
        self.cfg = cfg
        self._producer: AIOKafkaProducer | None = None
        self._connected = False
        self._partitions: dict[str, list[int]] = {}
        self._topic_lock = asyncio.Lock()

    status_of = staticmethod(status_of)

    @property
    def connected(self) -> bool:
        return self._connected

    def mark(self, connected: bool) -> None:
        """What the last delivery said about the broker (drives ``/readyz``)."""
        self._connected = connected

    async def start(self) -> None:
        """Connect; raises ``KafkaSecurityError`` (one line: broker, mechanism, fix) on failure (the agent retries)."""
        producer = new_producer(self.cfg)
        try:
            await start_guarded(producer.start, self.cfg, self.cfg.bootstrap)
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer
        self._connected = True

    def _live(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaError("producer not started")
        return self._producer

    def create_batch(self) -> Any:
        """An empty ``BatchBuilder``: ``append(key=, value=, timestamp=, headers=)`` returns None when full."""
        return self._live().create_batch()

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        """Queue ``batch``; the returned future resolves when all in-sync replicas have it, or fails."""
        return await self._live().send_batch(batch, topic, partition=partition)

    async def partitions(self, topic: str) -> list[int]:
        """The topic's partitions (sorted), creating the topic first when ``create_topics`` is on."""
        parts = self._partitions.get(topic)
        if parts is not None:
            return parts
        async with self._topic_lock:
            parts = self._partitions.get(topic)
            if parts is None:
                if self.cfg.create_topics:
                    await self._create_topic(topic)
                parts = self._partitions[topic] = sorted(await self._live().partitions_for(topic))
            return parts

    async def _create_topic(self, topic: str) -> None:
        cfg = self.cfg
        admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap, client_id=f"{cfg.client_id}-admin",
                                    request_timeout_ms=int(cfg.request_timeout * 1000), **aiokafka_kwargs(cfg))
        await admin.start()
        try:
            resp: Any = await admin.create_topics([NewTopic(topic, cfg.partitions, 1)])
            for _name, code, *_ in getattr(resp, "topic_errors", []) or []:
                if code not in (0, TopicAlreadyExistsError.errno):
                    log.warning("create topic %s: error code %s", topic, code)
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()

    async def close(self) -> None:
        """Flush what the producer holds and disconnect."""
        p, self._producer = self._producer, None
        self._connected = False
        if p is not None:
            with contextlib.suppress(Exception):
                await p.stop()
