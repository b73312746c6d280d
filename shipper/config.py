"""The shipper's configuration (``logpipe ship --config FILE``): every section, with defaults for a local run.

With no file, ``logpipe ship`` reads the kubelet's roots and ships to ``127.0.0.1:9092``; command-line
flags override the file (see ``logpipe/cli/ship.py``). Sections::

    node_name: node-1
    pods_root: /var/lib/kubelet/pods
    logs_root: /var/log/pods
    registry: {path: /var/lib/logpipe/registry.json, flush_interval: 1s}
    sink: {type: kafka}                                    # or {type: sls, endpoint: ..., project: ...}
    kafka: {bootstrap: "kafka:9092", compression: lz4}     # shipper/sinks/kafka/config.py
    rules: {...}                                           # shipper/rules.py
    discovery: {...}                                       # shipper/discovery.py
    pod_metadata: {...}                                    # shipper/pod_meta.py
    identity: {strategy: fingerprint, fingerprint_bytes: 1024}
    tail: {max_line_bytes: 256KiB, long_lines: truncate, partial_line_timeout: 5s, ...}
    pipeline: {batch_max_lines: 4096, max_bytes_in_flight: 16777216, ...}
    http: {host: 0.0.0.0, port: 9102}
    health: {stall_after: 60s, delivery_stall_after: 5m, max_restarts: 5}
    shutdown_grace: 10s
"""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from logpipe.core.config_base import StrictModel
from logpipe.core.durations import Duration
from shipper.discovery import DiscoveryConfig
from shipper.identity import StrategyName
from shipper.pipeline import PipelineLimits
from shipper.pod_meta import PodMetaConfig
from shipper.rules import RulesConfig
from shipper.sinks.kafka.config import KafkaSinkConfig
from shipper.sinks.sls.config import SlsSinkConfig
from shipper.streams import StreamLimits
from shipper.tailer import LongLines, ReadLimits


def _default_node() -> str:
    return os.environ.get("NODE_NAME") or socket.gethostname()


class RegistryConfig(StrictModel):
    """Where checkpoints are kept."""

    path: str = "state/shipper/registry.json"
    """The registry file (its directory must be on a volume that survives the pod, in a DaemonSet)."""
    flush_interval: Duration = 1.0
    """How often a changed registry is written (and always on shutdown)."""


class IdentityConfig(StrictModel):
    """How a file is recognised as a stream (see ``shipper/identity.py``)."""

    strategy: StrategyName = "fingerprint"
    """fingerprint (first bytes + directory; survives rename, copytruncate, inode reuse) or device_inode."""
    fingerprint_bytes: int = Field(default=1024, ge=16, le=65536)
    """How many first bytes the fingerprint covers."""


class TailConfig(StrictModel):
    """How files are read, and how many stay open."""

    max_line_bytes: int = Field(default=256 * 1024, ge=64)
    """Longest line shipped whole; longer ones are handled per ``long_lines``."""
    long_lines: LongLines = "truncate"
    """truncate: ship the first max_line_bytes, flagged ``truncated``; dead_letter: to the dead-letter topic."""
    partial_line_timeout: Duration = 5.0
    """How long a last line without its newline waits before it is shipped as is (flagged ``partial``)."""
    read_chunk_bytes: int = Field(default=512 * 1024, ge=4096)
    """Bytes read from one file at a time."""
    poll_interval: Duration = 0.25
    """How often open files are checked for new bytes, truncation and deletion."""
    read_timeout: Duration = Field(default=2.0, gt=0)
    """A read from one file (in a worker thread) not done in this time is left to finish in the
    background: that file waits (event ``ReadStalled``), the other files go on."""
    max_open_files: int = Field(default=1024, ge=1)
    """Most files held open; past it, the longest-idle files are closed (and reopened when they change)."""
    close_inactive: Duration | None = None
    """Also close a fully read file unchanged for this long (it is reopened when it grows). Off by
    default: a closed file is only looked at every 2 s, so one appended to and deleted within that
    time (a pod's last line as it shuts down) would lose the append; an open fd sees it."""
    detached_ttl: Duration = 300.0
    """How long a truncated stream waits for its copy (copytruncate's ``.1``) to appear."""
    forget_after: Duration = 600.0
    """Forget checkpoints whose file has not been found again for this long."""

    def read_limits(self) -> ReadLimits:
        return ReadLimits(
            max_line_bytes=self.max_line_bytes,
            partial_line_timeout=self.partial_line_timeout,
            long_lines=self.long_lines,
            read_chunk_bytes=self.read_chunk_bytes,
        )

    def stream_limits(self) -> StreamLimits:
        return StreamLimits(
            max_open_files=self.max_open_files,
            close_inactive=self.close_inactive,
            detached_ttl=self.detached_ttl,
            forget_after=self.forget_after,
            partial_line_timeout=self.partial_line_timeout,
        )


class PipelineConfig(StrictModel):
    """Batches and bounds between reading and the sink."""

    batch_max_lines: int = Field(default=4096, ge=1)
    """Most lines per batch handed to the sink."""
    batch_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Most bytes (of line values) per batch."""
    linger: Duration = 0.05
    """How long a batch waits to fill before it is sent."""
    max_bytes_in_flight: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)
    """Bytes read but not yet acknowledged; reading pauses above it (bounded memory, no drops)."""
    max_batches_in_flight: int = Field(default=8, ge=1)
    """Batches being sent at once."""
    retry_initial: Duration = 0.2
    """First wait before a failed batch is sent again (doubling up to retry_max, forever)."""
    retry_max: Duration = 10.0
    """Longest wait between two attempts."""
    dead_letter_max_bytes: int = Field(default=16 * 1024, ge=64)
    """A rejected line is dead-lettered cut to this many bytes."""

    def limits(self) -> PipelineLimits:
        return PipelineLimits(
            batch_max_lines=self.batch_max_lines,
            batch_max_bytes=self.batch_max_bytes,
            linger=self.linger,
            max_bytes_in_flight=self.max_bytes_in_flight,
            max_batches_in_flight=self.max_batches_in_flight,
            retry_initial=self.retry_initial,
            retry_max=self.retry_max,
            dead_letter_max_bytes=self.dead_letter_max_bytes,
        )


class HttpConfig(StrictModel):
    """The /healthz, /readyz and /metrics endpoint."""

    host: str = "0.0.0.0"
    """Address to listen on."""
    port: int = Field(default=9102, ge=0, le=65535)
    """Port; 0 picks a free one (logged at start)."""


class HealthConfig(StrictModel):
    """What ``/healthz`` calls stuck, and when a failing task ends the process (``logpipe/core/supervisor.py``)."""

    stall_after: Duration = Field(default=60.0, gt=0)
    """/healthz fails when the read loop, discovery or the registry writer has not turned for this long
    (waiting for the sink's capacity during an outage does not count: that is not a reason to restart)."""
    delivery_stall_after: Duration = Field(default=300.0, gt=0)
    """/healthz fails when batches are in flight and no send has returned, delivered or failed, for this
    long (a sink outage keeps returning failures, so it does not trip this; a hung client does)."""
    max_restarts: int = Field(default=5, ge=0)
    """A task that fails more often than this within restart_window makes the shipper flush and exit 1."""
    restart_window: Duration = Field(default=300.0, gt=0)
    """The window max_restarts counts in."""


class KafkaSinkChoice(StrictModel):
    """Ship to Kafka, configured by the ``kafka:`` section (the default sink)."""

    type: Literal["kafka"] = "kafka"
    """Selects the Kafka sink; its settings stay in ``kafka:`` (``--kafka-bootstrap`` overrides it)."""

    @model_validator(mode="before")
    @classmethod
    def _settings_elsewhere(cls, data: Any) -> Any:
        # The Kafka settings keep their one home in ``kafka:`` (existing files and the CLI flag);
        # written here they would be a second, conflicting place.
        if isinstance(data, dict):
            extra = sorted(k for k in data if k != "type")
            if extra:
                raise ValueError(
                    f"sink {{type: kafka}} takes no settings ({', '.join(map(str, extra))}) "
                    "— fix: move them to the kafka: section"
                )
        return data


SinkChoice = Annotated[KafkaSinkChoice | SlsSinkConfig, Field(discriminator="type")]


class ShipperConfig(StrictModel):
    """The node agent: what to read, where to send it, where to keep checkpoints."""

    node_name: str = Field(default_factory=_default_node)
    """This node's name on every line (default: $NODE_NAME, else the host name)."""
    pods_root: str = "/var/lib/kubelet/pods"
    """The kubelet's pods directory (EmptyDir volumes beneath it)."""
    logs_root: str = "/var/log/pods"
    """The kubelet's container log directory (CRI stdout files)."""
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    sink: SinkChoice = Field(default_factory=KafkaSinkChoice)
    """Where lines go: ``{type: kafka}`` (the ``kafka:`` section) or ``{type: sls, endpoint: ..., project: ...}``."""
    kafka: KafkaSinkConfig = Field(default_factory=KafkaSinkConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    pod_metadata: PodMetaConfig = Field(default_factory=PodMetaConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    tail: TailConfig = Field(default_factory=TailConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    shutdown_grace: Duration = 10.0
    """On SIGTERM: how long in-flight batches may take to be acknowledged before the registry is written."""
    log_level: str = "info"
    """Level of the shipper's own JSON logs: debug, info, warning, error."""

    @field_validator("sink", mode="before")
    @classmethod
    def _sink_type_ok(cls, v: Any) -> Any:
        if isinstance(v, dict) and v.get("type") not in ("kafka", "sls"):
            got = f"is {v['type']!r}" if "type" in v else "is missing"
            raise ValueError(f"sink.type {got} — fix: write sink: {{type: kafka}} or sink: {{type: sls, ...}}")
        return v

    @model_validator(mode="after")
    def _check(self) -> ShipperConfig:
        if self.pipeline.batch_max_bytes > self.pipeline.max_bytes_in_flight:
            raise ValueError(
                "pipeline.batch_max_bytes is larger than pipeline.max_bytes_in_flight "
                "— fix: raise max_bytes_in_flight or lower batch_max_bytes"
            )
        if isinstance(self.sink, SlsSinkConfig):
            if "kafka" in self.model_fields_set and self.kafka != KafkaSinkConfig():
                raise ValueError(
                    "kafka: is set (or --kafka-bootstrap given) but sink.type is sls, so it would be "
                    "ignored — fix: remove the kafka: section, or select sink: {type: kafka}"
                )
            if self.tail.max_line_bytes + 1024 > self.sink.max_group_bytes:
                raise ValueError(
                    f"tail.max_line_bytes ({self.tail.max_line_bytes}) does not fit in one SLS LogGroup "
                    f"(sink.max_group_bytes {self.sink.max_group_bytes}) — fix: lower max_line_bytes "
                    "or raise sink.max_group_bytes (at most 9 MiB)"
                )
        elif self.tail.max_line_bytes + 1024 > self.kafka.max_request_bytes:
            raise ValueError(
                f"tail.max_line_bytes ({self.tail.max_line_bytes}) does not fit in one Kafka request "
                f"(kafka.max_request_bytes {self.kafka.max_request_bytes}) — fix: lower max_line_bytes"
            )
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError(f"log_level: {self.log_level!r} — fix: use debug, info, warning or error")
        return self
