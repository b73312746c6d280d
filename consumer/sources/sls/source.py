"""The SLS source: a member of an SLS consumer group, read by the consume loop like a Kafka consumer.

The loop (``consumer/loop.py``) sees partitions ``(logstore, shard)`` and integer offsets, as for
Kafka (``consumer.ports.Source``). SLS has no per-log offsets, only opaque cursors between LogGroups,
so each PullLogs answer of a shard becomes one *batch* with a sequence number ``b`` (counted from
the assignment), and its logs get the offsets ``b << 32 | i``. The batch remembers the cursor it
was pulled at and the cursor after it; committing a position then saves, as the shard's SLS
checkpoint, the cursor after the last whole batch below it — or, for a position inside a batch, the
cursor that batch started at (its logs are read again after a crash; their ``_id`` s come from the
logs themselves, not from cursors, so Elasticsearch stores them once). The gaps between batches are offsets that no
log has; the loop's bookkeeping resolves such skipped offsets at once, as it does for Kafka's.

Membership runs in a task of its own: every ``heartbeat_interval`` it heartbeats each logstore with
the shards held and hears which to hold. Shards to give up are revoked through the listener first
(the loop commits what is resolved, while SLS still counts them as ours), then left out of the next
heartbeat; new shards start at their checkpoint (or ``start_from``). A member that stops
heartbeating loses its shards to the others after the group's ``timeout``.

So the membership task must never die quietly (the member would go on pulling shards SLS has given
to others): under the app's :class:`~logpipe.core.supervisor.Supervisor` it is restarted with
backoff, and one that keeps failing makes the process commit and exit 1; its :class:`Heartbeat`
``sls-membership`` turns after every attempt, so a call that hangs turns ``/healthz`` failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from consumer.sources.sls.config import SlsSourceConfig
from consumer.sources.sls.records import SlsRecord, log_records
from consumer.sources.sls.service import Pulled, SlsCallError, SlsConsumerService
from logpipe.core.supervisor import Heartbeat, Supervisor

log = logging.getLogger("logpipe.consumer.sls")

EMPTY_PULL_PAUSE = 0.2
"""Seconds a shard waits after a pull that found nothing new."""

SHIFT = 32
"""Offsets are ``batch << SHIFT | index in batch``: a PullLogs answer holds far fewer than 2**32 logs."""

TopicPartitionKey = tuple[str, int]


@dataclass(slots=True)
class _Batch:
    start: str
    """The cursor the batch was pulled at."""
    end: str
    """The cursor after it."""
    count: int


@dataclass(slots=True)
class _Shard:
    logstore: str
    shard: int
    cursor: str
    """Where the next pull starts."""
    next_seq: int = 0
    batches: dict[int, _Batch] = field(default_factory=dict)
    pulling: asyncio.Task[Pulled] | None = None
    idle_until: float = 0.0
    """After an empty pull the shard waits a little before the next (SLS counts every request)."""
    saved: str = ""
    """The last checkpoint saved."""


class SlsSource:
    """``consumer.ports.Source`` over SLS logstores; built by ``consumer/app.py``."""

    def __init__(
        self, cfg: SlsSourceConfig, service: SlsConsumerService | None = None, supervisor: Supervisor | None = None,
    ) -> None:
        self.cfg = cfg
        self.service = service or SlsConsumerService(cfg)
        self._supervisor = supervisor
        self._member = False
        # Before start (SLS not reached yet) and after close nothing runs that could stall.
        self.membership = Heartbeat("sls-membership", idle=lambda: not self._member)
        if supervisor is not None:
            supervisor.watch(self.membership)
        self._listener: object | None = None
        self._held: dict[TopicPartitionKey, _Shard] = {}
        self._paused = False
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._heartbeat_ok = False
        self.last_error = ""

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, listener: object) -> None:
        """Create or update the group on every logstore and take the first shards; raises when SLS
        cannot be reached or refuses (the caller retries)."""
        self._listener = listener
        for logstore in self.cfg.logstores:
            await self.service.ensure_group(logstore)
        await self._beat()  # the first assignment before the loop fetches
        self.membership.beat()
        self._member = True
        if self._supervisor is not None:
            self._supervisor.start("sls-heartbeat", self._heartbeats)
        else:
            self._heartbeat_task = asyncio.create_task(self._heartbeats(), name="sls-heartbeat")

    async def close(self) -> None:
        """Stop heartbeating (SLS hands the shards on after ``timeout``) and cancel pulls in flight.

        The loop has committed what it could before; revoking here lets it commit the final positions.
        """
        self._member = False
        if self._supervisor is not None:
            await self._supervisor.stop("sls-heartbeat")
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
            self._heartbeat_task = None
        if self._held and self._listener is not None:
            await self._revoke(list(self._held))
        for st in self._held.values():
            if st.pulling is not None:
                st.pulling.cancel()
        self._held.clear()

    # -- membership -------------------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        hb = self.membership
        while True:
            with hb.waiting():
                await asyncio.sleep(self.cfg.heartbeat_interval)
            try:
                await self._beat()
            except SlsCallError as exc:
                # SLS keeps our shards until the group timeout: keep reading them, and say so.
                self._heartbeat_ok = False
                self.last_error = str(exc)
                log.warning("SlsHeartbeatFailed", extra={"fields": {"error": str(exc)[:300]}})
            except Exception:
                self._heartbeat_ok = False
                raise  # not an SLS answer: a bug or a broken client, for the supervisor
            hb.beat()

    async def _beat(self) -> None:
        for logstore in self.cfg.logstores:
            held = sorted(s for (ls, s) in self._held if ls == logstore)
            wanted = set(await self.service.heartbeat(logstore, held))
            gone = [(logstore, s) for s in held if s not in wanted]
            if gone:
                await self._revoke(gone)
            new = [(logstore, s) for s in sorted(wanted) if (logstore, s) not in self._held]
            if new:
                for tp in new:
                    self._held[tp] = _Shard(tp[0], tp[1], await self._start_cursor(*tp))
                await self._listener.partitions_assigned(new)  # type: ignore[union-attr]
        self._heartbeat_ok = True
        self._wakeup.set()

    async def _start_cursor(self, logstore: str, shard: int) -> str:
        saved = await self.service.checkpoint(logstore, shard)
        return saved or await self.service.cursor(logstore, shard, self.cfg.start_from)

    async def _revoke(self, tps: Sequence[TopicPartitionKey]) -> None:
        await self._listener.partitions_revoked(list(tps))  # type: ignore[union-attr]
        for tp in tps:
            st = self._held.pop(tp, None)
            if st is not None and st.pulling is not None:
                st.pulling.cancel()

    @property
    def healthy(self) -> bool:
        """The last heartbeat got an answer."""
        return self._heartbeat_ok

    # -- fetching ---------------------------------------------------------------------------------

    async def fetch(self, timeout_s: float) -> Mapping[TopicPartitionKey, Sequence[SlsRecord]]:
        if self._paused or not self._held:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout_s)
            except TimeoutError:
                pass
            return {}
        self._start_pulls()
        pending = [st.pulling for st in self._held.values() if st.pulling is not None]
        if not pending:  # every shard is resting after an empty pull: wait for the first to be due
            due = min(st.idle_until for st in self._held.values()) - time.monotonic()
            await asyncio.sleep(max(0.0, min(timeout_s, due)))
            return {}
        if not any(t.done() for t in pending):
            await asyncio.wait(pending, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        out: dict[TopicPartitionKey, Sequence[SlsRecord]] = {}
        for tp, st in list(self._held.items()):
            task = st.pulling
            if task is None or not task.done():
                continue
            st.pulling = None
            self._held[tp] = self._held.pop(tp)  # to the back of the line: pull slots go round every shard
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                self.last_error = str(exc)
                log.warning("SlsPullFailed", extra={"fields": {"shard": f"{tp[0]}/{tp[1]}", "error": str(exc)[:300]}})
                continue  # pulled again on the next fetch, from the same cursor
            records = self._records(st, task.result())
            if records:
                out[tp] = records
            else:
                st.idle_until = time.monotonic() + EMPTY_PULL_PAUSE
        return out

    def _start_pulls(self) -> None:
        running = sum(1 for st in self._held.values() if st.pulling is not None)
        now = time.monotonic()
        for st in self._held.values():
            if running >= self.cfg.max_inflight_pulls:
                break
            if st.pulling is None and st.idle_until <= now:
                st.pulling = asyncio.create_task(self.service.pull(st.logstore, st.shard, st.cursor))
                running += 1

    def _records(self, st: _Shard, pulled: Pulled) -> list[SlsRecord]:
        start, st.cursor = st.cursor, pulled.next_cursor
        if not pulled.groups:
            return []
        seq = st.next_seq
        st.next_seq += 1
        first = seq << SHIFT
        records: list[SlsRecord] = []
        location = f"{st.logstore}/{st.shard}"
        for group in pulled.groups:
            records.extend(
                log_records(group, first_offset=first + len(records), location=location,
                            default_type=self.cfg.default_type)
            )
        st.batches[seq] = _Batch(start, pulled.next_cursor, len(records))
        return records

    # -- pause, commits ---------------------------------------------------------------------------

    def pause_all(self) -> bool:
        changed = not self._paused
        self._paused = True
        return changed

    def resume_all(self) -> bool:
        changed = self._paused
        self._paused = False
        return changed

    @property
    def paused(self) -> bool:
        return self._paused

    def reapply_pause(self) -> None:
        """Nothing to do: pausing is one flag over every shard."""

    def partitions_for(self, topic: str) -> Collection[int] | None:
        """None: SLS spreads a Component's logs over every shard, so no shard owns a Component."""
        return None

    def cursor_for(self, tp: TopicPartitionKey, position: int) -> str | None:
        """The SLS checkpoint for the loop's commit ``position`` (None: nothing to save)."""
        st = self._held.get(tp)
        if st is None:
            return None
        seq, index = position >> SHIFT, position & ((1 << SHIFT) - 1)
        batch = st.batches.get(seq)
        if batch is None:
            return None
        return batch.end if index >= batch.count else batch.start

    async def commit(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        ok = True
        for tp, position in positions.items():
            st = self._held.get(tp)
            cursor = self.cursor_for(tp, position)
            if st is None or cursor is None or cursor == st.saved:
                continue
            try:
                await self.service.save_checkpoint(tp[0], tp[1], cursor)
            except SlsCallError as exc:
                ok = False
                self.last_error = str(exc)
                fields = {"shard": f"{tp[0]}/{tp[1]}", "error": str(exc)[:300]}
                log.warning("SlsCheckpointFailed", extra={"fields": fields})
                continue
            st.saved = cursor
            seq = position >> SHIFT
            for old in [s for s in st.batches if s < seq]:
                del st.batches[old]  # wholly below the saved position
        return ok

    def lag(self, tp: TopicPartitionKey, position: int) -> int | None:
        return None
