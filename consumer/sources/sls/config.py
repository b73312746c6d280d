"""Configuration of the SLS source (``source: {type: sls, ...}`` in the consumer config)."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, field_validator

from logpipe.core.durations import Duration
from logpipe.core.sls_credentials import SlsCredentials


def _default_consumer_name() -> str:
    # A Deployment's pod name is unique in the group and stable across container restarts.
    return os.environ.get("POD_NAME") or socket.gethostname()


class SlsSourceConfig(SlsCredentials):
    """Which logstores to read, as which consumer group member, and how fast.

    For a real SLS project: ``endpoint`` is the region's host (``cn-hangzhou.log.aliyuncs.com``, or
    its ``-intranet`` form inside the region), ``project`` yours, and the credentials an AccessKey or
    STS token allowed to read the logstores, use the consumer group and write the dead-letter
    logstore (see ``examples/consumer-sls.yaml``). Checkpoints advance only over what Elasticsearch
    accepted or what was dead-lettered; replicas share the shards of every logstore.
    """

    type: Literal["sls"] = "sls"
    """Selects this source in the consumer config."""
    endpoint: str = "127.0.0.1"
    """Service endpoint, e.g. ``cn-hangzhou.log.aliyuncs.com`` or ``https://cn-hangzhou.log.aliyuncs.com``
    (the default is the local dev server on port 80 of 127.0.0.1; the SDK cannot address ``ip:port``)."""
    project: str = "logpipe"
    """SLS project."""
    logstores: list[str] = Field(
        default_factory=lambda: ["logpipe-access", "logpipe-app", "logpipe-stdout", "logpipe-trace"], min_length=1
    )
    """Logstores to read (those the shipper's SLS sink writes: ``logpipe-<log_type>``)."""
    consumer_group: str = "logpipe-indexer"
    """The consumer group every replica joins; SLS spreads the logstores' shards over its members."""
    consumer_name: str = Field(default_factory=_default_consumer_name)
    """This member's name, unique in the group (default: the ``POD_NAME`` environment variable, else the host name)."""
    heartbeat_interval: Duration = 3.0
    """How often the member heartbeats (and learns its shards)."""
    timeout: int = Field(default=20, ge=5, le=600)
    """Seconds without a heartbeat after which SLS gives a member's shards to the others."""
    in_order: bool = True
    """Read a split or merged shard's children only after their parent is finished (one hash key's logs in order)."""
    start_from: str = "begin"
    """Where a shard without a checkpoint starts: ``begin``, ``end`` or a unix time."""
    fetch_groups: int = Field(default=100, ge=1, le=1000)
    """Most LogGroups per PullLogs request."""
    max_inflight_pulls: int = Field(default=4, ge=1, le=64)
    """PullLogs requests running at once (each holds one worker thread: the SDK is synchronous)."""
    default_type: Literal["access", "app", "stdout", "trace"] = "app"
    """Log type of logs that do not name one (written by other agents than logpipe's shipper)."""
    request_timeout: Duration = 30.0
    """How long one SLS request may take."""
    dead_letter: Literal["logstore", "kafka"] = "logstore"
    """Where records that cannot be indexed go: ``logstore`` (``dead_letter_logstore`` in this project)
    or ``kafka`` (the ``kafka.dead_letter_topic`` on ``kafka.bootstrap``, for teams that run both)."""
    dead_letter_logstore: str = "logpipe-deadletter"
    """The dead-letter logstore: each log keeps the line's bytes (``content``), its metadata tags, and
    ``reason``, ``stage`` and ``source`` (``<logstore>/<shard>``)."""

    @field_validator("start_from")
    @classmethod
    def _start_ok(cls, v: str) -> str:
        if v not in ("begin", "end") and not v.isdigit():
            raise ValueError(f"start_from {v!r} — fix: use begin, end or a unix time in seconds")
        return v

    @field_validator("endpoint")
    @classmethod
    def _endpoint_ok(cls, v: str) -> str:
        rest = v.split("://", 1)[-1]
        if not rest or "/" in rest.rstrip("/"):
            raise ValueError(f"invalid endpoint {v!r} — fix: a host name, e.g. cn-hangzhou.log.aliyuncs.com")
        return v.rstrip("/")
