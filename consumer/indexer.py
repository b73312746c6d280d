"""Delivers ``_bulk`` requests to the bulk endpoint and checks every item, retrying until each is settled.

:meth:`Indexer.deliver` is the one place a document's fate is decided: accepted items are handed to
``on_indexed``; items Elasticsearch refuses for good (mapping errors) to ``on_rejected`` with the
error, for the dead-letter topic; items answered 429/5xx, and whole requests that failed (node
down, timeout, cluster red), are sent again after a jittered exponential backoff — until they
succeed or the call is cancelled (then they stay unresolved and Kafka redelivers them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from consumer.bulk import BulkRequest, build_request
from consumer.bulk_status import bulk_item_outcomes
from consumer.config import BulkConfig
from consumer.ports import BulkEndpoint, BulkHttpError, BulkUnreachable, Clock
from consumer.retry import backoff_seconds
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


class Indexer:
    """Sends bulk requests; tracks whether Elasticsearch is available (fetching pauses while not)."""

    def __init__(
        self,
        endpoint: BulkEndpoint,
        cfg: BulkConfig,
        on_indexed: Callable[[list[Work]], None],
        on_rejected: Callable[[Work], None],
        clock: Clock,
    ) -> None:
        self.endpoint = endpoint
        self.cfg = cfg
        self._clock = clock
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

    async def _post(self, req: BulkRequest) -> Mapping[str, Any]:
        started = self._clock.monotonic()
        body = await self.endpoint.bulk(req.body())
        BulkCompleted(actions=len(req), body_bytes=req.nbytes, seconds=self._clock.monotonic() - started).emit()
        return body

    async def deliver(self, req: BulkRequest) -> None:
        """Index every item of ``req``; returns when each one was indexed or handed to ``on_rejected``."""
        attempt = 0
        pending: BulkRequest | None = req
        while pending is not None and pending.items:
            retry: list[Work] = []
            try:
                body = await self._post(pending)
            except BulkHttpError as exc:
                if exc.status == 413:  # body over http.max_content_length: split, or refuse one huge doc
                    await self._split_too_large(pending)
                    return
                retry = pending.items
                self._whole_request_failed(pending, str(exc))
            except BulkUnreachable as exc:  # connection refused/reset, timeout
                retry = pending.items
                self._whole_request_failed(pending, str(exc))
            else:
                retry = self._settle(pending, body)
            if not retry:
                return
            attempt += 1
            delay = backoff_seconds(attempt, self.cfg.retry_initial, self.cfg.retry_max)
            BulkRetried(items=len(retry), attempt=attempt, backoff_s=round(delay, 3)).emit()
            self.retried_items += len(retry)
            await self._clock.sleep(delay)
            pending = build_request(retry)

    def _whole_request_failed(self, req: BulkRequest, error: str) -> None:
        BulkFailed(actions=len(req), error=error[:500]).emit()
        self._set_available(False, error[:500])

    def _settle(self, req: BulkRequest, body: Mapping[str, Any]) -> list[Work]:
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
