"""The dead-letter topic: records that cannot be indexed, with the reason, source headers and raw bytes.

A dead letter keeps the original record's key, value (the line, byte for byte) and headers (its
source identity), plus ``lp.dlq.*`` headers saying why, at which stage, and where it was read. It
is produced with ``acks=all`` and the call returns only once the topic acknowledged it: only then
may the record's offset be committed. :class:`DeadLetterWriter` is the Kafka implementation of
``consumer.ports.DeadLetterSink``; a failed send raises, and ``consumer/dispatch.py`` retries it
with backoff (never skipped).
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from consumer.telemetry import log
from consumer.work import Work
from logpipe.core.kafka_security import KafkaSecurity, aiokafka_kwargs, start_guarded

H_DLQ_REASON = "lp.dlq.reason"
H_DLQ_STAGE = "lp.dlq.stage"  # parse | index
H_DLQ_SOURCE = "lp.dlq.source"  # <topic>/<partition>@<offset> of the record it came from
MAX_REASON_CHARS = 4000


def dead_letter_headers(work: Work) -> list[tuple[str, bytes]]:
    """The original headers (minus old ``lp.dlq.*``) followed by this dead letter's reason, stage and source."""
    reason = work.reason if len(work.reason) <= MAX_REASON_CHARS else work.reason[:MAX_REASON_CHARS] + "..."
    kept = [(k, v) for k, v in work.headers if not k.startswith("lp.dlq.")]
    return [
        *kept,
        (H_DLQ_REASON, reason.encode("utf-8", "replace")),
        (H_DLQ_STAGE, work.stage.encode()),
        (H_DLQ_SOURCE, f"{work.topic}/{work.partition}@{work.kafka_offset}".encode()),
    ]


class DeadLetterWriter:
    """Produces dead letters to one topic; :meth:`send` returns once the topic acknowledged."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        client_id: str = "logpipe-consumer-dlq",
        security: KafkaSecurity | None = None,
    ) -> None:
        self.topic = topic
        self.bootstrap = bootstrap
        self.security = security or KafkaSecurity()
        self._client_id = client_id
        self._producer = self._new_producer()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            max_request_size=16 * 1024 * 1024,
            linger_ms=5,
            **aiokafka_kwargs(self.security),
        )

    async def start(self) -> None:
        """Create the topic if it does not exist yet (best effort), then connect.

        Raises when the brokers cannot be reached; the writer can be started again afterwards.
        """
        await self._ensure_topic()
        try:
            await start_guarded(self._producer.start, self.security, self.bootstrap)
        except BaseException:
            await self._producer.stop()
            self._producer = self._new_producer()  # a failed client is not restartable
            raise

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **aiokafka_kwargs(self.security))
        try:
            await start_guarded(admin.start, self.security, self.bootstrap)
            if self.topic in await admin.list_topics():
                return
            brokers = (await admin.describe_cluster()).get("brokers") or [None]
            replication = min(3, len(brokers))
            await admin.create_topics([NewTopic(self.topic, num_partitions=3, replication_factor=replication)])
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:  # the broker may auto-create it on first produce
            log.warning("DeadLetterTopicNotCreated", extra={"fields": {"topic": self.topic, "error": repr(exc)}})
        finally:
            await admin.close()

    async def send(self, work: Work) -> None:
        """Produce ``work`` as a dead letter and wait for ``acks=all``; raises ``KafkaError`` on failure.

        Cancelling the call leaves the record unresolved (it is redelivered after a restart).
        """
        fut = await self._producer.send(self.topic, value=work.raw, key=work.key, headers=dead_letter_headers(work))
        await fut

    async def close(self) -> None:
        await self._producer.stop()
