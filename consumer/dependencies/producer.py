"""Link records out: the span work's finalizer produces them before the span's offset may move.

The delivery contract (why this sits in the finalizer, not beside the parser): a span record's
Kafka offset is committed only after its document is indexed *and* its link record is acknowledged
by the links topic with ``acks=all``. Otherwise a crash between the commit and the produce would
lose the link for good — the span would never be read again. Produced with the idempotent
producer, keyed by trace id; a redelivered span produces its link again, which the stage merges
into the same trace (``consumer/dependencies/store.py``), so that is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from consumer.dependencies.link import SpanLink
from consumer.dependencies.telemetry import LinksProduced
from consumer.telemetry import log
from logpipe.core.kafka_security import KafkaSecurity, aiokafka_kwargs, start_guarded


async def ensure_topic(bootstrap: str, topic: str, partitions: int, security: KafkaSecurity | None = None) -> None:
    """Create ``topic`` when it does not exist (best effort: the broker may auto-create it)."""
    sec = security or KafkaSecurity()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_kwargs(sec))
    try:
        await start_guarded(admin.start, sec, bootstrap)
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
    """Produces :class:`SpanLink` records to the links topic (``consumer.ports.LinkSink``)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = 6, security: KafkaSecurity | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.security = security or KafkaSecurity()
        self._producer = self._new_producer()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id="logpipe-consumer-links",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            **aiokafka_kwargs(self.security),
        )

    async def start(self) -> None:
        """Create the topic if missing, then connect; raises when the brokers cannot be reached."""
        await ensure_topic(self.bootstrap, self.topic, self.partitions, self.security)
        try:
            await start_guarded(self._producer.start, self.security, self.bootstrap)
        except BaseException:
            await self._producer.stop()
            self._producer = self._new_producer()  # a failed client is not restartable
            raise

    async def send(self, links: Sequence[SpanLink]) -> None:
        """Produce ``links`` (key = trace id) and return once every one is acknowledged (``acks=all``);
        raises on the first failure (the caller sends them all again: the stage merges duplicates).

        Cancelling leaves the span records unresolved (they and their links are redelivered)."""
        futures = [
            await self._producer.send(self.topic, value=link.encode(), key=link.trace_id.encode()) for link in links
        ]
        for fut in futures:
            await fut
        LinksProduced(count=len(links)).emit()

    async def close(self) -> None:
        await self._producer.stop()
