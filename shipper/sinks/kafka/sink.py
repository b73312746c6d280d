"""The Kafka sink: runs of lines -> record batches, one status per batch once the broker has spoken.

One send path, :meth:`KafkaSink.send_runs` (``send`` hands it runs of one line): every line is
made a record by ``wire.py`` and appended to the record batch of its topic-partition (the key is
the Component, partitioned with murmur2 like every Kafka client, so one service's lines stay in
order in one partition); full batches go to the client (``service.py``: aiokafka, ``acks=all``,
idempotent, zstd) and the call returns when every batch's future has resolved. Only a DELIVERED
status lets the pipeline move checkpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRecord, LineRun
from shipper.sinks.kafka.config import KafkaSinkConfig
from shipper.sinks.kafka.service import partition_of
from shipper.sinks.kafka.wire import WireFormat


class Client(Protocol):
    """What the sink needs of the Kafka client (``service.KafkaService``; an in-memory one in unit tests)."""

    @property
    def connected(self) -> bool: ...

    def mark(self, connected: bool) -> None: ...

    def status_of(self, exc: BaseException) -> BatchStatus: ...

    async def start(self) -> None: ...

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]: ...

    async def partitions(self, topic: str) -> list[int]: ...

    async def close(self) -> None: ...


class RecordTooLarge(Exception):
    """One record does not fit in an empty batch: the broker could never take it."""


class KafkaSink:
    """Implements ``shipper.sinks.base.RunSink`` on a Kafka :class:`Client`."""

    name = "kafka"

    def __init__(self, cfg: KafkaSinkConfig, client: Client | None = None) -> None:
        self.cfg = cfg
        if client is None:
            from shipper.sinks.kafka.service import KafkaService

            client = KafkaService(cfg)
        self.client: Client = client
        self.wire = WireFormat(cfg)
        self._started = False
        self._producing = asyncio.Lock()  # one batch handed over at a time: a file's lines keep their order

    async def start(self) -> None:
        """Connect; raises if no broker answers (the agent retries)."""
        await self.client.start()
        self._started = True

    @property
    def connected(self) -> bool:
        return self._started and self.client.connected

    async def close(self) -> None:
        """Deliver what the client holds (bounded) and disconnect."""
        self._started = False
        await self.client.close()

    async def send(self, batch: Sequence[LineRecord]) -> BatchStatus:
        """Deliver single records (the pipeline's split of a rejected batch): see :meth:`send_runs`."""
        return await self.send_runs([LineRun.of(r) for r in batch])

    async def send_runs(self, runs: Sequence[LineRun]) -> BatchStatus:
        """Deliver the lines of ``runs``; DELIVERED once all in-sync replicas have every one of them.

        ERRORED: not connected, a timeout or a broker error (the caller sends again); REJECTED: a
        record can never be written (too large, invalid topic: the caller splits the batch and
        dead-letters). Cancelling the call leaves the batch unacknowledged: batches already handed
        to the client may still arrive, and arrive again when the batch is resent.
        """
        if not self._started:
            return BatchStatus.ERRORED  # not connected yet: the agent keeps connecting
        client = self.client
        try:
            async with self._producing:
                futures = await self._hand_over(runs)
        except RecordTooLarge:
            return BatchStatus.REJECTED
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            st = client.status_of(exc)
            if st is BatchStatus.ERRORED:
                client.mark(False)
            return st
        status = BatchStatus.DELIVERED
        if futures:
            await asyncio.wait(futures)  # not gather: cancelling this call must not cancel the client's futures
        for fut in futures:
            err = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
            if err is not None:
                status = status.merge(client.status_of(err))
        client.mark(status is not BatchStatus.ERRORED)
        return status

    async def _hand_over(self, runs: Sequence[LineRun]) -> list[asyncio.Future[Any]]:
        """Append every line to the batch of its topic-partition; full batches go out as they fill."""
        client, wire = self.client, self.wire
        batches: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for run in runs:
            topic = wire.topic_of(run)
            key = wire.key_of(run)
            tp = (topic, partition_of(key, await client.partitions(topic)))
            batch = batches.get(tp)
            for value, headers in wire.records(run):
                if batch is None:
                    batch = batches[tp] = client.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    if not batch.record_count():
                        raise RecordTooLarge(f"a record of {len(value)} bytes exceeds kafka.batch_max_bytes")
                    futures.append(await client.send_batch(batch, *tp))
                    batch = batches[tp] = client.create_batch()
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        raise RecordTooLarge(f"a record of {len(value)} bytes exceeds kafka.batch_max_bytes")
        for tp, batch in batches.items():
            if batch.record_count():
                futures.append(await client.send_batch(batch, *tp))
        return futures
