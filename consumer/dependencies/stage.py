"""The dependency stage: links topic -> join per trace -> trace documents -> Jaeger's dependency documents.

Runs inside every consumer replica, as a member of its own consumer group on the links topic
(``trace_dependencies.group_id``), so each trace's links — keyed by trace id — reach exactly one
replica's stage. The loop: fetch link records, hold them in :class:`TraceJoin` until their trace is
quiet, then per ``flush_interval`` write the due traces (``DependencyStore.write_traces``), rebuild the
Jaeger documents of the buckets they touched (``rollup``), and only then resolve the link records'
offsets: a link's offset is committed after the documents covering it are written. A crash before
that replays the links, which merge into the stored traces without counting anything twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from elasticsearch import AsyncElasticsearch

from consumer.config import ConsumerConfig
from consumer.dependencies.join import TraceFlush, TraceJoin
from consumer.dependencies.link import BadLink, decode_link
from consumer.dependencies.producer import ensure_topic
from consumer.dependencies.store import DependencyStore
from consumer.dependencies.telemetry import (
    BadLinkSkipped,
    DependenciesWritten,
    DependencyWriteFailed,
    LinksConsumed,
)
from consumer.dependencies.templates import install_dependency_templates
from consumer.retry import backoff_seconds
from consumer.sources.kafka.source import KafkaSource, Record
from consumer.telemetry import log
from consumer.work import TopicPartitionKey
from logpipe.core.acks import OrderedAcks
from logpipe.core.supervisor import Heartbeat


def links_group_id(cfg: ConsumerConfig) -> str:
    return cfg.trace_dependencies.group_id or f"{cfg.kafka.group_id}-trace-links"


class DependencyStage:
    """One replica's share of the dependency graph (the partitions of the links topic it owns)."""

    def __init__(
        self, cfg: ConsumerConfig, es: AsyncElasticsearch, clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] | None = None,
    ) -> None:
        """``wall``: epoch seconds for the stored documents and the summary horizon (tests move it)."""
        td = cfg.trace_dependencies
        self.cfg = cfg
        self.es = es
        self.clock = clock
        self.topic = td.topic
        kafka = cfg.kafka.model_copy(
            update={"group_id": links_group_id(cfg), "topics": [td.topic], "client_id": f"{cfg.kafka.client_id}-links"}
        )
        self.source = KafkaSource(kafka)
        self.join = TraceJoin(td.horizon, td.max_trace_age, td.max_traces, td.max_spans)
        ts = cfg.trace_summaries
        self.store = DependencyStore(
            es, cfg.index.prefix, int(td.bucket), now=wall, summary_horizon=ts.horizon if ts.enabled else None
        )
        self._acks: dict[int, OrderedAcks] = {}
        self._pending: list[TraceFlush] = []  # due but not yet written (Elasticsearch down: kept and retried)
        self._stopping = asyncio.Event()
        self._writing = asyncio.Lock()
        self._failures = 0
        self.started = False
        self.last_write: float | None = None
        self.links_read = 0
        # Turns once per loop turn (fetches return within 0.2 s): a hung fetch stops it. Not before the
        # stage has started (it is retrying Kafka or Elasticsearch), nor while it waits on Elasticsearch
        # writes or a broker backoff: an outage is no reason for the kubelet to restart the consumer.
        self.heartbeat = Heartbeat("dependencies", clock, idle=lambda: not self.started)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Templates, the links topic, the group; raises if a dependency is not reachable (call again)."""
        await install_dependency_templates(self.es, self.cfg.index)
        await ensure_topic(self.cfg.kafka.bootstrap, self.topic, self.cfg.trace_dependencies.partitions, self.cfg.kafka)
        await self.source.start(self)
        self.started = True

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Start (retrying until Kafka and Elasticsearch answer), loop until stopped, write what is held, commit."""
        attempt = 0
        while not self._stopping.is_set() and not self.started:
            try:
                await self.start()
            except Exception as exc:
                attempt += 1
                fields = {"error": repr(exc)[:300], "attempt": attempt}
                log.warning("DependencyStageNotStarted", extra={"fields": fields})
                await self._sleep(backoff_seconds(attempt, self.cfg.bulk.retry_initial, self.cfg.bulk.retry_max))
        try:
            if self.started:
                await self._loop()
        finally:
            await self.close()

    async def close(self) -> None:
        if self.started:
            self._pending.extend(self.join.drain())
            await self._write_pending()
            await self._commit()
            self.started = False
        await self.source.close()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    # --- the loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        td = self.cfg.trace_dependencies
        next_flush = self.clock() + td.flush_interval
        next_commit = self.clock() + self.cfg.kafka.commit_interval
        hb = self.heartbeat
        while not self._stopping.is_set():
            hb.beat()
            try:
                batches = await self.source.fetch(timeout_s=0.2)
            except Exception as exc:  # the broker went away: aiokafka reconnects; keep what is held
                log.warning("DependencyFetchFailed", extra={"fields": {"error": repr(exc)[:300]}})
                with hb.waiting():
                    await self._sleep(self.cfg.bulk.retry_max)
                continue
            for tp, records in batches.items():
                self._take(tp, records)
            now = self.clock()
            if now >= next_flush:
                self._pending.extend(self.join.due(now))
                with hb.waiting():
                    ok = await self._write_pending()
                delay = td.flush_interval if ok else backoff_seconds(
                    self._failures, self.cfg.bulk.retry_initial, self.cfg.bulk.retry_max
                )
                next_flush = self.clock() + delay
            if now >= next_commit:
                await self._commit()
                next_commit = self.clock() + self.cfg.kafka.commit_interval

    def _take(self, tp: TopicPartitionKey, records: list[Record]) -> None:
        """Hold each link with its trace; a record that is no link is resolved (skipped) at once."""
        partition = tp[1]
        acks = self._acks.get(partition)
        if acks is None:
            return  # revoked meanwhile
        LinksConsumed(partition=partition, count=len(records)).emit()
        self.links_read += len(records)
        now = self.clock()
        for rec in records:
            if acks.frontier is not None and rec.offset < acks.frontier:
                continue  # already held (a fetch after a seek)
            acks.add(rec.offset, rec.offset + 1)
            try:
                link = decode_link(rec.value or b"")
            except BadLink as exc:
                BadLinkSkipped(partition=partition, offset=rec.offset, reason=str(exc)).emit()
                acks.resolve(rec.offset)
                continue
            self.join.add(link, partition, rec.offset, now)

    async def _write_pending(self) -> bool:
        """Write the pending flushes, then resolve their offsets; False (kept for a retry) on failure.

        Serialised: the revoke callback runs while the loop may be writing, and a flush must be
        written and resolved by one of them only."""
        async with self._writing:
            if not self._pending:
                return True
            flushes, self._pending = self._pending, []
            owners = {f.partition: self._acks.get(f.partition) for f in flushes}
            try:
                written = await self.store.write_traces(flushes)
                documents = await self.store.rollup(written.buckets)
            except Exception as exc:
                self._failures += 1
                self._pending = flushes + self._pending
                DependencyWriteFailed(traces=len(flushes), error=repr(exc)[:300]).emit()
                return False
            self._failures = 0
            for flush in flushes:
                acks = self._acks.get(flush.partition)
                if acks is None or acks is not owners[flush.partition]:
                    continue  # revoked (and maybe assigned again) meanwhile: its offsets are gone with it
                for offset in flush.offsets:
                    acks.resolve(offset)
            self.last_write = self.clock()
            DependenciesWritten(
                traces=written.traces, calls=written.calls, documents=documents,
                evicted=sum(f.evicted for f in flushes), held=len(self.join),
                summaries=written.summaries, summaries_final=written.summaries_final,
            ).emit()
            return True

    async def _commit(self, only: set[int] | None = None) -> None:
        positions: dict[TopicPartitionKey, int] = {}
        for partition, acks in self._acks.items():
            if only is not None and partition not in only:
                continue
            if acks.frontier is not None:
                positions[(self.topic, partition)] = acks.committed
        if positions:
            await self.source.commit(positions)

    # --- rebalances (KafkaSource's listener) ---------------------------------------------

    async def partitions_assigned(self, partitions: Sequence[TopicPartitionKey]) -> None:
        for _, partition in partitions:
            # Fresh: reading restarts at the committed offset (links held from before are merged, not lost).
            self._acks[partition] = OrderedAcks()

    async def partitions_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        """Write what is held for the revoked partitions (within reach), commit it, forget the rest."""
        revoked = {p for _, p in partitions}
        if not revoked:
            return
        self._pending.extend(self.join.take_partitions(revoked))
        if await self._write_pending():
            await self._commit(only=revoked)
        self._pending = [f for f in self._pending if f.partition not in revoked]
        for partition in revoked:
            self._acks.pop(partition, None)

    @property
    def partitions(self) -> list[int]:
        return sorted(self._acks)

    @property
    def committable(self) -> dict[int, int]:
        """Per owned partition, the offset up to which every link's documents are written."""
        return {p: a.committed for p, a in self._acks.items()}
