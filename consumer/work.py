"""One unit of work on its way to being resolved: a document (or a dead letter) and its Kafka records.

A :class:`Work` carries the cursor with it (STYLE.md #3): the partition, the generation of that
partition's assignment, and every Kafka offset it stands for (its own record plus the CRI fragments
it absorbed). Whoever finishes the work — Elasticsearch accepted the document, or the dead-letter
topic acknowledged it — hands it back to :class:`consumer.offsets.PartitionOffsets`; nothing else
moves a commit position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

TopicPartitionKey = tuple[str, int]


@dataclass(slots=True, eq=False)
class SharedOffsets:
    """The Kafka offsets of one record split into several works (``parsers.Many``): one finalizer.

    Each part releases it once; only the last release hands the offsets over (STYLE.md #15)."""

    offsets: list[int]
    remaining: int

    def release(self) -> list[int]:
        self.remaining -= 1
        return self.offsets if self.remaining == 0 else []


@dataclass(slots=True, eq=False)
class Work:
    """A document to index (``doc`` set) or a record to dead-letter (``reason`` set)."""

    topic: str
    partition: int
    generation: int
    offsets: list[int]
    """Kafka offsets resolved together with this work (may be empty for an expired CRI flush)."""
    raw: bytes
    """The original record value (the line), kept for the dead-letter topic."""
    headers: Sequence[tuple[str, bytes]]
    key: bytes | None
    kafka_offset: int
    """The offset of the record this work came from (the last one, for reassembled CRI lines)."""
    doc: dict[str, Any] | None = None
    log_type: str = ""
    index: str = ""
    doc_id: str = ""
    reason: str = ""
    stage: str = "parse"
    """Where it failed, for dead letters: ``parse`` (unparseable line) or ``index`` (Elasticsearch refused it)."""
    size: int = field(default=0)
    """Bytes this work holds in memory (counted against ``bulk.max_buffered_bytes``)."""
    item: bytes = b""
    """The ``_bulk`` item (action line + document) when the native encoder wrote it and ``doc`` was
    never built (``parsers/access_encoder.py``); empty once the item is re-encoded from ``doc``."""
    shared: SharedOffsets | None = None
    """Set on the parts of a multi-document record: their record's offsets, released by the last part."""

    def settled_offsets(self) -> list[int]:
        """The offsets this work resolves now that it is finished (called once per work)."""
        shared = self.shared
        if shared is None:
            return self.offsets
        self.shared = None  # a part releases its share once
        return shared.release()

    def document(self) -> dict[str, Any] | None:
        """``doc``, built from ``item`` on first use (alert rules, retries) when only the item exists."""
        if self.doc is None and self.item:
            self.doc = orjson.loads(self.item[self.item.index(b"\n") + 1 :])
        return self.doc

    @property
    def tp(self) -> TopicPartitionKey:
        return (self.topic, self.partition)
