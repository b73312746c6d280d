"""The consumer's telemetry as named events: each one structured JSON log line and one metric.

Every event is a small frozen dataclass with ``emit()`` (base and log writer: ``logpipe/core/events.py``),
which writes exactly one log record (logger ``logpipe.consumer``, JSON: ``logpipe/core/json_log.py``)
and moves exactly one Prometheus metric with fixed labels, so logs and metrics cannot drift apart
(Vector's ``internal_events``). Per-record events are counted per batch (``RecordsConsumed(topic,
count)``) so a busy consumer logs per request, not per line; those log at DEBUG. Labels hold bounded
values only (topic, log type, partition number, error type).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from logpipe.core import json_log
from logpipe.core.events import Event, EventLog
from logpipe.core.json_log import JsonFormatter as JsonFormatter  # re-exported for the consumer's callers

log = logging.getLogger("logpipe.consumer")

_P = "logpipe_consumer_"

RECORDS_CONSUMED = Counter(_P + "records_consumed", "Kafka records fetched", ["topic"])
NATIVE_ENCODED = Counter(
    _P + "native_encoded", "Records the native access-line encoder turned into bulk items (the rest: Python)", ["topic"]
)
DOCS_INDEXED = Counter(_P + "docs_indexed", "Documents Elasticsearch accepted", ["type"])
ITEMS_RETRIED = Counter(_P + "items_retried", "Bulk items sent again after 429/5xx or a failed request", [])
ITEMS_REJECTED = Counter(_P + "items_rejected", "Bulk items Elasticsearch refused for good", ["error"])
DEAD_LETTERED = Counter(_P + "dead_lettered", "Records the dead-letter topic acknowledged", ["stage"])
DLQ_ERRORS = Counter(_P + "dead_letter_errors", "Failed sends to the dead-letter topic (retried)", [])
BULK_LATENCY = Histogram(
    _P + "bulk_latency_seconds",
    "Duration of one _bulk request",
    [],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BULK_FAILURES = Counter(_P + "bulk_failures", "Whole _bulk requests that failed (unreachable, 5xx, 429)", [])
ES_AVAILABLE = Gauge(_P + "elasticsearch_available", "1 while the last _bulk request succeeded", [])
PAUSES = Counter(_P + "fetch_pauses", "Times fetching was paused (buffer full or Elasticsearch down)", ["reason"])
COMMITS = Counter(_P + "commits", "Offset commits, by result", ["result"])
REBALANCES = Counter(_P + "rebalances", "Partitions assigned or revoked", ["kind"])
PARTITION_LAG = Gauge(_P + "partition_lag", "Records in the partition not yet committed", ["topic", "partition"])
BUFFERED_BYTES = Gauge(_P + "buffered_bytes", "Bytes of records fetched but not yet resolved", [])
TEMPLATES = Counter(_P + "templates_installed", "Index and component templates installed", [])
INDICES_DELETED = Counter(_P + "indices_deleted", "Daily indices deleted by retention", [])
ALERT_ERRORS = Counter(_P + "alert_errors", "Documents the alert engine raised on", [])


def configure_json_logging(level: str = "info") -> None:
    """Send the ``logpipe.consumer`` logger to stderr as JSON lines (idempotent)."""
    json_log.configure_json_logging(level, "logpipe.consumer")


_log = EventLog(log)


# --- records in ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordsConsumed(Event):
    """A fetch handed over ``count`` records of ``topic``."""

    topic: str
    count: int

    def emit(self) -> None:
        _log(logging.DEBUG, "RecordsConsumed", self.fields())
        RECORDS_CONSUMED.labels(topic=self.topic).inc(self.count)


@dataclass(frozen=True, slots=True)
class RecordsEncodedNatively(Event):
    """``count`` records of one fetch of ``topic`` went through the native encoder (the others were
    parsed in Python: other log types, or lines outside the encoder's plain case)."""

    topic: str
    count: int

    def emit(self) -> None:
        _log(logging.DEBUG, "RecordsEncodedNatively", self.fields())
        NATIVE_ENCODED.labels(topic=self.topic).inc(self.count)


@dataclass(frozen=True, slots=True)
class FetchPaused(Event):
    """Fetching stopped: too many bytes buffered, or Elasticsearch is unavailable."""

    reason: str  # buffer_full | elasticsearch_down
    buffered_bytes: int

    def emit(self) -> None:
        _log(logging.WARNING, "FetchPaused", self.fields())
        PAUSES.labels(reason=self.reason).inc()


@dataclass(frozen=True, slots=True)
class FetchResumed(Event):
    """Fetching resumed after a pause."""

    buffered_bytes: int

    def emit(self) -> None:
        _log(logging.INFO, "FetchResumed", self.fields())
        BUFFERED_BYTES.set(self.buffered_bytes)


# --- Elasticsearch -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkIndexed(Event):
    """One ``_bulk`` request finished: ``indexed`` documents of ``log_type`` accepted."""

    log_type: str
    indexed: int

    def emit(self) -> None:
        _log(logging.DEBUG, "BulkIndexed", self.fields())
        DOCS_INDEXED.labels(type=self.log_type).inc(self.indexed)


@dataclass(frozen=True, slots=True)
class BulkCompleted(Event):
    """A ``_bulk`` request got an answer (whatever its items say) after ``seconds``."""

    actions: int
    body_bytes: int
    seconds: float

    def emit(self) -> None:
        _log(logging.DEBUG, "BulkCompleted", self.fields())
        BULK_LATENCY.observe(self.seconds)


@dataclass(frozen=True, slots=True)
class BulkFailed(Event):
    """A whole ``_bulk`` request failed (unreachable, timeout, 5xx, 429): all its items are retried."""

    actions: int
    error: str

    def emit(self) -> None:
        _log(logging.WARNING, "BulkFailed", self.fields())
        BULK_FAILURES.inc()


@dataclass(frozen=True, slots=True)
class BulkRetried(Event):
    """``items`` documents are sent again after a backoff of ``backoff_s`` (attempt ``attempt``)."""

    items: int
    attempt: int
    backoff_s: float

    def emit(self) -> None:
        _log(logging.INFO if self.attempt < 3 else logging.WARNING, "BulkRetried", self.fields())
        ITEMS_RETRIED.inc(self.items)


@dataclass(frozen=True, slots=True)
class BulkItemRejected(Event):
    """Elasticsearch refused one document for good (e.g. a mapping error): it goes to the dead-letter topic."""

    index: str
    doc_id: str
    status: int
    error_type: str
    reason: str

    def emit(self) -> None:
        _log(logging.WARNING, "BulkItemRejected", self.fields())
        ITEMS_REJECTED.labels(error=self.error_type).inc()


@dataclass(frozen=True, slots=True)
class ElasticsearchAvailability(Event):
    """Elasticsearch became unavailable (fetching pauses) or available again (it resumes)."""

    available: bool
    error: str = ""

    def emit(self) -> None:
        _log(logging.INFO if self.available else logging.WARNING, "ElasticsearchAvailability", self.fields())
        ES_AVAILABLE.set(1 if self.available else 0)


@dataclass(frozen=True, slots=True)
class TemplatesInstalled(Event):
    """The component and index templates for ``prefix`` were put (idempotent)."""

    prefix: str
    names: tuple[str, ...]
    ilm: bool

    def emit(self) -> None:
        _log(logging.INFO, "TemplatesInstalled", self.fields())
        TEMPLATES.inc(len(self.names))


@dataclass(frozen=True, slots=True)
class IndexDeleted(Event):
    """Retention deleted a daily index older than ``retention_days``."""

    index: str
    retention_days: int

    def emit(self) -> None:
        _log(logging.INFO, "IndexDeleted", self.fields())
        INDICES_DELETED.inc()


# --- dead letters --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordDeadLettered(Event):
    """The dead-letter topic acknowledged a record that could not be indexed."""

    stage: str  # parse | index
    topic: str
    partition: int
    offset: int
    reason: str

    def emit(self) -> None:
        _log(logging.WARNING, "RecordDeadLettered", self.fields())
        DEAD_LETTERED.labels(stage=self.stage).inc()


@dataclass(frozen=True, slots=True)
class DeadLetterFailed(Event):
    """Sending to the dead-letter topic failed; the record stays unresolved and is sent again."""

    topic: str
    partition: int
    offset: int
    error: str

    def emit(self) -> None:
        _log(logging.WARNING, "DeadLetterFailed", self.fields())
        DLQ_ERRORS.inc()


# --- Kafka group ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionsAssigned(Event):
    """The group gave this member partitions."""

    partitions: tuple[str, ...]

    def emit(self) -> None:
        _log(logging.INFO, "PartitionsAssigned", self.fields())
        REBALANCES.labels(kind="assigned").inc(len(self.partitions))


@dataclass(frozen=True, slots=True)
class PartitionsRevoked(Event):
    """The group took partitions away; ``abandoned`` records were still unresolved (the next owner redoes them)."""

    partitions: tuple[str, ...]
    abandoned: int

    def emit(self) -> None:
        _log(logging.INFO, "PartitionsRevoked", self.fields())
        REBALANCES.labels(kind="revoked").inc(len(self.partitions))
        for p in self.partitions:
            topic, _, part = p.rpartition("/")
            try:
                PARTITION_LAG.remove(topic, part)
            except KeyError:
                pass


@dataclass(frozen=True, slots=True)
class OffsetsCommitted(Event):
    """Resolved low-water marks were committed."""

    offsets: dict[str, int]

    def emit(self) -> None:
        _log(logging.DEBUG, "OffsetsCommitted", self.fields())
        COMMITS.labels(result="ok").inc()


@dataclass(frozen=True, slots=True)
class CommitFailed(Event):
    """A commit failed (e.g. during a rebalance); the offsets are committed again later or redone."""

    error: str

    def emit(self) -> None:
        _log(logging.WARNING, "CommitFailed", self.fields())
        COMMITS.labels(result="error").inc()


@dataclass(frozen=True, slots=True)
class AlertObserveFailed(Event):
    """The alert engine raised on a document (the document is indexed all the same)."""

    error: str

    def emit(self) -> None:
        _log(logging.ERROR, "AlertObserveFailed", self.fields())
        ALERT_ERRORS.inc()


def set_partition_lag(topic: str, partition: int, lag: int) -> None:
    """Per-partition lag gauge (a level, not an event: no log line)."""
    PARTITION_LAG.labels(topic=topic, partition=str(partition)).set(lag)


def set_buffered_bytes(n: int) -> None:
    """Bytes buffered gauge (a level, not an event: no log line)."""
    BUFFERED_BYTES.set(n)
