"""Delivers ``_bulk`` requests to Elasticsearch and checks every item, retrying until each is settled.

:meth:`Indexer.deliver` is the one place a document's fate is decided: accepted items are handed to
``on_indexed``; items Elasticsearch refuses for good (mapping errors) to ``on_rejected`` with the
error, for the dead-letter topic; items answered 429/5xx, and whole requests that failed (node
down, timeout, cluster red), are sent again after a jittered exponential backoff — until they
succeed or the call is cancelled (then they stay unresolved and Kafka redelivers them).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch.serializer import CompatibilityModeNdjsonSerializer, NdjsonSerializer, OrjsonSerializer

from consumer.bulk import BulkRequest, build_request
from consumer.bulk_status import bulk_item_outcomes
from consumer.config import BulkConfig, ElasticsearchConfig
from consumer.telemetry import (
    BulkCompleted,
    BulkFailed,
    BulkIndexed,
    BulkItemRejected,
    BulkRetried,
    ElasticsearchAvailability,
)
from consumer.work import Work
from logpipe.core.delivery import BatchStatus
from logpipe.core.es_connection import es_client_kwargs

_FILTER = "errors,items.*.status,items.*.error"


class _EncodedNdjson(CompatibilityModeNdjsonSerializer):
    """``_bulk`` bodies are encoded by ``consumer/bulk.py`` already: send the bytes as they are.

    The client's serializer would copy a multi-megabyte body twice into fresh buffers (~1 µs per
    document of copying and page faults, measured with py-spy on the consumer bench)."""

    def dumps(self, data: Any) -> bytes:
        if type(data) is bytes and data.endswith(b"\n"):
            return data
        return super().dumps(data)


def make_client(
    cfg: ElasticsearchConfig, request_timeout: float = 60.0, max_backoff: float = 5.0
) -> AsyncElasticsearch:
    """An async client for ``cfg`` that never retries by itself (the indexer owns retries).

    A failed node is tried again after at most ``max_backoff`` seconds (the transport's default of
    30 s would delay recovery after an Elasticsearch restart).
    """
    kwargs: dict[str, Any] = {
        "request_timeout": request_timeout,
        "max_retries": 0,
        "retry_on_timeout": False,
        "dead_node_backoff_factor": 0.5,
        "max_dead_node_backoff": max_backoff,
        "serializers": {
            OrjsonSerializer.mimetype: OrjsonSerializer(),
            **{m: _EncodedNdjson() for m in (NdjsonSerializer.mimetype, _EncodedNdjson.mimetype)},
        },
        **es_client_kwargs(cfg),
    }
    return AsyncElasticsearch(cfg.urls(), **kwargs)


def backoff_seconds(attempt: int, initial: float, cap: float) -> float:
    """Jittered exponential backoff: ``initial * 2**(attempt-1)`` capped at ``cap``, times 0.5..1."""
    base = min(cap, initial * (2 ** min(max(attempt - 1, 0), 20)))
    return base * random.uniform(0.5, 1.0)


class Indexer:
    """Sends bulk requests; tracks whether Elasticsearch is available (fetching pauses while not)."""

    def __init__(
        self,
        es: AsyncElasticsearch,
        cfg: BulkConfig,
        on_indexed: Callable[[list[Work]], None],
        on_rejected: Callable[[Work], None],
    ) -> None:
        self.es = es
        self.cfg = cfg
        self._on_indexed = on_indexed
        self._on_rejected = on_rejected
        self.available = True
        self.last_error = ""
        self.retried_items = 0  # items sent again so far (also the logpipe_consumer_items_retried metric)

    def _set_available(self, ok: bool, error: str = "") -> None:
        if ok != self.available:
            ElasticsearchAvailability(available=ok, error=error).emit()
        self.available = ok
        self.last_error = error

    async def _post(self, req: BulkRequest) -> dict[str, Any]:
        started = time.monotonic()
        # Pre-encoded NDJSON bytes pass through the client's serializer untouched.
        resp = await self.es.bulk(operations=req.body(), filter_path=_FILTER)  # type: ignore[arg-type]
        BulkCompleted(actions=len(req), body_bytes=req.nbytes, seconds=time.monotonic() - started).emit()
        body = resp.body
        return body if isinstance(body, dict) else {}

    async def deliver(self, req: BulkRequest) -> None:
        """Index every item of ``req``; returns when each one was indexed or handed to ``on_rejected``."""
        attempt = 0
        pending: BulkRequest | None = req
        while pending is not None and pending.items:
            retry: list[Work] = []
            try:
                body = await self._post(pending)
            except ApiError as exc:
                status = exc.meta.status
                if status == 413:  # body over http.max_content_length: split, or refuse one huge doc
                    await self._split_too_large(pending)
                    return
                retry = pending.items
                self._whole_request_failed(pending, f"HTTP {status}: {exc.message}")
            except TransportError as exc:  # connection refused/reset, timeout
                retry = pending.items
                self._whole_request_failed(pending, f"{type(exc).__name__}: {exc.message}")
            else:
                retry = self._settle(pending, body)
            if not retry:
                return
            attempt += 1
            delay = backoff_seconds(attempt, self.cfg.retry_initial, self.cfg.retry_max)
            BulkRetried(items=len(retry), attempt=attempt, backoff_s=round(delay, 3)).emit()
            self.retried_items += len(retry)
            await asyncio.sleep(delay)
            pending = build_request(retry)

    def _whole_request_failed(self, req: BulkRequest, error: str) -> None:
        BulkFailed(actions=len(req), error=error[:500]).emit()
        self._set_available(False, error[:500])

    def _settle(self, req: BulkRequest, body: dict[str, Any]) -> list[Work]:
        """Hand accepted and refused items over; return the ones to retry."""
        if body.get("errors") is False:
            self._indexed(req.items)
            self._set_available(True)
            return []
        outcomes = bulk_item_outcomes(body, len(req.items))
        indexed: list[Work] = []
        retry: list[Work] = []
        for work, out in zip(req.items, outcomes, strict=True):
            if out.status is BatchStatus.DELIVERED:
                indexed.append(work)
            elif out.status is BatchStatus.REJECTED:
                BulkItemRejected(
                    index=work.index,
                    doc_id=work.doc_id,
                    status=out.http_status,
                    error_type=out.error_type,
                    reason=out.reason[:500],
                ).emit()
                work.stage = "index"
                work.reason = (
                    f"elasticsearch refused the document: HTTP {out.http_status} {out.error_type}: {out.reason}"
                )
                self._on_rejected(work)
            else:
                retry.append(work)
        if indexed:
            self._indexed(indexed)
        # Every item failing transiently means the cluster cannot write (red, overloaded): pause fetching.
        self._set_available(len(retry) < len(req.items), "" if len(retry) < len(req.items) else "every item failed")
        return retry

    def _indexed(self, items: list[Work]) -> None:
        for log_type, n in Counter(w.log_type for w in items).items():
            BulkIndexed(log_type=log_type, indexed=n).emit()
        self._on_indexed(items)

    async def _split_too_large(self, req: BulkRequest) -> None:
        if len(req.items) == 1:
            work = req.items[0]
            work.stage = "index"
            work.reason = f"document too large for one _bulk request ({req.nbytes} bytes): HTTP 413"
            self._on_rejected(work)
            return
        half = len(req.items) // 2
        await self.deliver(build_request(req.items[:half]))
        await self.deliver(build_request(req.items[half:]))
