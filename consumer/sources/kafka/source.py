"""The only module that talks to aiokafka's consumer: fetch, pause/resume, commit, rebalance callbacks.

:class:`KafkaSource` is the Kafka implementation of ``consumer.ports.Source``. Auto-commit is off:
offsets are committed only through :meth:`KafkaSource.commit`, with positions computed by
``consumer/commits.py`` (resolved records only). A rebalance is forwarded to the
``consumer.ports.PartitionListener`` given to :meth:`KafkaSource.start` as plain ``(topic,
partition)`` keys; the revoke callback runs while this member still owns the partitions, so it may
commit their final positions. After a clean stop (:attr:`KafkaSource.leave_on_close`) a static
member is removed from the group (``membership.py``), so its partitions move at once.

Whether the brokers answer (``broker_error``, for ``/readyz``): an idle or paused consumer cannot tell
an outage from quiet topics by its fetches, so after ``probe_timeout`` without records a metadata
request asks, in the background; a black hole or a broker that never answers shows within about two
``probe_timeout``s, and clears at the first answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from consumer.config import KafkaConfig
from consumer.ports import PartitionListener
from consumer.sources.kafka.membership import leave_as_static_member
from consumer.telemetry import CommitFailed, OffsetsCommitted
from consumer.work import TopicPartitionKey
from logpipe.core.kafka_security import aiokafka_kwargs, start_guarded

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, target: PartitionListener) -> None:
        self._target = target

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._target.partitions_revoked([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._target.partitions_assigned([(tp.topic, tp.partition) for tp in assigned])


class KafkaSource:
    """A consumer-group member reading ``cfg.topics`` with manual commits."""

    def __init__(self, cfg: KafkaConfig) -> None:
        self.cfg = cfg
        self._consumer: AIOKafkaConsumer = self._new_consumer()
        self._paused = False
        self._contact = time.monotonic()  # the last time a broker answered
        self._error: str | None = None
        self._probe: asyncio.Task[None] | None = None
        self._commit_since: float | None = None  # a commit waiting for the coordinator since then
        self._joined = False
        self.leave_on_close = False
        """Set on a clean stop (SIGTERM): a static member then leaves the group on close. Not after a
        failure: the restarted container comes back under the same instance id and takes its partitions."""

    def _new_consumer(self) -> AIOKafkaConsumer:
        cfg = self.cfg
        return AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap,
            group_id=cfg.group_id,
            client_id=cfg.client_id,
            group_instance_id=cfg.instance_id or None,  # static membership: a restart keeps the partitions
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=cfg.max_poll_records,
            fetch_max_bytes=cfg.fetch_max_bytes,
            session_timeout_ms=int(cfg.session_timeout * 1000),
            # Heartbeats are how a member hears of a rebalance: each second, so a member that left
            # (or came back) is followed within about a second, not session_timeout / 3.
            heartbeat_interval_ms=min(1000, int(cfg.session_timeout * 1000) // 3),
            # Topics created after start (e.g. logpipe-trace) are picked up within this period.
            metadata_max_age_ms=30_000,
            request_timeout_ms=int(cfg.request_timeout * 1000),
            **aiokafka_kwargs(cfg),
        )

    async def start(self, listener: PartitionListener) -> None:
        """Connect and join the group (partitions arrive through ``listener``).

        Raises when the brokers cannot be reached; the source can be started again afterwards.
        """
        try:
            await start_guarded(self._consumer.start, self.cfg, self.cfg.bootstrap)
        except BaseException:
            await self._consumer.stop()
            self._consumer = self._new_consumer()  # a failed client is not restartable
            raise
        self._consumer.subscribe(topics=list(self.cfg.topics), listener=_Rebalance(listener))
        self._joined = True

    async def fetch(self, timeout_s: float) -> dict[TopicPartitionKey, list[Record]]:
        """Records fetched within ``timeout_s``, per partition, in offset order (empty while paused)."""
        batches: dict[Any, list[Record]] = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000))
        out = {(tp.topic, tp.partition): recs for tp, recs in batches.items() if recs}
        if out:
            self._answered()
        elif time.monotonic() - self._contact > self.cfg.probe_timeout and (self._probe is None or self._probe.done()):
            self._probe = asyncio.create_task(self._check_brokers())
        return out

    @property
    def broker_error(self) -> str | None:
        """Why the brokers count as unreachable now, or None while they answer."""
        since = self._commit_since
        if self._error is None and since is not None and time.monotonic() - since > self.cfg.probe_timeout:
            # The loop awaits its commits: while one hangs it does not fetch, so the probe cannot run.
            return f"no answer from Kafka to a commit within {self.cfg.probe_timeout:g}s"
        return self._error

    def _answered(self) -> None:
        self._contact = time.monotonic()
        self._error = None

    async def _check_brokers(self) -> None:
        """One metadata request (public ``topics()``); bounded by ``probe_timeout``, never raises."""
        try:
            await asyncio.wait_for(self._consumer.topics(), self.cfg.probe_timeout)
        except TimeoutError:
            self._error = f"no answer from Kafka within {self.cfg.probe_timeout:g}s"
        except Exception as exc:
            self._error = f"Kafka: {exc!r}"
        else:
            self._answered()

    def _tps(self, keys: Iterable[TopicPartitionKey]) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in keys]

    def pause_all(self) -> bool:
        """Stop fetching every assigned partition (the member stays in the group); True if it changed."""
        assigned = self._consumer.assignment()
        if assigned:
            self._consumer.pause(*assigned)
        changed = not self._paused
        self._paused = True
        return changed

    def resume_all(self) -> bool:
        """Fetch every assigned partition again; True if it changed."""
        assigned = self._consumer.assignment()
        if assigned:
            self._consumer.resume(*assigned)
        changed = self._paused
        self._paused = False
        return changed

    @property
    def paused(self) -> bool:
        return self._paused

    def reapply_pause(self) -> None:
        """Pause newly assigned partitions too while fetching is paused."""
        if self._paused:
            self.pause_all()

    def assignment(self) -> set[TopicPartitionKey]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def partitions_for(self, topic: str) -> set[int] | None:
        """The partition ids of ``topic`` per the cluster metadata (None while unknown)."""
        parts: set[int] | None = self._consumer.partitions_for_topic(topic)
        return parts

    async def commit(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        """Commit ``positions`` (next offset to read) for partitions still assigned; False on failure."""
        owned = self._consumer.assignment()
        offsets = {TopicPartition(t, p): pos for (t, p), pos in positions.items() if TopicPartition(t, p) in owned}
        if not offsets:
            return True
        self._commit_since = time.monotonic()
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            CommitFailed(error=repr(exc)).emit()
            return False
        finally:
            self._commit_since = None
        self._answered()
        OffsetsCommitted(offsets={f"{tp.topic}/{tp.partition}": o for tp, o in offsets.items()}).emit()
        return True

    def lag(self, tp: TopicPartitionKey, position: int) -> int | None:
        """Records between ``position`` and the partition's high watermark, if known."""
        hw = self._consumer.highwater(TopicPartition(*tp))
        return None if hw is None else max(0, hw - position)

    async def close(self) -> None:
        """Leave the group (commits are the caller's business, done before)."""
        if self._probe is not None:
            self._probe.cancel()
        await self._consumer.stop()
        if self._joined and self.leave_on_close and self.cfg.instance_id:
            await leave_as_static_member(self.cfg)
        self._joined = False
