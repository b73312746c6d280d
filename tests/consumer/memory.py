"""In-memory parts for the consume loop's unit tier: a source, a ``_bulk`` endpoint, a dead-letter sink,
an alert sink and a clock, each implementing its ``consumer.ports`` Protocol, each controllable.

    env = LoopStory()
    env.produce(TP, env.access_lines(3))
    async with env.running():
        await env.until(lambda: len(env.bulk.docs) == 3)
        await env.run_for(1.5)                 # the commit interval passes (on the fake clock)
    assert env.source.committed[TP] == 3

Time is the :class:`FakeClock`'s: it moves only when the story advances it, so timers (flush,
commit, backoff, grace, the CRI timeout) fire exactly when the story says.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from consumer.config import ConsumerConfig
from consumer.dependencies.link import SpanLink
from consumer.loop import ConsumeLoop
from consumer.ports import BulkHttpError, BulkUnreachable, PartitionListener
from consumer.spanmetrics.store import SpanMetrics
from consumer.work import TopicPartitionKey, Work
from logpipe.core.envelope import LineRecord, SourceMeta
from parsers.access_encoder import EncodeFn

TP = ("logpipe-access", 0)


async def settle(turns: int = 30) -> None:
    """Let every ready task run (several event-loop turns)."""
    for _ in range(turns):
        await asyncio.sleep(0)


class FakeClock:
    """Virtual time: ``sleep`` and ``wait`` return when :meth:`advance` passes their deadline."""

    def __init__(self, start: float = 1000.0, wall: float = 1_795_000_000.0) -> None:
        self.now = start
        self._wall = wall - start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self._wall + self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + seconds, next(self._seq), fut))
        await fut

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self.sleep(timeout))
        await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
        for t in (waiter, timer):
            t.cancel()
        return event.is_set()

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each timer at its own deadline (in order) and letting it run."""
        target = self.now + seconds
        while self._timers and self._timers[0][0] <= target:
            due, _, fut = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            if not fut.done():
                fut.set_result(None)
                await settle()
        self.now = target
        await settle()


@dataclass(frozen=True)
class MemoryRecord:
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()


class MemorySource:
    """Partitioned logs with a group member's view: assignment, positions, pause, commits, rebalances."""

    def __init__(self, clock: FakeClock, max_records: int = 1000) -> None:
        self.clock = clock
        self.max_records = max_records
        self.logs: dict[TopicPartitionKey, list[MemoryRecord]] = {}
        self.initial: list[TopicPartitionKey] = []
        self.assigned: list[TopicPartitionKey] = []
        self.position: dict[TopicPartitionKey, int] = {}
        self.committed: dict[TopicPartitionKey, int] = {}
        self.commit_log: list[dict[TopicPartitionKey, int]] = []
        self.fail_commits = False
        self._paused = False
        self.pauses = 0
        self.listener: PartitionListener | None = None
        self.closed = False

    # --- the test's side ------------------------------------------------------------------

    def append(
        self, tp: TopicPartitionKey, value: bytes, headers: Sequence[tuple[str, bytes]] = (), key: bytes | None = None
    ) -> int:
        log = self.logs.setdefault(tp, [])
        if tp not in self.initial:
            self.initial.append(tp)
        log.append(MemoryRecord(len(log), value, key, tuple(headers)))
        return len(log) - 1

    async def rebalance(
        self, revoke: Sequence[TopicPartitionKey] = (), assign: Sequence[TopicPartitionKey] = ()
    ) -> None:
        """What the group coordinator does: revoke (the member still owns them meanwhile), then assign;
        a newly assigned partition is read from its committed offset."""
        assert self.listener is not None
        await self.listener.partitions_revoked(list(revoke))
        self.assigned = [tp for tp in self.assigned if tp not in revoke]
        for tp in assign:
            if tp not in self.assigned:
                self.assigned.append(tp)
            self.position[tp] = self.committed.get(tp, 0)
        if assign:
            await self.listener.partitions_assigned(list(assign))

    # --- consumer.ports.Source --------------------------------------------------------------

    async def start(self, listener: PartitionListener) -> None:
        self.listener = listener
        await self.rebalance(assign=list(self.initial))

    async def fetch(self, timeout_s: float) -> Mapping[TopicPartitionKey, Sequence[MemoryRecord]]:
        await asyncio.sleep(0)  # a real fetch always yields to the event loop
        out = self._take()
        if not out:
            await self.clock.sleep(timeout_s)
            out = self._take()
        return out

    def _take(self) -> dict[TopicPartitionKey, list[MemoryRecord]]:
        if self._paused:
            return {}
        out: dict[TopicPartitionKey, list[MemoryRecord]] = {}
        budget = self.max_records
        for tp in self.assigned:
            pos = self.position.get(tp, 0)
            recs = self.logs.get(tp, [])[pos : pos + budget]
            if recs:
                out[tp] = recs
                self.position[tp] = pos + len(recs)
                budget -= len(recs)
            if budget <= 0:
                break
        return out

    def pause_all(self) -> bool:
        changed = not self._paused
        self._paused = True
        self.pauses += changed
        return changed

    def resume_all(self) -> bool:
        changed = self._paused
        self._paused = False
        return changed

    @property
    def paused(self) -> bool:
        return self._paused

    def reapply_pause(self) -> None:
        return None  # pausing is member-wide here: new partitions are paused too

    def partitions_for(self, topic: str) -> Collection[int] | None:
        parts = {p for t, p in self.logs if t == topic}
        return parts or None

    async def commit(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        await asyncio.sleep(0)
        if self.fail_commits:
            return False
        owned = {tp: p for tp, p in positions.items() if tp in self.assigned}
        self.committed.update(owned)
        if owned:
            self.commit_log.append(owned)
        return True

    def lag(self, tp: TopicPartitionKey, position: int) -> int | None:
        return max(0, len(self.logs.get(tp, [])) - position)

    async def close(self) -> None:
        self.closed = True


@dataclass
class BulkCall:
    """One ``_bulk`` request the endpoint received: its actions, and (when held) its release."""

    actions: list[tuple[str, str, dict[str, Any]]]  # (index, _id, document)
    gate: asyncio.Future[None] | None = None

    @property
    def ids(self) -> list[str]:
        return [doc_id for _, doc_id, _ in self.actions]


class MemoryBulk:
    """A ``_bulk`` endpoint over a dict: holds requests back, answers items 429/400, or is down."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[BulkCall] = []
        self.holding = False
        self.down = False
        self.too_large = 0
        self.item_status: dict[str, list[int]] = {}
        """Per ``_id``, the statuses to answer in turn (then 201)."""
        self.max_body: int | None = None
        """Bodies larger than this are refused whole with 413 (``http.max_content_length``)."""

    def held(self) -> list[BulkCall]:
        return [c for c in self.calls if c.gate is not None and not c.gate.done()]

    def release(self, *calls: BulkCall) -> None:
        """Let held requests answer, in the order given (any order: acks may come back reordered)."""
        for c in calls or tuple(self.held()):
            assert c.gate is not None
            c.gate.set_result(None)

    @property
    def ids(self) -> set[str]:
        return {doc_id for _, doc_id in self.docs}

    async def bulk(self, body: bytes) -> Mapping[str, Any]:
        await asyncio.sleep(0)
        if self.down:
            raise BulkUnreachable("ConnectionError: connection refused")
        if self.max_body is not None and len(body) > self.max_body:
            self.too_large += 1
            raise BulkHttpError(413, "Request Entity Too Large")
        lines = body.split(b"\n")
        actions = []
        for i in range(0, len(lines) - 1, 2):
            meta = orjson.loads(lines[i])["index"]
            actions.append((meta["_index"], meta["_id"], orjson.loads(lines[i + 1])))
        call = BulkCall(actions)
        self.calls.append(call)
        if self.holding:
            call.gate = asyncio.get_running_loop().create_future()
            await call.gate
        items = []
        for index, doc_id, doc in actions:
            queue = self.item_status.get(doc_id)
            status = queue.pop(0) if queue else 201
            item: dict[str, Any] = {"status": status}
            if status == 429:
                item["error"] = {"type": "es_rejected_execution_exception", "reason": "queue full"}
            elif status >= 400:
                item["error"] = {"type": "document_parsing_exception", "reason": "failed to parse field [url.path]"}
            else:
                self.docs[(index, doc_id)] = doc
            items.append({"index": item})
        return {"errors": any(i["index"]["status"] >= 300 for i in items), "items": items}


class MemoryDeadLetters:
    """A dead-letter sink that acknowledges, or fails its next ``failures`` sends."""

    def __init__(self) -> None:
        self.letters: list[Work] = []
        self.failures = 0
        self.attempts = 0
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def send(self, work: Work) -> None:
        await asyncio.sleep(0)
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the dead-letter topic is unreachable")
        self.letters.append(work)

    async def close(self) -> None:
        self.started = False


class MemoryLinks:
    """A link sink (``consumer.ports.LinkSink``) that can hold back its acknowledgements or fail."""

    def __init__(self) -> None:
        self.links: list[SpanLink] = []
        self.failures = 0
        self.attempts = 0
        self.holding = False
        self._release = asyncio.Event()

    async def start(self) -> None:
        pass

    async def send(self, links: Sequence[SpanLink]) -> None:
        self.attempts += 1
        if self.holding:
            await self._release.wait()
        await asyncio.sleep(0)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the links topic is unreachable")
        self.links.extend(links)

    def release(self) -> None:
        self.holding = False
        self._release.set()

    async def close(self) -> None:
        pass


class RecordingAlerts:
    """An alert sink that keeps what it was shown and the ownership it was given."""

    def __init__(self) -> None:
        self.seen: list[Mapping[str, Any]] = []
        self.owner: Callable[[str], bool] | None = None
        self.owner_calls = 0
        self.running = False

    async def start(self) -> None:
        self.running = True

    def observe(self, doc: Mapping[str, Any]) -> None:
        self.seen.append(doc)

    def set_owner(self, owns_component: Callable[[str], bool] | None) -> None:
        self.owner = owns_component
        self.owner_calls += 1

    async def stop(self) -> None:
        self.running = False


def config(**overrides: Any) -> ConsumerConfig:
    """Small bulks, fast timers; ``"bulk.max_actions": 2`` style overrides."""
    data: dict[str, Any] = {
        "kafka": {"topics": ["logpipe-access", "logpipe-stdout", "logpipe-trace"], "commit_interval": "1s"},
        "index": {"prefix": "lp"},
        "bulk": {"flush_interval": "100ms", "retry_initial": "100ms", "retry_max": "1s"},
        "shutdown_grace": "5s",
        "partial_line_timeout": "2s",
    }
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return ConsumerConfig.model_validate(data)


@dataclass
class LoopStory:
    """The consume loop on in-memory parts, and the lines to feed it."""

    cfg: ConsumerConfig = field(default_factory=config)
    encode: EncodeFn | None = None
    new_parser: Callable[[], Any] | None = None
    links: MemoryLinks | None = None
    span_metrics: SpanMetrics | None = None

    def __post_init__(self) -> None:
        self.clock = FakeClock()
        self.source = MemorySource(self.clock, self.cfg.kafka.max_poll_records)
        self.bulk = MemoryBulk()
        self.dead = MemoryDeadLetters()
        self.alerts = RecordingAlerts()
        self.loop = ConsumeLoop(
            self.cfg, self.source, self.bulk, self.dead, self.alerts, self.clock,
            encode=self.encode, new_parser=self.new_parser, links=self.links, span_metrics=self.span_metrics,
        )
        self._offsets: dict[str, int] = {}

    # --- lines ------------------------------------------------------------------------------

    def meta(self, log_type: str, file_no: int = 0) -> SourceMeta:
        return SourceMeta(
            node="node-1", namespace="shop", pod="pay-gw-1", pod_uid="uid-1", container="app",
            component="pay-gw", log_type=log_type, path=f"/var/log/pay-gw-1/{log_type}-{file_no}.log",
            file_id=f"fingerprint::{log_type}-{file_no}",
        )

    def _record(self, meta: SourceMeta, line: bytes) -> LineRecord:
        offset = self._offsets.get(meta.file_id, 0)
        self._offsets[meta.file_id] = offset + len(line) + 1
        return LineRecord(meta, offset, line, 1_795_744_805_000)  # read 5 s after the lines were written

    def access_lines(self, n: int, file_no: int = 0) -> list[LineRecord]:
        meta = self.meta("access", file_no)
        return [
            self._record(meta, orjson.dumps(
                {"time": "2026-11-27T10:00:00.123+08:00", "method": "GET", "path": f"/api/{i}", "status": 200}
            ))
            for i in range(n)
        ]

    def cri_lines(self, text: str, split: int = 0, file_no: int = 0) -> list[LineRecord]:
        """One stdout message as CRI records; ``split`` > 0 cuts it into P fragments and an F."""
        meta = self.meta("stdout", file_no)
        parts = [text[i : i + split] for i in range(0, len(text), split)] if split else [text]
        return [
            self._record(meta, f"2026-11-27T02:00:00.1Z stdout {'F' if k == len(parts) - 1 else 'P'} {p}".encode())
            for k, p in enumerate(parts)
        ]

    def produce(self, tp: TopicPartitionKey, records: Sequence[LineRecord]) -> list[int]:
        """Append ``records`` to partition ``tp`` as the shipper writes them; their Kafka offsets."""
        return [self.source.append(tp, r.value, r.headers(), r.key) for r in records]

    # --- running ----------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ConsumeLoop]:
        task = asyncio.create_task(self.loop.run())
        try:
            await self.until(lambda: self.loop.started or task.done())
            if task.done():
                task.result()
            yield self.loop
        finally:
            self.loop.request_stop()
            for _ in range(200):  # the stop may wait on timers (grace): keep the clock moving
                if task.done():
                    break
                await self.clock.advance(0.05)
            task.result()

    async def run_for(self, seconds: float, step: float = 0.05) -> None:
        """Let ``seconds`` of virtual time pass, in small steps (every timer fires on time)."""
        for _ in range(round(seconds / step)):
            await self.clock.advance(step)

    async def until(self, pred: Callable[[], bool], seconds: float = 30.0, step: float = 0.05) -> None:
        """Advance time in small steps until ``pred()`` holds (fails after ``seconds`` of virtual time)."""
        for _ in range(round(seconds / step)):
            if pred():
                return
            await self.clock.advance(step)
        assert pred(), f"not reached within {seconds} virtual seconds"
