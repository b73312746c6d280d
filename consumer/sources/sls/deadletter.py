"""The dead-letter logstore of the SLS source: records that cannot be indexed, with the reason and raw bytes.

The SLS path's counterpart of ``consumer/deadletter.py`` (``consumer.ports.DeadLetterSink``): one
log per dead letter in ``dead_letter_logstore``, its tags the record's metadata (``lp.*`` headers
without the prefix, as the shipper's sink writes them), its contents the line byte for byte
(``content``), ``reason``, ``stage`` (parse | index) and ``source`` (``<logstore>/<shard>``). ``send``
returns only once SLS answered 200; then the record's position may be checkpointed.
"""

from __future__ import annotations

import time

from consumer.sources.sls.service import SlsConsumerService
from consumer.telemetry import RecordDeadLettered
from consumer.work import Work

MAX_REASON_CHARS = 4000


def dead_letter_log(work: Work) -> tuple[list[tuple[str, str]], list[tuple[str, bytes]]]:
    """The tags and contents of ``work``'s dead letter."""
    tags = [
        (k.removeprefix("lp."), v.decode("utf-8", "replace"))
        for k, v in work.headers
        if k.startswith("lp.") and not k.startswith("lp.dlq.")
    ]
    reason = work.reason if len(work.reason) <= MAX_REASON_CHARS else work.reason[:MAX_REASON_CHARS] + "..."
    contents = [
        ("content", work.raw),
        ("reason", reason.encode("utf-8", "replace")),
        ("stage", work.stage.encode()),
        ("source", f"{work.topic}/{work.partition}".encode()),
    ]
    return tags, contents


class SlsDeadLetterWriter:
    """Writes dead letters to one logstore of the source's project."""

    def __init__(self, service: SlsConsumerService, logstore: str) -> None:
        self.service = service
        self.logstore = logstore

    async def start(self) -> None:
        """Nothing to connect: every PutLogs is one request."""

    async def send(self, work: Work) -> None:
        tags, contents = dead_letter_log(work)
        await self.service.put(self.logstore, tags, contents, int(time.time()))
        RecordDeadLettered(
            stage=work.stage, topic=work.topic, partition=work.partition, offset=work.kafka_offset,
            reason=work.reason[:300],
        ).emit()

    async def close(self) -> None:
        """Nothing to close."""
