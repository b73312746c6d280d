"""Batches of lines on their way to the sink: bounded, retried, acknowledged in order per stream.

The read loop :meth:`Pipeline.append`s what a tailer read; lines collect in one open batch until it
holds ``batch_max_lines`` lines or ``batch_max_bytes`` bytes, or ``linger`` has passed. A sealed
batch registers, per stream, the byte range it covers with the stream's
:class:`~logpipe.core.acks.OrderedAcks` and is sent; at most ``max_batches_in_flight`` sends run at once.
Lines travel as :class:`~logpipe.core.envelope.LineRun` s (one object per read, not per line), cut where a
batch is full; a sink with ``send_runs`` gets them as they are, others get ``LineRecord`` s. One
retry loop (:meth:`Pipeline._send_until_done`) serves both kinds of sink:

- DELIVERED: ``on_delivered(batch)`` is called; it is the ack path, the only place checkpoints move.
- ERRORED: sent again, forever, with exponential backoff (a broker outage pauses shipping, it never
  drops a line).
- REJECTED: the batch is split into single lines; a line the destination still rejects is sent to
  the dead-letter topic (flags ``deadletter``, ``reason:rejected``), cut to ``dead_letter_max_bytes``;
  if even that is refused it is logged and counted, then acknowledged so the stream goes on.

Backpressure: :meth:`wait_for_capacity` blocks the reader while ``max_bytes_in_flight`` bytes are read
but not acknowledged, so a slow or absent sink pauses reading instead of filling memory.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRecord, LineRun
from logpipe.core.supervisor import Heartbeat
from shipper import telemetry
from shipper.sinks.base import Sink
from shipper.tailer import Chunk, Tailer, dead_letter_flags

log = logging.getLogger("logpipe.shipper.pipeline")


@dataclass(frozen=True, slots=True)
class PipelineLimits:
    """Batching, in-flight bounds and retry pacing (from ``ShipperConfig.pipeline``)."""

    batch_max_lines: int = 4096
    batch_max_bytes: int = 1024 * 1024
    linger: float = 0.05
    max_bytes_in_flight: int = 16 * 1024 * 1024
    max_batches_in_flight: int = 8
    retry_initial: float = 0.2
    retry_max: float = 10.0
    dead_letter_max_bytes: int = 16 * 1024


@dataclass(eq=False)
class Batch:
    """Lines to deliver together, and the byte range of each stream they (and skipped bytes) cover."""

    runs: list[LineRun] = field(default_factory=list)
    ranges: dict[Tailer, list[int]] = field(default_factory=dict)  # tailer -> [start, end)
    nbytes: int = 0
    nlines: int = 0
    created: float = 0.0
    attempts: int = 0
    by_type: dict[str, list[int]] = field(default_factory=dict)  # log type -> [lines, bytes]

    @property
    def records(self) -> list[LineRecord]:
        """The lines as :class:`LineRecord` objects (for sinks without ``send_runs``)."""
        return [r for run in self.runs for r in run.records()]

    def cover(self, t: Tailer, start: int, end: int) -> None:
        r = self.ranges.get(t)
        if r is None:
            self.ranges[t] = [start, end]
        else:
            r[1] = end  # contiguous: a stream's reads follow each other

    def take(self, run: LineRun, log_type: str) -> None:
        self.runs.append(run)
        n, nb = len(run.values), run.nbytes
        self.nlines += n
        self.nbytes += nb
        counts = self.by_type.get(log_type)
        if counts is None:
            self.by_type[log_type] = [n, nb]
        else:
            counts[0] += n
            counts[1] += nb


OnDelivered = Callable[[Batch], None]


class Pipeline:
    """The open batch, the sends in flight, and the bound on bytes in flight."""

    def __init__(self, sink: Sink, limits: PipelineLimits, on_delivered: OnDelivered) -> None:
        self.sink = sink
        self.limits = limits
        self._on_delivered = on_delivered
        self._open = Batch()
        self._inflight_bytes = 0
        self._capacity = asyncio.Event()
        self._capacity.set()
        self._slots = asyncio.Semaphore(limits.max_batches_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        # Turns on every send outcome (delivered or failed): an outage still turns it, a hung send does not.
        self.heartbeat = Heartbeat("delivery", idle=lambda: not self._tasks)

    # --- the reader's side -----------------------------------------------------------------------

    def append(self, t: Tailer, chunk: Chunk) -> None:
        """Take the lines of one read; seals and sends batches as they fill."""
        self._add_inflight(chunk.nbytes)
        lim = self.limits
        runs = chunk.runs
        log_type = t.meta.log_type
        start = chunk.start  # the part of the chunk not yet covered by a sealed batch
        last = len(runs) - 1
        for i, run in enumerate(runs):
            while True:
                b = self._open
                n = len(run.values)
                room_lines = lim.batch_max_lines - b.nlines
                room_bytes = lim.batch_max_bytes - b.nbytes
                if n <= room_lines and run.nbytes <= room_bytes:
                    b.take(run, log_type)
                    self._touch()
                    if b.nlines >= lim.batch_max_lines or b.nbytes >= lim.batch_max_bytes:
                        end = runs[i + 1].offset if i < last else chunk.end
                        b.cover(t, start, end)
                        start = end
                        self.seal()
                    break
                # the run does not fit: cut it where the open batch is full
                k = bisect.bisect_right(list(itertools.accumulate(map(len, run.values[:room_lines]))), room_bytes)
                if k == 0:
                    if b.nlines:
                        if run.offset > start:
                            b.cover(t, start, run.offset)
                            start = run.offset
                        self.seal()
                        continue
                    k = 1  # one line larger than a batch goes alone
                if k >= n:
                    b.take(run, log_type)
                    self._touch()
                    end = runs[i + 1].offset if i < last else chunk.end
                    b.cover(t, start, end)
                    start = end
                    self.seal()
                    break
                head, run = run.split(k)
                b.take(head, log_type)
                self._touch()
                b.cover(t, start, run.offset)
                start = run.offset
                self.seal()
        if chunk.end > start or not runs:
            self._open.cover(t, start, chunk.end)
            self._touch()

    def _touch(self) -> None:
        if not self._open.created:
            self._open.created = time.monotonic()

    async def wait_for_capacity(self) -> None:
        """Return once fewer than ``max_bytes_in_flight`` bytes are unacknowledged."""
        await self._capacity.wait()

    @property
    def has_capacity(self) -> bool:
        return self._capacity.is_set()

    @property
    def bytes_in_flight(self) -> int:
        return self._inflight_bytes

    def _add_inflight(self, n: int) -> None:
        self._inflight_bytes += n
        if self._inflight_bytes >= self.limits.max_bytes_in_flight:
            self._capacity.clear()
        elif not self._capacity.is_set():
            self._capacity.set()
        telemetry.BYTES_IN_FLIGHT.set(self._inflight_bytes)

    # --- sealing and sending ---------------------------------------------------------------------

    def seal(self) -> None:
        """Close the open batch, register its ranges with each stream's acks, and send it."""
        b = self._open
        if not b.ranges:
            return
        self._open = Batch()
        for t, (s, e) in b.ranges.items():
            if e > s:
                t.acks.add(s, e)
        if not self._tasks:
            self.heartbeat.beat()  # work starts now: the stall clock starts now, not at the last outcome
        task = asyncio.get_running_loop().create_task(self._deliver(b))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)

    async def _deliver(self, b: Batch) -> None:
        if b.runs:
            async with self._slots:
                await self._send_until_done(b.runs, b)
        self._add_inflight(-b.nbytes)
        try:
            self._on_delivered(b)
        except Exception:  # a bug in the ack path must be seen, not swallowed by the task
            log.exception("ack path failed")
            raise

    async def _send(self, runs: list[LineRun]) -> BatchStatus:
        """One attempt: runs to a sink with ``send_runs``, else their lines as records."""
        send_runs = getattr(self.sink, "send_runs", None)
        if send_runs is not None:
            return cast(BatchStatus, await send_runs(runs))
        return await self.sink.send([r for run in runs for r in run.records()])

    async def _send_until_done(self, runs: list[LineRun], b: Batch) -> None:
        """Send ``runs`` until each line is delivered or dead-lettered (ERRORED: again, forever)."""
        nlines = sum(len(run) for run in runs)
        attempt = 0
        while True:
            attempt += 1
            b.attempts += 1
            try:
                status = await self._send(runs)
                error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sink bug or an unexpected client error: treat as transient
                status, error = BatchStatus.ERRORED, f"{type(exc).__name__}: {exc}"
            self.heartbeat.beat()
            if status is BatchStatus.DELIVERED:
                telemetry.BatchAcked(self.sink.name, nlines, attempt).emit()
                return
            if status is BatchStatus.REJECTED:
                await self._split_rejected(runs, b)
                return
            await self._backoff(attempt, nlines, error)

    async def _backoff(self, attempt: int, nlines: int, error: str) -> None:
        delay = min(self.limits.retry_max, self.limits.retry_initial * (2 ** min(attempt - 1, 16)))
        delay *= random.uniform(0.8, 1.2)
        telemetry.BatchSendFailed(self.sink.name, nlines, attempt, round(delay, 3), error or "errored").emit()
        await asyncio.sleep(delay)

    async def _split_rejected(self, runs: list[LineRun], b: Batch) -> None:
        records = [r for run in runs for r in run.records()]
        if len(records) > 1:
            for r in records:
                await self._send_until_done([LineRun.of(r)], b)
            return
        r = records[0]
        telemetry.LineDeadLettered(r.meta.path, r.meta.log_type, r.offset, "rejected").emit()
        if "deadletter" in r.flags:
            return  # the dead-letter topic refused it too: logged and counted above, nothing more to do
        dl = LineRecord(r.meta, r.offset, r.value[: self.limits.dead_letter_max_bytes], r.read_ts_ms,
                        (*dead_letter_flags("rejected"), *r.flags), r.topic)
        await self._send_until_done([LineRun.of(dl)], b)

    # --- linger and shutdown --------------------------------------------------------------------

    async def run(self) -> None:
        """Seal the open batch when it has lingered (runs until cancelled)."""
        tick = max(0.005, self.limits.linger / 2)
        while True:
            await asyncio.sleep(tick)
            b = self._open
            if b.ranges and time.monotonic() - b.created >= self.limits.linger:
                self.seal()

    async def drain(self, timeout: float) -> bool:
        """Seal and wait until everything is acknowledged; False if ``timeout`` passed first."""
        self.seal()
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def close(self) -> None:
        """Cancel the sends still running (their lines stay unacknowledged: resent after a restart)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
