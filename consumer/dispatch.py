"""Where a work goes once it is built: the alert sink, a bulk request, or the dead-letter sink — and back.

:class:`Dispatch` shows every document to the alert sink, adds it to the open ``_bulk`` request
(``consumer/bulk.py``), and keeps up to ``bulk.concurrency`` requests in flight through the indexer
(``consumer/indexer.py``: retries and item outcomes). What cannot be indexed goes to the dead-letter
sink, tried again with backoff until it is acknowledged. Only then — indexed, or dead-lettered — is
a work resolved: its offsets handed to :class:`consumer.offsets.PartitionOffsets` and its bytes freed
(``consumer/flow.py``). Nothing else resolves work. An indexed span (``log_type`` ``trace``) has one
more step in its finalizer when a link sink is given: its link record (``consumer/dependencies/``)
must be acknowledged by the links topic first, or a crash after the commit would lose it. Every
span Elasticsearch accepted is counted once in the span metrics (``consumer/spanmetrics/``), here.

A request task that raises anything its retries do not handle (a bug, an unexpected client error)
would leave its works unresolved for ever — commits stuck behind them in a live process. So the
first such failure is kept in :attr:`Dispatch.failure` and the consume loop raises it
(:class:`DispatchFailed`): the supervisor then makes the process commit what is resolved and exit 1.
A request that never returns at all is seen by :attr:`Dispatch.heartbeat` (``delivery``): it turns
at every answer — accepted, refused or failed, so an outage keeps it turning — and ``/healthz``
fails when work is in flight and nothing answered for ``health.delivery_stall_after``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from consumer.bulk import BulkBatcher, BulkRequest
from consumer.config import BulkConfig
from consumer.dependencies.link import link_from_document
from consumer.dependencies.telemetry import LinkProduceFailed
from consumer.flow import Flow
from consumer.indexer import Indexer
from consumer.offsets import PartitionOffsets
from consumer.ports import AlertSink, BulkEndpoint, Clock, DeadLetterSink, LinkSink
from consumer.retry import backoff_seconds
from consumer.spanmetrics.store import SpanMetrics
from consumer.telemetry import AlertObserveFailed, DeadLetterFailed, RecordDeadLettered, log
from consumer.work import Work
from logpipe.core.supervisor import Heartbeat


class DispatchFailed(Exception):
    """A bulk request, dead letter or link send ended with an unexpected error; its works stay unresolved."""


class _Answered:
    """The ``_bulk`` endpoint, beating ``hb`` whenever a request comes back (with a body or an error)."""

    def __init__(self, endpoint: BulkEndpoint, hb: Heartbeat) -> None:
        self._endpoint = endpoint
        self._hb = hb

    async def bulk(self, body: bytes) -> Mapping[str, Any]:
        try:
            return await self._endpoint.bulk(body)
        finally:
            self._hb.beat()


class Dispatch:
    """Bulk requests and dead letters in flight, and the resolution of what they finish."""

    def __init__(
        self,
        cfg: BulkConfig,
        endpoint: BulkEndpoint,
        dead_letters: DeadLetterSink,
        alerts: AlertSink | None,
        offsets: PartitionOffsets,
        flow: Flow,
        clock: Clock,
        on_resolved: Callable[[], None],
        links: LinkSink | None = None,
        peer_service_tag: str = "",
        span_metrics: SpanMetrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.batcher = BulkBatcher(cfg.max_bytes, cfg.max_actions, clock.monotonic)
        self._idle = asyncio.Event()
        self._idle.set()
        self.heartbeat = Heartbeat("delivery", clock.monotonic, idle=self._idle.is_set)
        self.indexer = Indexer(_Answered(endpoint, self.heartbeat), cfg, self._indexed, self.dead_letter, clock)
        self._dead_letters = dead_letters
        self._alerts = alerts
        self._offsets = offsets
        self._flow = flow
        self._clock = clock
        self._on_resolved = on_resolved
        self._links = links
        self._peer_tag = peer_service_tag
        self._span_metrics = span_metrics
        self._ready: deque[BulkRequest] = deque()
        self._bulk_tasks: set[asyncio.Task[None]] = set()
        self._dlq_tasks: set[asyncio.Task[None]] = set()
        self._link_tasks: set[asyncio.Task[None]] = set()
        self.failure: DispatchFailed | None = None
        """The first unexpected failure of a task in flight (the loop raises it)."""

    # --- in ------------------------------------------------------------------------------

    def index(self, work: Work) -> None:
        """Show the document to the alert rules and add it to the open bulk request."""
        # Jaeger's service/operation documents are bookkeeping of the span index, not events: no rule sees them
        if self._alerts is not None and work.log_type != "trace-service":
            try:
                doc = work.document()
                assert doc is not None
                self._alerts.observe(doc)
            except Exception as exc:  # alerts must never stop indexing
                AlertObserveFailed(error=repr(exc)[:300]).emit()
        closed = self.batcher.add(work)  # sets work.size
        self._flow.hold(work)
        if closed is not None:
            self._send(closed)

    def dead_letter(self, work: Work) -> None:
        """Send ``work`` (``reason`` and ``stage`` set) to the dead-letter sink; resolved once acknowledged."""
        if not work.size:
            work.size = len(work.raw)
            self._flow.hold(work)
        self._start(self._dlq_tasks, self._send_dead_letter(work))

    def flush(self) -> None:
        """Send the open bulk request now."""
        self._send(self.batcher.take())

    def flush_if_due(self, interval: float) -> None:
        if self.batcher.age() >= interval:
            self.flush()

    # --- out -----------------------------------------------------------------------------

    def _send(self, req: BulkRequest | None) -> None:
        if req is None or not req.items:
            return
        self._ready.append(req)
        self._start_ready()

    def _start_ready(self) -> None:
        while self._ready and len(self._bulk_tasks) < self.cfg.concurrency:
            self._start(self._bulk_tasks, self.indexer.deliver(self._ready.popleft()))

    def _start(self, tasks: set[asyncio.Task[None]], coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        if self._idle.is_set():
            self.heartbeat.beat()  # the wait for an answer starts now, not at the last answer before idling
        self._idle.clear()
        task.add_done_callback(lambda t: self._done(tasks, t))

    def _done(self, tasks: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            kind = "bulk" if tasks is self._bulk_tasks else "dead_letter" if tasks is self._dlq_tasks else "links"
            log.error("DispatchTaskFailed", extra={"fields": {"task": kind, "error": repr(exc)[:500]}})
            if self.failure is None:
                self.failure = DispatchFailed(f"{kind} task failed: {exc!r}"[:500])
                self.failure.__cause__ = exc
        if tasks is self._bulk_tasks:
            self._start_ready()
        if not (self._bulk_tasks or self._dlq_tasks or self._link_tasks or self._ready):
            self._idle.set()

    def _indexed(self, items: list[Work]) -> None:
        if self._span_metrics is not None:
            try:
                self._span_metrics.observe_all(w.document() for w in items if w.log_type == "trace")
            except Exception as exc:  # metrics must never stop indexing
                log.error("SpanMetricsFailed", extra={"fields": {"error": repr(exc)[:300]}})
        if self._links is not None and any(w.log_type == "trace" for w in items):
            spans = [w for w in items if w.log_type == "trace"]
            self._start(self._link_tasks, self._send_links(spans))
            items = [w for w in items if w.log_type != "trace"]
        self._offsets.resolve_all(items)
        self._flow.free_all(items)
        self._on_resolved()

    async def _send_links(self, spans: list[Work]) -> None:
        """The indexed spans' finalizer: their link records acknowledged, then the spans resolved."""
        assert self._links is not None
        links = [link for w in spans if (doc := w.document()) and (link := link_from_document(doc, self._peer_tag))]
        attempt = 0
        while links:
            try:
                await self._links.send(links)
                break
            except Exception as exc:  # never skipped: the spans stay unresolved until their links are sent
                self.heartbeat.beat()  # an answer, if a failing one
                LinkProduceFailed(count=len(links), error=repr(exc)[:300]).emit()
                attempt += 1
                await self._clock.sleep(backoff_seconds(attempt, self.cfg.retry_initial, self.cfg.retry_max))
        self.heartbeat.beat()
        self._offsets.resolve_all(spans)
        self._flow.free_all(spans)
        self._on_resolved()

    async def _send_dead_letter(self, work: Work) -> None:
        attempt = 0
        while True:
            try:
                await self._dead_letters.send(work)
                break
            except Exception as exc:  # never skipped: the record stays unresolved until it is sent
                self.heartbeat.beat()  # an answer, if a failing one
                DeadLetterFailed(
                    topic=work.topic, partition=work.partition, offset=work.kafka_offset, error=repr(exc)[:300]
                ).emit()
                attempt += 1
                await self._clock.sleep(backoff_seconds(attempt, self.cfg.retry_initial, self.cfg.retry_max))
        self.heartbeat.beat()
        RecordDeadLettered(
            stage=work.stage, topic=work.topic, partition=work.partition, offset=work.kafka_offset,
            reason=work.reason[:500],
        ).emit()
        self._offsets.resolve(work)
        self._flow.free(work)
        self._on_resolved()

    # --- stop ----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    async def drain(self, grace: float) -> bool:
        """Wait up to ``grace`` seconds for every request and dead letter in flight; True if all finished."""
        return await self._clock.wait(self._idle, grace)

    async def cancel(self) -> None:
        """Cancel what is still in flight (it stays unresolved: redelivered after a restart)."""
        self._ready.clear()
        tasks = [*self._bulk_tasks, *self._dlq_tasks, *self._link_tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
