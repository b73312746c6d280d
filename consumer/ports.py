"""The consume loop's interfaces: what it needs from its source, indexer, dead-letter sink, alert sink and clock.

``consumer/app.py`` (the composition root) builds the real ones — Kafka (``consumer/sources/kafka/``),
Elasticsearch (``consumer/es_client.py``), the dead-letter topic (``consumer/deadletter.py``), the
alert engine (``consumer/alerts/engine.py``), the system clock — and hands them to
``consumer/loop.py``; the unit tests hand it in-memory ones (``tests/consumer/memory.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from consumer.dependencies.link import SpanLink
from consumer.work import TopicPartitionKey, Work


class SourceRecord(Protocol):
    """One fetched record (aiokafka's ``ConsumerRecord`` is one)."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class PartitionListener(Protocol):
    """What the loop does when the group moves partitions (``consumer/commits.py`` is the one)."""

    async def partitions_assigned(self, partitions: Sequence[TopicPartitionKey]) -> None: ...

    async def partitions_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None: ...


class Source(Protocol):
    """A consumer-group member: partitioned records in offset order, pause/resume, commits.

    ``partitions_revoked`` is awaited while the member still owns the partitions, so it may commit
    their final positions; ``commit`` ignores partitions no longer assigned.
    """

    async def start(self, listener: PartitionListener) -> None:
        """Connect and join; raises when unreachable (may be called again)."""
        ...

    async def fetch(self, timeout_s: float) -> Mapping[TopicPartitionKey, Sequence[SourceRecord]]:
        """Records that arrived within ``timeout_s``, per partition, in offset order (empty while paused)."""
        ...

    def pause_all(self) -> bool:
        """Stop fetching every assigned partition; True if that changed anything."""
        ...

    def resume_all(self) -> bool:
        """Fetch every assigned partition again; True if that changed anything."""
        ...

    @property
    def paused(self) -> bool: ...

    def reapply_pause(self) -> None:
        """Pause newly assigned partitions too while paused."""
        ...

    def partitions_for(self, topic: str) -> Collection[int] | None:
        """The partition ids of ``topic`` (None while unknown)."""
        ...

    async def commit(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        """Commit ``positions`` (next offset to read); False on failure."""
        ...

    def lag(self, tp: TopicPartitionKey, position: int) -> int | None: ...

    async def close(self) -> None: ...


class BulkHttpError(Exception):
    """The bulk endpoint answered a whole request with an HTTP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class BulkUnreachable(Exception):
    """The bulk request got no answer (connection refused or reset, timeout)."""


class BulkEndpoint(Protocol):
    """The index side: one ``_bulk`` call (``consumer/indexer.py`` owns retries and item outcomes)."""

    async def bulk(self, body: bytes) -> Mapping[str, Any]:
        """Post an NDJSON ``_bulk`` body; the answer holds ``errors`` and ``items.*.status``/``error``.

        Raises :class:`BulkHttpError` or :class:`BulkUnreachable` when the request as a whole failed.
        """
        ...


class DeadLetterSink(Protocol):
    """Where records that cannot be indexed go, with their reason (``consumer/deadletter.py``)."""

    async def start(self) -> None:
        """Connect; raises when unreachable (may be called again)."""
        ...

    async def send(self, work: Work) -> None:
        """Return once the dead letter is durably acknowledged; raise on failure (the loop retries)."""
        ...

    async def close(self) -> None: ...


class LinkSink(Protocol):
    """Where span link records go once their spans are indexed (``consumer/dependencies/producer.py``)."""

    async def start(self) -> None:
        """Connect; raises when unreachable (may be called again)."""
        ...

    async def send(self, links: Sequence[SpanLink]) -> None:
        """Return once every link is durably acknowledged; raise on failure (the loop sends them again)."""
        ...

    async def close(self) -> None: ...


class AlertSink(Protocol):
    """What the loop needs from the alert engine (``consumer.alerts.engine.AlertEngine``)."""

    async def start(self) -> None: ...

    def observe(self, doc: Mapping[str, Any]) -> None:
        """Evaluate the rules on one document; must not block. The document is not copied: only
        ``event.ingested`` changes afterwards (``consumer/bulk.py`` stamps it at each encode)."""
        ...

    def set_owner(self, owns_component: Callable[[str], bool] | None) -> None:
        """Which Components this replica receives (called after each rebalance, for absence rules)."""
        ...

    async def stop(self) -> None: ...


class Clock(Protocol):
    """Time for the loop: timers, backoff and grace periods (a fake one makes unit tests exact)."""

    def monotonic(self) -> float: ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (the index day of a document without a timestamp)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until ``event`` is set or ``timeout`` passed; True if it was set."""
        ...
