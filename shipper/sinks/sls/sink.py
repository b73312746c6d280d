"""The SLS sink: batches of lines -> one PutLogs (LogGroup) per file and logstore, at most
``max_in_flight`` requests at once, each in a worker thread (the SDK is synchronous).

A LogGroup holds the lines of one file (its pod metadata is the same for all of them):

* ``__topic__``: the Component (configurable), ``__source__``: the node;
* tags (shown as ``__tag__:<key>``): ``namespace``, ``pod``, ``pod_uid``, ``container``,
  ``component``, ``node``, ``log_type``, ``path``, ``file_id``, and ``format`` when the rule chose
  an access format;
* per log: ``__time__`` = the shipper's read time, contents ``content`` (the line's bytes, unchanged),
  ``offset`` (its byte offset in the file: with ``file_id`` the line's identity) and ``flags`` if any.

Dead letters: the pipeline resends a REJECTED batch line by line, and a line SLS still refuses comes
back flagged ``deadletter,reason:rejected`` and cut to ``pipeline.dead_letter_max_bytes``; lines
flagged ``deadletter`` (those, and over-long lines with ``tail.long_lines: dead_letter``) go to
``dead_letter_logstore`` with the file's tags, like the Kafka sink's dead-letter topic. Should SLS
refuse even that, the pipeline logs and counts it (``LineDeadLettered``) and moves on.

A batch is DELIVERED when every LogGroup got HTTP 200. Statuses (see :func:`status_of`): throttling,
5xx, timeouts and no answer are ERRORED (resent); authentication and missing project/logstore are
ERRORED too, because they are configuration faults that a fix or a key rotation cures, and
dead-lettering would throw away every line shipped meanwhile; other 4xx (malformed, too large)
are REJECTED (dead-lettered). Sending a batch again after ERRORED may repeat LogGroups that were
already accepted (at-least-once: SLS has no idempotent PutLogs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRecord, SourceMeta
from logpipe.core.sls_credentials import credentials_provider
from shipper.sinks.sls.config import SlsSinkConfig
from shipper.sinks.sls.service import LogEntry, LogGroupRequest, SlsRequestError, SlsService

log = logging.getLogger("logpipe.shipper.sls")

THROTTLE_CODES = frozenset(
    {"WriteQuotaExceed", "ShardWriteQuotaExceed", "ProjectQuotaExceed", "ExceedQPSLimit", "ServerBusy"}
)
# Codes that a retry (or an operator's fix of the configuration) cures; SLS sends some of them with
# HTTP 403 (WriteQuotaExceed), so codes are checked before the status.
RETRYABLE_CODES = THROTTLE_CODES | frozenset(
    {
        "InternalServerError",
        "RequestTimeout",
        "LogRequestError",  # no HTTP answer (connection refused or reset, timeout)
        "Unauthorized",
        "SignatureNotMatch",
        "InvalidAccessKeyId",
        "InvalidAccessKeyId.NotFound",
        "SecurityToken.Expired",
        "SecurityTokenExpired",
        "ProjectNotExist",
        "LogStoreNotExist",
        "ProjectForbidden",
    }
)

# Refusals caused by the data itself (checked first: the SDK raises InvalidLogSize before sending).
DATA_CODES = frozenset({"InvalidLogSize", "PostBodyTooLarge", "PostBodyInvalid", "InvalidContentMD5"})

ServiceFactory = Callable[[SlsSinkConfig], SlsService]


def status_of(error: SlsRequestError) -> BatchStatus:
    """ERRORED for what a retry or a configuration fix cures, REJECTED for what the data causes."""
    if error.code in DATA_CODES:
        return BatchStatus.REJECTED
    if error.code in RETRYABLE_CODES or error.http_status == 0 or error.http_status == 429:
        return BatchStatus.ERRORED
    if error.http_status >= 500:
        return BatchStatus.ERRORED
    return BatchStatus.REJECTED


def _tags(m: SourceMeta) -> tuple[tuple[str, str], ...]:
    tags = (
        ("namespace", m.namespace),
        ("pod", m.pod),
        ("pod_uid", m.pod_uid),
        ("container", m.container),
        ("component", m.component),
        ("node", m.node),
        ("log_type", m.log_type),
        ("path", m.path),
        ("file_id", m.file_id),
    )
    return (*tags, ("format", m.access_format)) if m.access_format else tags


def _entry(r: LineRecord) -> LogEntry:
    contents = [("content", r.value), ("offset", str(r.offset).encode())]
    if r.flags:
        contents.append(("flags", ",".join(r.flags).encode()))
    return LogEntry(r.read_ts_ms // 1000, (r.read_ts_ms % 1000) * 1_000_000, contents)


def _default_service(cfg: SlsSinkConfig) -> SlsService:
    return SlsService(
        cfg.endpoint,
        credentials_provider(cfg),  # asked before each request: rotated files are used at once
        compression=cfg.compression,
        timeout=cfg.request_timeout,
    )


class SlsSink:
    """Implements ``shipper.sinks.base.Sink`` on the SLS PutLogs API."""

    name = "sls"

    def __init__(self, cfg: SlsSinkConfig, service_factory: ServiceFactory = _default_service) -> None:
        self.cfg = cfg
        self._factory = service_factory
        self._pool: asyncio.Queue[SlsService] | None = None
        self._services: list[SlsService] = []
        self._connected = False

    async def start(self) -> None:
        """Create the clients and make one authenticated request (ListLogStores); raises
        :class:`SlsRequestError` when SLS does not answer at all (the caller retries). A refusal is
        only logged (``connected`` stays false): a write-only key may not list logstores, and a wrong
        key shows as ERRORED batches until it is fixed."""
        self._services = [self._factory(self.cfg) for _ in range(self.cfg.max_in_flight)]
        pool: asyncio.Queue[SlsService] = asyncio.Queue()
        for s in self._services:
            pool.put_nowait(s)
        self._pool = pool
        try:
            await asyncio.to_thread(self._services[0].probe, self.cfg.project)
        except SlsRequestError as exc:
            self._connected = False
            if exc.http_status == 0:
                raise
            log.warning("SLS %s refused the start-up probe (ListLogStores): %s", self.cfg.endpoint, exc)
            return
        self._connected = True

    @property
    def connected(self) -> bool:
        return self._connected

    def _topic(self, m: SourceMeta) -> str:
        return {"component": m.component, "log_type": m.log_type, "namespace": m.namespace}.get(self.cfg.topic, "")

    def requests_for(self, batch: Sequence[LineRecord]) -> list[LogGroupRequest]:
        """The LogGroups of a batch: per file (its metadata) and logstore, split at the size bounds."""
        by_meta: dict[tuple[SourceMeta, bool], list[LineRecord]] = {}
        for r in batch:
            by_meta.setdefault((r.meta, "deadletter" in r.flags), []).append(r)
        out: list[LogGroupRequest] = []
        max_lines, max_bytes = self.cfg.max_group_lines, self.cfg.max_group_bytes
        for (m, dead), records in by_meta.items():
            logstore = self.cfg.dead_letter_logstore if dead else self.cfg.logstore_for(m.log_type, m.namespace)
            tags = _tags(m)
            chunk: list[LogEntry] = []
            size = 0
            for r in records:
                if chunk and (len(chunk) >= max_lines or size + len(r.value) > max_bytes):
                    out.append(LogGroupRequest(self.cfg.project, logstore, self._topic(m), m.node, tags, chunk))
                    chunk, size = [], 0
                chunk.append(_entry(r))
                size += len(r.value) + 64
            if chunk:
                out.append(LogGroupRequest(self.cfg.project, logstore, self._topic(m), m.node, tags, chunk))
        return out

    async def send(self, batch: Sequence[LineRecord]) -> BatchStatus:
        """Deliver ``batch``: DELIVERED once SLS answered 200 to every LogGroup of it; ERRORED or
        REJECTED per :func:`status_of` otherwise (any error wins, then any rejection). Cancelling
        leaves the batch unacknowledged; a request already in its thread still completes."""
        if self._pool is None:
            raise RuntimeError("SlsSink.send before start")
        requests = self.requests_for(batch)
        if not requests:
            return BatchStatus.DELIVERED
        statuses = await asyncio.gather(*(self._put(req) for req in requests))
        status = BatchStatus.DELIVERED
        for s in statuses:
            status = status.merge(s)
        return status

    async def _put(self, req: LogGroupRequest) -> BatchStatus:
        assert self._pool is not None
        service = await self._pool.get()
        try:
            await asyncio.to_thread(service.put, req)
        except SlsRequestError as exc:
            status = status_of(exc)
            # Throttled (4xx) or refused data: SLS answered and works, so the sink is still connected.
            throttled = exc.code in THROTTLE_CODES and 0 < exc.http_status < 500
            self._connected = status is BatchStatus.REJECTED or throttled
            log.warning(
                "SLS PutLogs %s/%s (%d lines) %s: %s",
                req.project,
                req.logstore,
                len(req.logs),
                status.value,
                exc,
            )
            return status
        finally:
            self._pool.put_nowait(service)
        self._connected = True
        return BatchStatus.DELIVERED

    async def close(self) -> None:
        """Wait for the requests in flight (bounded by the caller's grace period) and close the clients."""
        if self._pool is not None:
            for _ in self._services:
                await self._pool.get()  # every client back in the pool: nothing in flight
            self._pool = None
        for s in self._services:
            s.close()
        self._services = []
        self._connected = False
