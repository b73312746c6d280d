"""The consume loop: fetch -> ingest -> dispatch -> resolve -> commit, on the interfaces of ``consumer/ports.py``.

:class:`ConsumeLoop` wires the loop's parts and turns the wheel; each step has its own module:

- ``consumer/ingest.py`` — records -> works (parse, native encoding, CRI fragments, multi-document records);
- ``consumer/dispatch.py`` — works -> the alert sink, bulk requests in flight, dead letters; resolution;
- ``consumer/flow.py`` — bytes held, and pausing the source while over the limit or Elasticsearch is down;
- ``consumer/commits.py`` — commit positions (contiguous prefix of resolved records) and rebalances.

The one rule of the design: a source offset is committed only when every record at or before it
is indexed or acknowledged by the dead-letter sink. The loop knows nothing of Kafka or
Elasticsearch: ``consumer/app.py`` hands it the real parts, ``tests/consumer/memory.py`` in-memory ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from consumer.clock import SystemClock
from consumer.commits import Commits
from consumer.config import ConsumerConfig
from consumer.dispatch import Dispatch
from consumer.flow import Flow
from consumer.indexer import Indexer
from consumer.ingest import Ingest, RecordParser
from consumer.offsets import PartitionOffsets
from consumer.ownership import ComponentOwnership
from consumer.ports import AlertSink, BulkEndpoint, Clock, DeadLetterSink, LinkSink, Source
from consumer.retry import until_ok
from consumer.spanmetrics.store import SpanMetrics
from consumer.telemetry import AlertObserveFailed, CommitFailed, set_buffered_bytes, set_partition_lag
from consumer.work import TopicPartitionKey
from logpipe.core.supervisor import Heartbeat
from parsers import LineParser
from parsers.access_encoder import EncodeFn

EXPIRE_EVERY = 1.0  # seconds between checks for CRI lines whose end never came


class ConsumeLoop:
    """One consumer-group member's loop over its source, indexer, dead-letter sink and alert sink."""

    def __init__(
        self,
        cfg: ConsumerConfig,
        source: Source,
        endpoint: BulkEndpoint,
        dead_letters: DeadLetterSink,
        alerts: AlertSink | None = None,
        clock: Clock | None = None,
        *,
        encode: EncodeFn | None = None,
        new_parser: Callable[[], RecordParser] | None = None,
        links: LinkSink | None = None,
        span_metrics: SpanMetrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock: Clock = clock or SystemClock()
        self.source = source
        self.dead_letters = dead_letters
        self.links = links
        self.alerts = alerts
        self.flow = Flow(cfg.bulk.max_buffered_bytes)
        self.commits = Commits(source, self.clock, cfg.kafka.commit_interval, cfg.shutdown_grace, self)
        self.offsets: PartitionOffsets = self.commits.offsets
        self.dispatch = Dispatch(
            cfg.bulk, endpoint, dead_letters, alerts, self.offsets, self.flow, self.clock, self.commits.resolved,
            links, cfg.trace_dependencies.peer_service_tag, span_metrics,
        )
        self.indexer: Indexer = self.dispatch.indexer
        mapping, monotonic = cfg.fields, self.clock.monotonic  # the CRI timeout runs on the loop's clock too
        prefix = cfg.index.prefix  # names the span indices (<prefix>-jaeger-span-YYYY-MM-DD)
        self.ingest = Ingest(
            self.offsets, self.dispatch, cfg.index.prefix, self.clock,
            new_parser or (lambda: LineParser(mapping, clock=monotonic, index_prefix=prefix)),
            self.dispatch.batcher.stamp, encode,
        )
        self.ownership = ComponentOwnership(cfg.kafka.topics, source.partitions_for)
        self.stopping = asyncio.Event()
        # Turns once per wheel turn (fetch returns within 0.1 s even while paused): a hung fetch, bulk
        # hand-off or commit stops it; an Elasticsearch outage does not.
        self.heartbeat = Heartbeat("consume", monotonic)
        self.started = False
        self._alerts_started = False

    @property
    def buffered_bytes(self) -> int:
        return self.flow.buffered_bytes

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> bool:
        """Connect the dead-letter sink, start the alert sink, join the group (each retried until it
        works); False if a stop was requested first."""
        bulk = self.cfg.bulk
        if not await until_ok(
            "DeadLetterTopicUnreachable", self.dead_letters.start, self.stopping, self.clock,
            bulk.retry_initial, bulk.retry_max,
        ):
            return False
        if self.links is not None and not await until_ok(
            "LinksTopicUnreachable", self.links.start, self.stopping, self.clock, bulk.retry_initial, bulk.retry_max,
        ):
            return False
        if self.alerts is not None:
            await self.alerts.start()
            self._alerts_started = True

        async def join() -> None:
            await self.source.start(self.commits)

        event = "KafkaUnreachable" if self.cfg.source.type == "kafka" else "SourceUnreachable"
        if not await until_ok(event, join, self.stopping, self.clock, bulk.retry_initial, bulk.retry_max):
            return False
        self.started = True
        return True

    def request_stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        """Start, loop until :meth:`request_stop`, then drain and close."""
        try:
            if await self.start():
                await self.serve()
        finally:
            await self.close()

    async def serve(self) -> None:
        """Turn the wheel until :meth:`request_stop`."""
        bulk = self.cfg.bulk
        clock, source, ingest, dispatch = self.clock, self.source, self.ingest, self.dispatch
        next_expire = clock.monotonic() + EXPIRE_EVERY
        timeout = min(0.1, bulk.flush_interval)
        hb = self.heartbeat
        while not self.stopping.is_set():
            hb.beat()
            if dispatch.failure is not None:
                raise dispatch.failure  # its works can never resolve: commit the rest and exit (app.py)
            self.flow.apply(source, self.indexer.available)
            batches = await source.fetch(timeout)
            for tp, records in batches.items():
                ingest.records(tp, records)
            if clock.monotonic() >= next_expire:
                ingest.expire(self.cfg.partial_line_timeout)
                next_expire = clock.monotonic() + EXPIRE_EVERY
            dispatch.flush_if_due(bulk.flush_interval)
            if await self.commits.commit_if_due():
                self.update_lag()

    async def close(self) -> None:
        """Flush what is buffered, wait ``shutdown_grace`` for in-flight work, commit, disconnect."""
        self.stopping.set()
        if self.started:
            self.dispatch.flush()
            await self.dispatch.drain(self.cfg.shutdown_grace)
            try:
                await self.commits.commit()
            except Exception as exc:  # a broken commit path must not stop the disconnect below
                CommitFailed(error=f"final commit: {exc!r}"[:500]).emit()
        await self.dispatch.cancel()
        await self.source.close()  # leaves the group (or just releases the client if it never joined)
        self.started = False
        await self.dead_letters.close()
        if self.links is not None:
            await self.links.close()
        if self.alerts is not None and self._alerts_started:
            await self.alerts.stop()
            self._alerts_started = False

    # --- around rebalances (consumer.commits.RebalanceSteps) ------------------------------

    def flush(self) -> None:
        self.dispatch.flush()

    def assigned(self, new: Sequence[TopicPartitionKey]) -> None:
        self.ingest.assign(new)
        self.source.reapply_pause()
        self._update_owner()

    def revoked(self, gone: Sequence[TopicPartitionKey]) -> None:
        self.ingest.revoke(gone)
        # The engine holds this same predicate: revoked Components stop being owned at once.
        self.ownership.refresh(self.ingest.partitions())

    def _update_owner(self) -> None:
        """Tell the alert sink which Components this replica now receives (absence rules)."""
        self.ownership.refresh(self.ingest.partitions())
        if self.alerts is not None:
            try:
                self.alerts.set_owner(self.ownership)
            except Exception as exc:  # alerts must never stop indexing
                AlertObserveFailed(error=f"set_owner: {exc!r}"[:300]).emit()

    # --- health --------------------------------------------------------------------------

    def update_lag(self) -> None:
        set_buffered_bytes(self.flow.buffered_bytes)
        for tp in self.offsets.partitions():
            st = self.offsets.state(tp)
            if st is None or st.position is None:
                continue
            lag = self.source.lag(tp, st.position)
            if lag is not None:
                set_partition_lag(tp[0], tp[1], lag)
