"""The consumer's configuration: Kafka in, Elasticsearch out, and the knobs in between.

Every field has a default that makes a local run work with no file (``logpipe consume``): the
default topics on ``127.0.0.1:9092`` into daily indices ``logpipe-<type>-YYYY.MM.DD`` on
``http://127.0.0.1:9200``. Command-line flags override the file (see ``logpipe/cli/consume.py``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from consumer.sources.sls.config import SlsSourceConfig
from consumer.spanmetrics.config import SpanMetricsConfig
from logpipe.core.config_base import ConfigError, StrictModel, format_validation_error, load_model
from logpipe.core.durations import Duration
from logpipe.core.es_connection import EsConnection
from logpipe.core.fields import FieldMappingConfig
from logpipe.core.kafka_security import KafkaSecurity

DEFAULT_TOPICS = ["logpipe-access", "logpipe-app", "logpipe-stdout", "logpipe-trace"]

_INDEX_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class KafkaConfig(KafkaSecurity):
    """Where records come from and where the ones that cannot be indexed go.

    The security keys (``security_protocol``, ``sasl_*``, ``ssl_*``) are the shipper's (docs/SECURITY.md);
    they apply to the consumer, the dead-letter producer and topic creation alike."""

    bootstrap: str = "127.0.0.1:9092"
    """Kafka bootstrap servers, ``host:port[,host:port...]``."""
    group_id: str = "logpipe-consumer"
    """Consumer group shared by every replica."""
    topics: list[str] = Field(default_factory=lambda: list(DEFAULT_TOPICS))
    """Topics to consume (a topic that does not exist yet is picked up once it does)."""
    dead_letter_topic: str = "logpipe-deadletter"
    """Where unparseable lines and documents Elasticsearch refuses go, with the reason and raw bytes."""
    client_id: str = "logpipe-consumer"
    """Client id shown in the broker's logs."""
    instance_id: str | None = Field(default_factory=lambda: os.environ.get("POD_NAME") or None)
    """Static group membership (Kafka ``group.instance.id``; default: $POD_NAME, which the Deployment
    sets from the downward API): a restarted container rejoins as the same member and gets its
    partitions back at once, without a rebalance; a clean stop (SIGTERM) removes the member from the
    group, so its partitions move at once. Unique per replica; ``""`` turns it off."""
    max_poll_records: int = Field(default=1000, gt=0)
    """Upper bound of records parsed per loop turn (small turns let finished bulks be followed up quickly)."""
    fetch_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Upper bound of bytes one fetch response may hold (bounds memory with the buffer limit)."""
    session_timeout: Duration = 30.0
    """How long the group waits for a silent member before it rebalances its partitions away."""
    commit_interval: Duration = 1.0
    """How often resolved offsets are committed (they are also committed on revoke and stop)."""
    request_timeout: Duration = Field(default=40.0, gt=0)
    """How long one request to a broker may go unanswered before its connection counts as dead and is
    opened again (a broker that accepts connections but never answers is left after this long). Keep it
    above the group's rebalance timeout (30 s): a JoinGroup may legitimately wait that long."""
    probe_timeout: Duration = Field(default=5.0, gt=0)
    """When no records arrived for this long, a metadata request checks the broker answers; no answer
    within it (or an error) makes ``/readyz`` say Kafka is unreachable, until one succeeds."""

    @field_validator("topics")
    @classmethod
    def _topics_not_empty(cls, v: list[str]) -> list[str]:
        if not v or any(not t.strip() for t in v):
            raise ValueError("must list at least one non-empty topic — fix: e.g. [logpipe-access]")
        return v


class HealthConfig(StrictModel):
    """When ``/healthz`` calls the consumer stuck (``logpipe/core/supervisor.py``)."""

    stall_after: Duration = Field(default=60.0, gt=0)
    """/healthz fails when the consume loop (fetch, ingest, flush, commit) has not turned for this long.
    An Elasticsearch outage does not stop it turning (partitions are paused, fetches return empty), so
    a long outage never makes the kubelet restart the consumer."""
    delivery_stall_after: Duration = Field(default=300.0, gt=0)
    """/healthz fails when bulk requests, dead letters or span links are in flight and none got an
    answer for this long (a client stuck on a dead connection). Failing answers count: an
    Elasticsearch or Kafka outage never trips it."""


class BulkConfig(StrictModel):
    """How documents are grouped into ``_bulk`` requests (tuned by ``bench/consumer_bench.py``)."""

    max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """A request is sent once its body reaches this many bytes."""
    max_actions: int = Field(default=4000, gt=0)
    """... or holds this many documents."""
    flush_interval: Duration = 0.2
    """... or its oldest document has waited this long (bounds latency at low volume)."""
    concurrency: int = Field(default=3, gt=0, le=64)
    """Bulk requests in flight at once (3: one waits at Elasticsearch while two are indexed, so its
    write threads never idle between requests; +7 % end to end over 2 in the bench)."""
    max_buffered_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Fetching pauses while this many bytes of records are parsed but not yet resolved."""
    retry_initial: Duration = 0.2
    """First backoff after a failed item or request; doubled per attempt, with jitter."""
    retry_max: Duration = 5.0
    """Longest backoff; items are retried until they succeed (never dropped)."""
    request_timeout: Duration = 60.0
    """Timeout of one ``_bulk`` HTTP request."""


class IndexConfig(StrictModel):
    """Index naming, templates and retention."""

    prefix: str = "logpipe"
    """Indices are ``<prefix>-<type>-YYYY.MM.DD`` (UTC day of ``@timestamp``); one prefix per environment."""
    retention_days: int = Field(default=7, gt=0)
    """Daily indices older than this are deleted (by ILM when the cluster has it, else by the consumer)."""
    shards: int = Field(default=1, gt=0)
    """Primary shards per daily index."""
    replicas: int = Field(default=0, ge=0)
    """Replicas per daily index (0 suits a one-node local cluster)."""
    refresh_interval: str = "1s"
    """How soon indexed documents become searchable (bounds end-to-end latency)."""
    total_fields_limit: int = Field(default=2000, gt=0)
    """Mapped fields per index; dynamic fields beyond it are kept in ``_source`` but not indexed."""
    template_priority: int = Field(default=200, ge=0)
    """Priority of the composable index template (above the built-in ``logs-*`` templates)."""
    install_templates: bool = True
    """Install (idempotently) the component and index templates at start."""

    @field_validator("prefix")
    @classmethod
    def _prefix_is_index_name(cls, v: str) -> str:
        if not _INDEX_PREFIX.match(v):
            raise ValueError(
                f"{v!r} is not a valid index name prefix — fix: lowercase letters, digits, '-', '_' or '.'"
                ", starting with a letter or digit"
            )
        return v


class ElasticsearchConfig(EsConnection):
    """The Elasticsearch cluster documents go to (TLS and credentials: docs/SECURITY.md)."""


class HttpConfig(StrictModel):
    """The health and metrics endpoint."""

    host: str = "0.0.0.0"
    """Address to bind."""
    port: int = Field(default=9465, ge=0, le=65535)
    """Port of ``/healthz``, ``/readyz`` and ``/metrics``; 0 picks a free one (logged at start)."""


class AlertsConfig(StrictModel):
    """In-stream keyword alerts (optional: no rules file, no alerts)."""

    rules: str | None = None
    """Path of the alert rules file (see ``logpipe alerts``)."""
    alertmanager_url: str | None = None
    """Alertmanager to notify, e.g. ``http://127.0.0.1:9093``."""


class TraceDependenciesConfig(StrictModel):
    """The service dependency graph, computed in the stream (``consumer/dependencies/``).

    Each replica produces a small link record per span it indexes to ``topic`` (keyed by trace id);
    the replicas' dependency stages share that topic's partitions, join each trace's spans and
    write Jaeger's ``<prefix>-jaeger-dependencies-YYYY-MM-DD`` documents (see docs/TRACES.md)."""

    enabled: bool = True
    """Produce link records for spans and run the dependency stage."""
    topic: str = "logpipe-trace-links"
    """The links topic (created with ``partitions`` partitions when missing)."""
    partitions: int = Field(default=6, gt=0)
    """Partitions of the links topic when the consumer creates it (the stage's parallelism)."""
    group_id: str | None = None
    """Consumer group of the dependency stages (default: ``<kafka.group_id>-trace-links``)."""
    horizon: Duration = 10.0
    """A trace is linked once no span of it has come for this long (later spans are merged into it)."""
    max_trace_age: Duration = 120.0
    """... or once it has been gathered this long, so a trace that never goes quiet is still counted."""
    max_traces: int = Field(default=50_000, gt=0)
    """Traces held in memory at most; past it the oldest is linked early (counted as evicted)."""
    max_spans: int = Field(default=500_000, gt=0)
    """Span links held in memory at most (about 200 bytes each); past it the oldest trace is linked early."""
    bucket: Duration = 300.0
    """Time bucket of a dependency document (its ``timestamp`` is the bucket's start; query with a
    lookback of at least this)."""
    flush_interval: Duration = 2.0
    """How often quiet traces are written (their link offsets are committed after the write)."""
    peer_service_tag: str = "peer.service"
    """Tag naming an uninstrumented callee of a leaf span (spark-dependencies' ``PEER_SERVICE_TAG``); "" off."""

    @field_validator("bucket")
    @classmethod
    def _bucket_divides_day(cls, v: float) -> float:
        if v < 1 or v != int(v) or 86_400 % int(v):
            raise ValueError("must be whole seconds dividing a day — fix: e.g. 60, 300 or 3600")
        return v


class TraceSummariesConfig(StrictModel):
    """One summary document per trace in ``<prefix>-traces-YYYY.MM.DD``, what ``logpipe trace find``
    searches (docs/TRACES.md). Written by the dependency stage, from the spans it joins per trace:
    off with ``trace_dependencies.enabled: false`` and with an SLS source (the stage needs Kafka)."""

    enabled: bool = True
    """Write trace summaries."""
    horizon: Duration = 3600.0
    """A summary takes late spans for this long after it was first written, then stays as it is
    (a span arriving later still counts in the dependency graph)."""

    @field_validator("horizon")
    @classmethod
    def _horizon_positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be more than 0 — fix: e.g. 1h (late spans up to an hour update a summary)")
        return v


class KafkaSourceConfig(StrictModel):
    """Records come from the Kafka topics of the ``kafka`` section (the default source)."""

    type: Literal["kafka"] = "kafka"
    """Selects the Kafka source (its settings are the ``kafka`` section)."""


SourceConfig = Annotated[KafkaSourceConfig | SlsSourceConfig, Field(discriminator="type")]


class ConsumerConfig(StrictModel):
    """``logpipe consume`` configuration (YAML)."""

    source: SourceConfig = Field(default_factory=KafkaSourceConfig)
    """Where records come from: ``{type: kafka}`` (the ``kafka`` section's topics) or ``{type: sls, ...}``
    (SLS logstores through an SLS consumer group; see ``SlsSourceConfig``)."""
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    elasticsearch: ElasticsearchConfig = Field(default_factory=ElasticsearchConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    bulk: BulkConfig = Field(default_factory=BulkConfig)
    fields: FieldMappingConfig = Field(default_factory=FieldMappingConfig)
    """How access-log keys map to ECS fields (shared with ``logpipe query``)."""
    native_encoder: bool = True
    """Turn plain access lines into bulk items with the C encoder (the same documents as the Python
    parser, ~10x cheaper; any other line still goes through the Python parser). ``false``: every
    line through the Python parser."""
    http: HttpConfig = Field(default_factory=HttpConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    trace_dependencies: TraceDependenciesConfig = Field(default_factory=TraceDependenciesConfig)
    span_metrics: SpanMetricsConfig = Field(default_factory=SpanMetricsConfig)
    trace_summaries: TraceSummariesConfig = Field(default_factory=TraceSummariesConfig)
    partial_line_timeout: Duration = 5.0
    """A CRI line whose final fragment has not come within this is indexed as it is (flagged
    ``partial_incomplete``), so its fragments can be committed: a dead writer never stalls a partition."""
    health: HealthConfig = Field(default_factory=HealthConfig)
    shutdown_grace: Duration = 10.0
    """On stop (and on revoke) in-flight bulks get this long to finish before they are abandoned."""
    log_level: str = "info"
    """Level of the JSON log lines on stderr."""

    @model_validator(mode="after")
    def _field_mapping_valid(self) -> ConsumerConfig:
        self.fields.build()  # raises ValueError naming the unknown short field and the valid ones
        return self

    def with_overrides(self, **overrides: Any) -> ConsumerConfig:
        """A copy with dotted keys replaced (``{"kafka.bootstrap": "h:9092"}``); ``None`` values are skipped.

        Raises :class:`ConfigError` (source ``command line``) when a value is invalid.
        """
        data = self.model_dump()
        for dotted, value in overrides.items():
            if value is None:
                continue
            *parents, leaf = dotted.split(".")
            node = data
            for p in parents:
                node = node[p]
            node[leaf] = value
        try:
            return ConsumerConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError("command line", format_validation_error(exc)) from None


def load_consumer_config(path: str | Path | None) -> ConsumerConfig:
    """Read ``path`` (or the defaults when None); raises :class:`logpipe.core.config_base.ConfigError`."""
    return load_model(ConsumerConfig, path)
