"""Link records out: the span work's finalizer produces them before the span's offset may move.

The delivery contract (why this sits in the finalizer, not beside the parser): a span record's
Kafka offset is committed only after its document is indexed *and* its link record is acknowledged
by the links topic with ``acks=all``. Otherwise a crash between the commit and the produce would
lose the link for good — the span would never be read again. Produced with the idempotent
producer, keyed by trace id; a redelivered span produces its link again, which the stage merges
into the same trace (``consumer/dependencies/store.py``), so that is harmless.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from consumer.dependencies.link import SpanLink
from consumer.dependencies.telemetry import LinkProduceFailed, LinksProduced
from consumer.telemetry import log


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` when it does not exist (best effort: the broker may auto-create it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        if topic in await admin.list_topics():
            return
        brokers = (await admin.describe_cluster()).get("brokers") or [None]
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=min(3, len(brokers)))])
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:
        log.warning("LinksTopicNotCreated", extra={"fields": {"topic": topic, "error": repr(exc)}})
    finally:
        await admin.close()


class LinkProducer:
    """Produces :class:`SpanLink` records to the links topic; :meth:`send` returns once acknowledged."""

    def __init__(
        self, bootstrap: str, topic: str, partitions: int = 6, retry_initial: float = 0.2, retry_max: float = 5.0
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._producer = self._new_producer()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id="logpipe-consumer-links",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            compression_type="lz4",
        )

    async def start(self) -> None:
        """Create the topic if missing, then connect; raises when the brokers cannot be reached."""
        await ensure_topic(self.bootstrap, self.topic, self.partitions)
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            self._producer = self._new_producer()  # a failed client is not restartable
            raise

    async def send(self, links: Sequence[SpanLink]) -> None:
        """Produce ``links`` (key = trace id) and wait until every one is acknowledged (``acks=all``).

        Failures are retried with backoff until they succeed; cancelling leaves the span records
        unresolved (they and their links are redelivered after a restart).
        """
        pending = list(links)
        attempt = 0
        while pending:
            futures = []
            try:
                for link in pending:
                    key = link.trace_id.encode()
                    futures.append(await self._producer.send(self.topic, value=link.encode(), key=key))
            except KafkaError as exc:
                LinkProduceFailed(count=len(pending), error=repr(exc)[:300]).emit()
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [link for link, r in zip(pending, results, strict=False) if isinstance(r, BaseException)]
            failed.extend(pending[len(futures):])  # never handed to the producer
            LinksProduced(count=len(pending) - len(failed)).emit()
            if failed and len(futures) == len(pending):
                first = next(r for r in results if isinstance(r, BaseException))
                LinkProduceFailed(count=len(failed), error=repr(first)[:300]).emit()
            pending = failed
            if pending:
                attempt += 1
                backoff = min(self._retry_max, self._retry_initial * 2 ** min(attempt, 16))
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    async def close(self) -> None:
        await self._producer.stop()
