"""The Kafka sink: batches of lines -> record batches per partition, ``acks=all``, idempotent.

This is the only module that talks to aiokafka. :meth:`KafkaSink.send` groups a batch's records
by topic and partition (the key is the Component, partitioned with Kafka's murmur2 like every other
client, so one service's lines stay ordered in one partition), builds record batches directly
(``create_batch``/``send_batch``: no per-record future), and returns one
:class:`~logpipe.core.delivery.BatchStatus` once every record batch is acknowledged by all in-sync
replicas, or failed.

Record value: the original line bytes. Headers: the line's :meth:`LineRecord.headers`, built with
the per-file part computed once per file instead of once per line.

The pipeline's fast path is :meth:`KafkaSink.send_runs`: runs of lines encoded into record batches
here (``shipper/sinks/kafka/records.py``) and handed to aiokafka finished; :meth:`KafkaSink.send`
(one ``LineRecord`` at a time through aiokafka's builder) remains for single lines and other callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)
from aiokafka.partitioner import murmur2

from logpipe.core import envelope as ev
from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRecord, LineRun, SourceMeta
from logpipe.core.kafka_security import aiokafka_kwargs, start_guarded
from shipper.sinks.kafka.config import KafkaSinkConfig
from shipper.sinks.kafka.records import CODECS, EncodedBatch, RunHeaders, compressor, encode_headers, encode_run

log = logging.getLogger("logpipe.shipper.kafka")

_HEAD_COUNT = 11  # lp.v, the per-file headers, lp.offset and lp.file_id: LineRecord.headers() minus read_ts and flags
_INLINE_COMPRESS = 64 * 1024  # smaller payloads are compressed in the loop: a thread hop would cost more

_REJECT = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError, InvalidTopicError)


class _HeaderCache:
    """The per-file part of a record's headers, computed once per :class:`SourceMeta`."""

    def __init__(self, limit: int = 8192) -> None:
        self._by_id: dict[int, tuple[SourceMeta, list[tuple[str, bytes]], tuple[str, bytes]]] = {}
        self._limit = limit

    def parts(self, m: SourceMeta) -> tuple[list[tuple[str, bytes]], tuple[str, bytes]]:
        hit = self._by_id.get(id(m))
        if hit is not None and hit[0] is m:
            return hit[1], hit[2]
        head = [
            (ev.H_VERSION, ev.ENVELOPE_VERSION_BYTES),
            (ev.H_NODE, m.node.encode()),
            (ev.H_NAMESPACE, m.namespace.encode()),
            (ev.H_POD, m.pod.encode()),
            (ev.H_POD_UID, m.pod_uid.encode()),
            (ev.H_CONTAINER, m.container.encode()),
            (ev.H_COMPONENT, m.component.encode()),
            (ev.H_TYPE, m.log_type.encode()),
            (ev.H_PATH, m.path.encode()),
        ]
        fid = (ev.H_FILE_ID, m.file_id.encode())
        if len(self._by_id) >= self._limit:
            self._by_id.clear()
        self._by_id[id(m)] = (m, head, fid)
        return head, fid


def record_headers(cache: _HeaderCache, r: LineRecord) -> list[tuple[str, bytes]]:
    """Exactly ``r.headers()``, with the per-file part shared."""
    head, fid = cache.parts(r.meta)
    h = [*head, (ev.H_OFFSET, str(r.offset).encode()), fid, (ev.H_READ_TS, str(r.read_ts_ms).encode())]
    if r.flags:
        h.append((ev.H_FLAGS, ",".join(r.flags).encode()))
    return h


class KafkaSink:
    """Implements ``shipper.sinks.base.Sink`` on aiokafka."""

    name = "kafka"

    def __init__(self, cfg: KafkaSinkConfig) -> None:
        self.cfg = cfg
        self._producer: AIOKafkaProducer | None = None
        self._connected = False
        self._ready_topics: set[str] = set()
        self._partitions: dict[str, list[int]] = {}
        self._key_part: dict[tuple[bytes, int], int] = {}
        self._headers = _HeaderCache()
        self._topic_lock = asyncio.Lock()
        self._compress = compressor(cfg.compression, cfg.compression_level)
        self._codec_id = CODECS[cfg.compression]
        self._run_parts: dict[int, tuple[SourceMeta, bytes, bytes, bytes]] = {}  # id(meta) -> key, headers
        self._handoff: asyncio.Future[None] | None = None  # the previous send_runs' hand-off to aiokafka

    def _new_producer(self) -> AIOKafkaProducer:
        c = self.cfg
        return AIOKafkaProducer(
            bootstrap_servers=c.bootstrap,
            client_id=c.client_id,
            acks="all",
            enable_idempotence=True,
            compression_type=None if c.compression == "none" else c.compression,
            max_batch_size=c.batch_max_bytes,
            max_request_size=c.max_request_bytes,
            linger_ms=int(c.linger * 1000),
            request_timeout_ms=int(c.request_timeout * 1000),
            **aiokafka_kwargs(c),
        )

    async def start(self) -> None:
        """Connect; raises ``KafkaSecurityError`` (one line: broker, mechanism, fix) on failure (the caller retries)."""
        producer = self._new_producer()
        try:
            await start_guarded(producer.start, self.cfg, self.cfg.bootstrap)
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer
        self._connected = True

    @property
    def connected(self) -> bool:
        return self._connected

    async def close(self) -> None:
        """Flush what the producer holds and disconnect."""
        if self._producer is not None:
            p, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await p.stop()
        self._connected = False

    def topic_of(self, r: LineRecord) -> str:
        if "deadletter" in r.flags:
            return self.cfg.dead_letter_topic
        return r.topic or self.cfg.topic_for(r.meta.log_type)

    async def _ensure_topic(self, topic: str) -> list[int]:
        parts = self._partitions.get(topic)
        if parts is not None:
            return parts
        assert self._producer is not None
        async with self._topic_lock:
            if topic not in self._ready_topics and self.cfg.create_topics:
                await self._create_topic(topic)
                self._ready_topics.add(topic)
            found = await self._producer.partitions_for(topic)
            parts = sorted(found)
            self._partitions[topic] = parts
            return parts

    async def _create_topic(self, topic: str) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.cfg.bootstrap, client_id=f"{self.cfg.client_id}-admin",
                                    request_timeout_ms=int(self.cfg.request_timeout * 1000),
                                    **aiokafka_kwargs(self.cfg))
        await admin.start()
        try:
            resp: Any = await admin.create_topics([NewTopic(topic, self.cfg.partitions, 1)])
            for _name, code, *_ in getattr(resp, "topic_errors", []) or []:
                if code not in (0, TopicAlreadyExistsError.errno):
                    log.warning("create topic %s: error code %s", topic, code)
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()

    def _partition(self, key: bytes, parts: list[int]) -> int:
        k = (key, len(parts))
        p = self._key_part.get(k)
        if p is None:
            p = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
            if len(self._key_part) > 65536:
                self._key_part.clear()
            self._key_part[k] = p
        return p

    async def send(self, batch: Sequence[LineRecord]) -> BatchStatus:
        """Deliver ``batch``; DELIVERED once every record is acknowledged by all in-sync replicas.

        ERRORED on a timeout, a lost connection or a broker error (the caller sends again);
        REJECTED when the broker refuses a record for good (too large, invalid topic). Cancelling
        the call leaves the batch unacknowledged.
        """
        producer = self._producer
        if producer is None:
            return BatchStatus.ERRORED  # not connected (yet): the agent keeps connecting
        try:
            futures = await self._enqueue(producer, batch)
        except _REJECT:
            return BatchStatus.REJECTED
        except (TimeoutError, KafkaError, OSError) as exc:
            self._connected = False
            log.debug("enqueue failed: %r", exc)
            return BatchStatus.ERRORED
        return await self._acked(futures)

    async def _acked(self, futures: list[asyncio.Future[Any]]) -> BatchStatus:
        status = BatchStatus.DELIVERED
        results = await asyncio.gather(*futures, return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                if isinstance(res, asyncio.CancelledError):
                    raise res
                st = BatchStatus.REJECTED if isinstance(res, _REJECT) else BatchStatus.ERRORED
                status = status.merge(st)
        self._connected = status is not BatchStatus.ERRORED
        return status

    async def _enqueue(self, producer: AIOKafkaProducer, batch: Sequence[LineRecord]) -> list[asyncio.Future[Any]]:
        """Append every record to the record batch of its topic-partition; returns the ack futures.

        Lines of one file come in runs sharing one ``SourceMeta``: topic, partition, key and the
        per-file headers are worked out once per run, so a line costs two small headers and an append.
        """
        builders: dict[tuple[str, int], Any] = {}
        counts: dict[tuple[str, int], int] = {}
        futures: list[asyncio.Future[Any]] = []
        cache = self._headers
        last_meta: SourceMeta | None = None
        last_topic = ""
        tp: tuple[str, int] = ("", 0)
        key = b""
        head: list[tuple[str, bytes]] = []
        fid: tuple[str, bytes] = ("", b"")
        last_ts = -1
        ts_h: tuple[str, bytes] = ("", b"")
        h_offset, h_ts, h_flags = ev.H_OFFSET, ev.H_READ_TS, ev.H_FLAGS
        for r in batch:
            m = r.meta
            if m is not last_meta or r.topic != last_topic or r.flags:
                topic = self.topic_of(r)
                parts = self._partitions.get(topic) or await self._ensure_topic(topic)
                key = m.component.encode()
                tp = (topic, self._partition(key, parts))
                head, fid = cache.parts(m)
                last_meta, last_topic = (None, "") if r.flags else (m, r.topic)
            if r.read_ts_ms != last_ts:
                last_ts = r.read_ts_ms
                ts_h = (h_ts, str(last_ts).encode())
            h = [*head, (h_offset, b"%d" % r.offset), fid, ts_h]
            if r.flags:
                h.append((h_flags, ",".join(r.flags).encode()))
            builder = builders.get(tp)
            if builder is None:
                builder = builders[tp] = producer.create_batch()
                counts[tp] = 0
            if builder.append(timestamp=None, key=key, value=r.value, headers=h) is None:
                if counts[tp] == 0:
                    raise MessageSizeTooLargeError(f"a record of {len(r.value)} bytes exceeds the batch size")
                futures.append(await producer.send_batch(builder, tp[0], partition=tp[1]))
                builder = builders[tp] = producer.create_batch()
                counts[tp] = 0
                if builder.append(timestamp=None, key=key, value=r.value, headers=h) is None:
                    raise MessageSizeTooLargeError(f"a record of {len(r.value)} bytes exceeds the batch size")
            counts[tp] += 1
        for tp, builder in builders.items():
            if counts[tp]:
                futures.append(await producer.send_batch(builder, tp[0], partition=tp[1]))
        return futures

    # --- the fast path: runs of lines, record batches encoded here -----------------------------------

    async def send_runs(self, runs: Sequence[LineRun]) -> BatchStatus:
        """Like :meth:`send`, for runs of lines: record batches encoded without an object per line.

        Compression runs in a worker thread (the codec releases the GIL); batches are still handed
        to aiokafka in the order of the calls, so a file's lines keep their order in the partition.
        """
        producer = self._producer
        if producer is None:
            return BatchStatus.ERRORED
        prev = self._handoff
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._handoff = mine
        try:
            try:
                encoded = await self._encode_runs(runs)
                payloads = await asyncio.gather(*(
                    asyncio.to_thread(self._compress, raw) if len(raw) > _INLINE_COMPRESS else self._inline(raw)
                    for _tp, raw, _n, _ts in encoded))
                if prev is not None and not prev.done():
                    await asyncio.wait((prev,))
                futures = [await producer.send_batch(EncodedBatch(payload, n, self._codec_id, ts), tp[0],
                                                     partition=tp[1])
                           for (tp, _raw, n, ts), payload in zip(encoded, payloads, strict=True)]
            finally:
                if not mine.done():
                    mine.set_result(None)
                if self._handoff is mine:
                    self._handoff = None
        except _REJECT:
            return BatchStatus.REJECTED
        except (TimeoutError, KafkaError, OSError) as exc:
            self._connected = False
            log.debug("enqueue failed: %r", exc)
            return BatchStatus.ERRORED
        return await self._acked(futures)

    async def _inline(self, raw: bytes) -> bytes:
        return self._compress(raw)

    def _run_headers(self, run: LineRun) -> RunHeaders:
        m = run.meta
        hit = self._run_parts.get(id(m))
        if hit is None or hit[0] is not m:
            head, fid = self._headers.parts(m)
            body = encode_headers([*head, (ev.H_OFFSET, b"")])[:-1]  # the offset's value comes per line
            hit = (m, m.component.encode(), body, encode_headers([fid]))
            if len(self._run_parts) >= 8192:
                self._run_parts.clear()
            self._run_parts[id(m)] = hit
        _m, key, body, fid_part = hit
        after = [(ev.H_READ_TS, b"%d" % run.read_ts_ms)]
        if run.flags:
            after.append((ev.H_FLAGS, ",".join(run.flags).encode()))
        return RunHeaders(key, body, fid_part + encode_headers(after), _HEAD_COUNT + len(after))

    async def _encode_runs(self, runs: Sequence[LineRun]) -> list[tuple[tuple[str, int], bytes, int, int]]:
        """Encode every run into record batches per topic-partition: (tp, records, count, timestamp)."""
        open_: dict[tuple[str, int], tuple[list[bytes], list[int]]] = {}  # tp -> (parts, [delta, size, ts])
        done: list[tuple[tuple[str, int], bytes, int, int]] = []
        max_size = self.cfg.batch_max_bytes
        for run in runs:
            topic = self.cfg.dead_letter_topic if "deadletter" in run.flags else (
                run.topic or self.cfg.topic_for(run.meta.log_type))
            parts = self._partitions.get(topic) or await self._ensure_topic(topic)
            tp = (topic, self._partition(run.meta.component.encode(), parts))
            h = self._run_headers(run)
            values, offset = run.values, run.offset
            while values:
                cur = open_.get(tp)
                if cur is None:
                    cur = open_[tp] = ([], [0, 0, run.read_ts_ms])
                out, state = cur
                taken, state[0], state[1] = encode_run(out, values, offset, h, state[0], state[1], max_size)
                if taken < len(values):  # the batch is full: finish it, go on in a new one
                    done.append((tp, b"".join(out), state[0], state[2]))
                    del open_[tp]
                    offset += sum(map(len, values[:taken])) + taken
                    values = values[taken:]
                else:
                    break
        done.extend((tp, b"".join(out), state[0], state[2]) for tp, (out, state) in open_.items())
        return done
