"""The consumer's loop: fetch -> parse -> bulk -> check every item -> retry/dead-letter -> resolve -> commit.

:class:`ConsumerService` ties the parts together and holds the one rule of the design: a Kafka
offset is committed only when every record at or before it is indexed or acknowledged by the
dead-letter topic (``consumer/offsets.py``). Several bulk requests are in flight; while too many
bytes are buffered or Elasticsearch is unavailable, partitions are paused (the member stays in
the group) and resumed when the backlog drains. On a rebalance, in-flight work of the revoked
partitions gets ``shutdown_grace`` to finish, the resolved prefix is committed, and what is still
unresolved is abandoned to the next owner, who redoes it (deterministic ids: no duplicates).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from consumer.bulk import BulkBatcher, BulkRequest, index_name
from consumer.config import ConsumerConfig
from consumer.deadletter import DeadLetterWriter
from consumer.gc_policy import apply_gc_policy
from consumer.http import HealthServer
from consumer.index_templates import install_templates
from consumer.indexer import Indexer, backoff_seconds, make_client
from consumer.kafka_source import KafkaSource, Record
from consumer.offsets import PartitionOffsets
from consumer.ownership import ComponentOwnership
from consumer.retention import run_retention
from consumer.telemetry import (
    AlertObserveFailed,
    FetchPaused,
    FetchResumed,
    PartitionsAssigned,
    PartitionsRevoked,
    RecordsConsumed,
    RecordsEncodedNatively,
    log,
    set_buffered_bytes,
    set_partition_lag,
)
from consumer.work import SharedOffsets, TopicPartitionKey, Work
from logpipe.core.envelope import decode_headers, document_id
from logpipe.core.kafka_security import KafkaSecurityError
from parsers import LineParser, Many, Parsed, Partial
from parsers.access_encoder import NATIVE_AVAILABLE, AccessEncoder, EncodeFn
from parsers.fieldmap import FieldMap


class AlertObserver(Protocol):
    """What the loop needs from the alert engine (``consumer.alerts.engine.AlertEngine``)."""

    async def start(self) -> None: ...

    def observe(self, doc: dict[str, Any]) -> None: ...

    async def stop(self) -> None: ...


def _cri_stream(value: bytes) -> str:
    """The stream field (``stdout``/``stderr``) of a CRI line, without parsing the rest."""
    parts = value.split(b" ", 2)
    return parts[1].decode("ascii", "replace") if len(parts) > 2 else ""


class ConsumerService:
    """One consumer-group member indexing Kafka records into Elasticsearch."""

    def __init__(
        self,
        cfg: ConsumerConfig,
        alerts: AlertObserver | None = None,
        on_listening: Callable[[int], None] | None = None,
        *,
        tune_gc: bool = True,
    ) -> None:
        self.cfg = cfg
        self._tune_gc = tune_gc
        self._on_listening = on_listening
        self.alerts = alerts
        self.es = make_client(cfg.elasticsearch, cfg.bulk.request_timeout, cfg.bulk.retry_max)
        self.offsets = PartitionOffsets()
        self.source = KafkaSource(cfg.kafka, self)
        self.dlq = DeadLetterWriter(
            cfg.kafka.bootstrap, cfg.kafka.dead_letter_topic,
            retry_initial=cfg.bulk.retry_initial, retry_max=cfg.bulk.retry_max, security=cfg.kafka,
        )
        self.indexer = Indexer(self.es, cfg.bulk, self._on_indexed, self._on_rejected)
        self.batcher = BulkBatcher(cfg.bulk.max_bytes, cfg.bulk.max_actions)
        self.ownership = ComponentOwnership(cfg.kafka.topics, lambda topic: self.source.partitions_for(topic))
        self.http = HealthServer(cfg.http.host, cfg.http.port, self._ready)
        self._parsers: dict[TopicPartitionKey, LineParser] = {}
        self._mapping = cfg.fields
        # Plain access lines skip the Python parser (same documents, parsers/access_encoder.py).
        self._encode: EncodeFn | None = None
        if cfg.native_encoder and NATIVE_AVAILABLE:
            self._encode = AccessEncoder(FieldMap(cfg.fields), cfg.index.prefix).encode
        elif cfg.native_encoder:
            log.warning("NativeEncoderUnavailable", extra={"fields": {"fix": "pip install -e . (needs a C compiler)"}})
        self._ready_requests: deque[BulkRequest] = deque()
        self._bulk_tasks: set[asyncio.Task[None]] = set()
        self._dlq_tasks: set[asyncio.Task[None]] = set()
        self._side_tasks: list[asyncio.Task[None]] = []
        self._frag_keys: dict[TopicPartitionKey, dict[int, str]] = {}
        self.buffered_bytes = 0
        self._stopping = asyncio.Event()
        self._started = False
        self._templates_ready = False
        self._alerts_started = False
        self.ilm = False

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> int:
        """Serve HTTP, install templates (waiting for Elasticsearch), connect Kafka; returns the HTTP port."""
        port = await self.http.start()
        log.info("HttpListening", extra={"fields": {"host": self.cfg.http.host, "port": port}})
        if self._on_listening is not None:
            self._on_listening(port)
        await self._install_templates()
        if self._stopping.is_set():
            return port  # stopped while waiting for Elasticsearch: nothing was fetched
        if not self.ilm:
            self._side_tasks.append(
                asyncio.create_task(run_retention(self.es, self.cfg.index.prefix, self.cfg.index.retention_days))
            )
        if not await self._until_ok("DeadLetterTopicUnreachable", self.dlq.start):
            return port
        if self.alerts is not None:
            await self.alerts.start()
            self._alerts_started = True
        if not await self._until_ok("KafkaUnreachable", self.source.start):
            return port
        self._started = True
        if self._tune_gc:
            apply_gc_policy()
        return port

    async def _install_templates(self) -> None:
        if not self.cfg.index.install_templates:
            self._templates_ready = True
            return

        async def install() -> None:
            self.ilm = await install_templates(self.es, self.cfg.index)
            self._templates_ready = True

        # Nothing may be indexed before the templates exist (indices would get dynamic mappings).
        await self._until_ok("TemplatesNotInstalled", install)

    async def _until_ok(self, event: str, step: Callable[[], Awaitable[None]]) -> bool:
        """Run ``step`` until it succeeds (a dependency not up yet), logging ``event`` per failure;
        False if a stop was requested first."""
        attempt = 0
        while not self._stopping.is_set():
            try:
                await step()
                return True
            except Exception as exc:
                attempt += 1
                # A KafkaSecurityError is already the one line to show (broker, mechanism, fix).
                error = str(exc) if isinstance(exc, KafkaSecurityError) else repr(exc)[:300]
                log.warning(event, extra={"fields": {"error": error, "attempt": attempt}})
                delay = backoff_seconds(attempt, self.cfg.bulk.retry_initial, self.cfg.bulk.retry_max)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except TimeoutError:
                    pass
        return False

    def request_stop(self) -> None:
        """Ask :meth:`run` to finish (signal handlers call this)."""
        self._stopping.set()

    async def run(self) -> None:
        """Start, loop until :meth:`request_stop`, then drain and close."""
        try:
            await self.start()
            if self._started:
                await self._loop()
        finally:
            await self.close()

    async def close(self) -> None:
        """Flush what is buffered, wait ``shutdown_grace`` for in-flight work, commit, disconnect."""
        self._stopping.set()
        if self._started:
            self._dispatch(self.batcher.take())
            await self._wait_all(self.cfg.shutdown_grace)
            await self._commit()
        for t in [*self._bulk_tasks, *self._dlq_tasks, *self._side_tasks]:
            t.cancel()
        await asyncio.gather(*self._bulk_tasks, *self._dlq_tasks, *self._side_tasks, return_exceptions=True)
        await self.source.close()  # leaves the group (or just releases the client if it never joined)
        self._started = False
        await self.dlq.close()
        if self.alerts is not None and self._alerts_started:
            await self.alerts.stop()
        await self.es.close()
        await self.http.close()

    # --- the loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        bulk = self.cfg.bulk
        next_commit = time.monotonic() + self.cfg.kafka.commit_interval
        next_expire = time.monotonic() + 1.0
        while not self._stopping.is_set():
            self._update_pause()
            batches = await self.source.fetch(timeout_s=min(0.1, bulk.flush_interval))
            for tp, records in batches.items():
                self._ingest(tp, records)
            now = time.monotonic()
            if now >= next_expire:
                self._expire_fragments()
                next_expire = now + 1.0
            if self.batcher.age() >= bulk.flush_interval:
                self._dispatch(self.batcher.take())
            if now >= next_commit:
                await self._commit()
                self._update_lag()
                next_commit = time.monotonic() + self.cfg.kafka.commit_interval

    def _update_pause(self) -> None:
        over = self.buffered_bytes > self.cfg.bulk.max_buffered_bytes
        if over or not self.indexer.available:
            if self.source.pause_all():
                FetchPaused(
                    reason="buffer_full" if over else "elasticsearch_down", buffered_bytes=self.buffered_bytes
                ).emit()
        elif self.source.paused and self.source.resume_all():
            FetchResumed(buffered_bytes=self.buffered_bytes).emit()

    def _ingest(self, tp: TopicPartitionKey, records: list[Record]) -> None:
        """Parse the records of one partition and route each to the batcher or the dead-letter topic."""
        generation = self.offsets.generation(tp)
        parser = self._parsers.get(tp)
        if generation is None or parser is None:
            return  # revoked meanwhile: the next owner reads them
        RecordsConsumed(topic=tp[0], count=len(records)).emit()
        topic, partition = tp
        track, parse, add_document = self.offsets.track, parser.parse, self._add_document
        encode, enqueue, native = self._encode, self._enqueue, 0
        stamp = self.batcher.stamp()
        for rec in records:
            offset = rec.offset
            if not track(tp, offset):
                continue
            value = rec.value or b""
            raw_headers = rec.headers or ()  # aiokafka hands a fresh tuple per record
            if encode is not None and (item := encode(value, raw_headers, stamp)) is not None:
                work = Work(topic, partition, generation, [offset], value, raw_headers, rec.key, offset, None, "access")
                work.item, work.index, work.doc_id = item
                native += 1
                enqueue(work)
                continue
            result = parse(value, decode_headers(raw_headers))
            if isinstance(result, Parsed):
                work = Work(topic, partition, generation, [offset], value, raw_headers, rec.key, offset)
                if result.absorbed > 0:
                    work.offsets.extend(self.offsets.absorb(tp, self._fragment_key(result), result.absorbed))
                add_document(work, result)
            elif isinstance(result, Partial):
                stream = _cri_stream(value)
                self.offsets.add_fragment(tp, f"{result.file_id}\x00{stream}", offset)
            elif isinstance(result, Many):
                record = Work(topic, partition, generation, [offset], value, raw_headers, rec.key, offset)
                self._add_parts(record, result)
            else:
                work = Work(topic, partition, generation, [offset], value, raw_headers, rec.key, offset)
                work.reason = result.reason
                self._dead_letter(work)
        if native:
            RecordsEncodedNatively(topic=topic, count=native).emit()

    @staticmethod
    def _fragment_key(parsed: Parsed) -> str:
        lp = parsed.doc.get("logpipe") or {}
        return f"{lp.get('file_id', '')}\x00{lp.get('stream', '')}"

    def _add_parts(self, record: Work, many: Many) -> None:
        """The documents of one record: each part its own work, the record's offset shared by all."""
        if not many.parts:
            self.offsets.resolve(record)  # nothing to index: the record is done
            return
        shared = SharedOffsets(record.offsets, len(many.parts))
        for number, part in enumerate(many.parts):
            work = Work(
                record.topic, record.partition, record.generation, [], record.raw, record.headers,
                record.key, record.kafka_offset, shared=shared,
            )
            if isinstance(part, Parsed):
                self._add_document(work, part, number)
            else:
                work.reason = part.reason
                self._dead_letter(work)

    def _add_document(self, work: Work, parsed: Parsed, part: int | None = None) -> None:
        doc = parsed.doc
        work.doc = doc
        work.log_type = parsed.log_type
        work.index = parsed.index or index_name(self.cfg.index.prefix, parsed.log_type, doc, time.time())
        if parsed.doc_id:
            work.doc_id = parsed.doc_id
        else:
            lp = doc.get("logpipe") or {}
            lg = doc.get("log") or {}
            file_id, offset = lp.get("file_id"), lg.get("offset")
            position: int | str
            if file_id and isinstance(offset, int):
                position = offset
            else:  # no source identity in the headers: the Kafka position is the next best stable identity
                file_id, position = f"kafka:{work.topic}/{work.partition}", work.kafka_offset
            work.doc_id = document_id(file_id, position if part is None else f"{position}/{part}")
        self._enqueue(work)

    def _enqueue(self, work: Work) -> None:
        """Show the document to the alert rules and add it to the open bulk request."""
        if self.alerts is not None:
            try:
                doc = work.document()
                assert doc is not None
                self.alerts.observe(doc)
            except Exception as exc:
                AlertObserveFailed(error=repr(exc)[:300]).emit()
        closed = self.batcher.add(work)
        self.buffered_bytes += work.size
        if closed is not None:
            self._dispatch(closed)

    def _expire_fragments(self) -> None:
        for tp, parser in list(self._parsers.items()):
            generation = self.offsets.generation(tp)
            if generation is None:
                continue
            for parsed in parser.expire(self.cfg.partial_line_timeout):
                offsets = self.offsets.absorb(tp, self._fragment_key(parsed), max(parsed.absorbed, 1))
                last = offsets[-1] if offsets else -1
                message = parsed.doc.get("message")
                work = Work(
                    topic=tp[0], partition=tp[1], generation=generation, offsets=offsets,
                    raw=message.encode() if isinstance(message, str) else b"",  # for a dead letter
                    headers=[], key=None, kafka_offset=last,
                )
                self._add_document(work, parsed)

    # --- bulk requests and dead letters --------------------------------------------------

    def _dispatch(self, req: BulkRequest | None) -> None:
        if req is None or not req.items:
            return
        self._ready_requests.append(req)
        self._start_ready()

    def _start_ready(self) -> None:
        while self._ready_requests and len(self._bulk_tasks) < self.cfg.bulk.concurrency:
            req = self._ready_requests.popleft()
            task = asyncio.create_task(self.indexer.deliver(req))
            self._bulk_tasks.add(task)
            task.add_done_callback(self._bulk_done)

    def _bulk_done(self, task: asyncio.Task[None]) -> None:
        self._bulk_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("BulkTaskFailed", extra={"fields": {"error": repr(task.exception())}})
        self._start_ready()

    def _on_indexed(self, items: list[Work]) -> None:
        self.offsets.resolve_all(items)
        freed = 0
        for w in items:
            freed += w.size
            w.size = 0
        self.buffered_bytes -= freed

    def _on_rejected(self, work: Work) -> None:
        self._dead_letter(work)

    def _dead_letter(self, work: Work) -> None:
        if not work.size:
            work.size = len(work.raw)
            self.buffered_bytes += work.size
        task = asyncio.create_task(self._send_dead_letter(work))
        self._dlq_tasks.add(task)
        task.add_done_callback(self._dlq_tasks.discard)

    async def _send_dead_letter(self, work: Work) -> None:
        await self.dlq.send(work)
        self._resolve(work)

    def _resolve(self, work: Work) -> None:
        self.offsets.resolve(work)
        self.buffered_bytes -= work.size
        work.size = 0

    # --- commits, rebalances, health ------------------------------------------------------

    async def _commit(self, only: Sequence[TopicPartitionKey] | None = None) -> None:
        positions = self.offsets.committable()
        if only is not None:
            positions = {tp: p for tp, p in positions.items() if tp in only}
        if positions and await self.source.commit(positions):
            self.offsets.mark_committed(positions)

    def _update_lag(self) -> None:
        set_buffered_bytes(self.buffered_bytes)
        for tp in self.offsets.partitions():
            st = self.offsets.state(tp)
            if st is None or st.position is None:
                continue
            lag = self.source.lag(tp, st.position)
            if lag is not None:
                set_partition_lag(tp[0], tp[1], lag)

    async def partitions_assigned(self, partitions: Sequence[TopicPartitionKey]) -> None:
        """Kafka rebalance listener: track the new partitions from scratch, each with its own parser."""
        for tp in partitions:
            if tp not in self._parsers:  # a partition kept across the rebalance keeps its state
                self.offsets.assign(tp)
                self._parsers[tp] = LineParser(self._mapping)
        self.source.reapply_pause()
        self._update_owner()
        PartitionsAssigned(partitions=tuple(f"{t}/{p}" for t, p in partitions)).emit()

    def _update_owner(self) -> None:
        """Tell the alert engine which Components this replica now receives (absence rules)."""
        self.ownership.refresh(list(self._parsers))
        set_owner = getattr(self.alerts, "set_owner", None)  # optional part of the engine's API
        if set_owner is not None:
            try:
                set_owner(self.ownership)
            except Exception as exc:  # alerts must never stop indexing
                AlertObserveFailed(error=f"set_owner: {exc!r}"[:300]).emit()

    async def partitions_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        """Kafka rebalance listener: finish (within the grace) or abandon in-flight work, commit, forget."""
        if not partitions:
            return
        self._dispatch(self.batcher.take())
        deadline = time.monotonic() + self.cfg.shutdown_grace
        while time.monotonic() < deadline and any(self.offsets.unresolved(tp) > 0 for tp in partitions):
            await asyncio.sleep(0.05)
        await self._commit(only=partitions)
        abandoned = 0
        for tp in partitions:
            abandoned += self.offsets.unresolved(tp)
            self.offsets.revoke(tp)
            self._parsers.pop(tp, None)
        # The engine holds this same predicate: revoked Components stop being owned at once.
        self.ownership.refresh(list(self._parsers))
        PartitionsRevoked(partitions=tuple(f"{t}/{p}" for t, p in partitions), abandoned=abandoned).emit()

    async def _wait_all(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (self._bulk_tasks or self._dlq_tasks or self._ready_requests):
            await asyncio.sleep(0.05)

    def _ready(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {
            "kafka": self._started,
            "elasticsearch": self.indexer.available,
            "templates": self._templates_ready,
            "partitions": len(self.offsets.partitions()),
            "buffered_bytes": self.buffered_bytes,
        }
        if not self.indexer.available:
            detail["elasticsearch_error"] = self.indexer.last_error
        return (self._started and self.indexer.available and self._templates_ready, detail)
