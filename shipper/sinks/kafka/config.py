"""Configuration of the Kafka sink (the ``kafka:`` section of the shipper config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from logpipe.core.durations import Duration
from logpipe.core.kafka_security import KafkaSecurity


class KafkaSinkConfig(KafkaSecurity):
    """Where and how lines are produced. ``acks=all`` and idempotence are fixed: they are the contract.

    The security keys (``security_protocol``, ``sasl_*``, ``ssl_*``) are the consumer's too (docs/SECURITY.md)."""

    bootstrap: str = "127.0.0.1:9092"
    """Bootstrap servers, ``host:port[,host:port...]``."""
    client_id: str = "logpipe-shipper"
    """Client id shown in broker logs and quotas."""
    compression: Literal["lz4", "zstd", "gzip", "none"] = "zstd"
    """Compression of record batches. zstd by default: about twice lz4's ratio on JSON lines with their
    headers, so fewer bytes for the socket and the broker's disk."""
    compression_level: int | None = None
    """Not supported: the client's public API compresses at its codec's default level (zstd 3); setting
    it is refused at start-up rather than ignored."""
    batch_max_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)
    """Largest record batch per partition (producer ``max_batch_size``); a larger line is dead-lettered."""
    max_request_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)
    """Largest produce request; keep it at or below the broker's ``message.max.bytes``."""
    linger: Duration = 0.005
    """How long the producer waits to fill a batch, e.g. ``5ms``."""
    request_timeout: Duration = 15.0
    """How long one produce request may take before the batch counts as failed and is sent again, e.g. ``15s``."""
    topics: dict[str, str] = Field(default_factory=dict)
    """Topic per log type for lines whose rule names none, e.g. ``{access: web-access}``;
    unset types go to ``logpipe-<type>``."""
    dead_letter_topic: str = "logpipe-deadletter"
    """Topic of dead-lettered lines (over-long, or refused by the broker); the reason is in ``lp.flags``."""
    create_topics: bool = True
    """Create a missing topic on first use (``partitions`` partitions, replication 1: for local runs
    and tests; production clusters usually pre-create topics and set this to false)."""
    partitions: int = Field(default=3, ge=1)
    """Partitions of topics created by ``create_topics``."""

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_ok(cls, v: str) -> str:
        for part in v.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"invalid bootstrap {v!r} — fix: use host:port, e.g. 127.0.0.1:9092")
        return v

    @field_validator("compression_level")
    @classmethod
    def _no_level(cls, v: int | None) -> int | None:
        if v is not None:
            raise ValueError("kafka.compression_level is not supported by the Kafka client (it compresses at "
                             "the codec's default level) — fix: remove kafka.compression_level")
        return v

    def topic_for(self, log_type: str) -> str:
        """The default topic of a log type."""
        return self.topics.get(log_type) or f"logpipe-{log_type}"
