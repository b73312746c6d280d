"""Offsets and rebalances: what may be committed, when it is, and what happens when partitions move.

:class:`Commits` owns the member's :class:`consumer.offsets.PartitionOffsets` (per partition, the
contiguous prefix of resolved records) and is the source's ``PartitionListener``:

- assigned: each new partition starts a fresh generation (its own parser, ``consumer/ingest.py``);
- revoked: the open bulk request is sent, in-flight work of those partitions gets ``shutdown_grace``
  to finish — woken by each resolution, not by polling — then the resolved prefix is committed
  while this member still owns them; what is still unresolved is abandoned to the next owner, who
  redoes it (deterministic ids: no duplicates). Work of a revoked generation that completes later
  resolves nothing, so it cannot move the next owner's commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from consumer.offsets import PartitionOffsets
from consumer.ports import Clock, Source
from consumer.telemetry import PartitionsAssigned, PartitionsRevoked
from consumer.work import TopicPartitionKey


class RebalanceSteps(Protocol):
    """What the rest of the loop does around a rebalance (``consumer/loop.py``)."""

    def flush(self) -> None:
        """Send the open bulk request now (it may hold work of the partitions being revoked)."""
        ...

    def assigned(self, new: Sequence[TopicPartitionKey]) -> None: ...

    def revoked(self, gone: Sequence[TopicPartitionKey]) -> None: ...


class Commits:
    """Commit positions of the assigned partitions, on a schedule and around rebalances."""

    def __init__(
        self, source: Source, clock: Clock, commit_interval: float, grace: float, steps: RebalanceSteps
    ) -> None:
        self.offsets = PartitionOffsets()
        self._source = source
        self._clock = clock
        self._interval = commit_interval
        self._grace = grace
        self._steps = steps
        self._next = clock.monotonic() + commit_interval
        self._resolved = asyncio.Event()
        self._waiting = 0

    def resolved(self) -> None:
        """Some work was resolved (the dispatcher says so): wakes a revoke waiting for its partitions."""
        if self._waiting:
            self._resolved.set()

    async def commit(self, only: Sequence[TopicPartitionKey] | None = None) -> None:
        """Commit every position that moved (of ``only`` those partitions)."""
        positions = self.offsets.committable()
        if only is not None:
            positions = {tp: p for tp, p in positions.items() if tp in only}
        if positions and await self._source.commit(positions):
            self.offsets.mark_committed(positions)

    async def commit_if_due(self) -> bool:
        """Commit when ``commit_interval`` has passed since the last scheduled commit; True if it had."""
        if self._clock.monotonic() < self._next:
            return False
        await self.commit()
        self._next = self._clock.monotonic() + self._interval
        return True

    async def partitions_assigned(self, partitions: Sequence[TopicPartitionKey]) -> None:
        """Track the new partitions from scratch (a partition kept across the rebalance keeps its state)."""
        new = [tp for tp in partitions if self.offsets.state(tp) is None]
        for tp in new:
            self.offsets.assign(tp)
        self._steps.assigned(new)
        PartitionsAssigned(partitions=tuple(f"{t}/{p}" for t, p in partitions)).emit()

    async def partitions_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        """Finish (within the grace) or abandon in-flight work of ``partitions``, commit, forget them."""
        if not partitions:
            return
        self._steps.flush()
        await self.settle(partitions, self._grace)
        await self.commit(only=partitions)
        abandoned = 0
        for tp in partitions:
            abandoned += self.offsets.unresolved(tp)
            self.offsets.revoke(tp)
        self._steps.revoked(partitions)
        PartitionsRevoked(partitions=tuple(f"{t}/{p}" for t, p in partitions), abandoned=abandoned).emit()

    async def settle(self, partitions: Sequence[TopicPartitionKey], timeout: float) -> bool:
        """Wait until every fetched record of ``partitions`` is resolved, at most ``timeout`` seconds."""
        deadline = self._clock.monotonic() + timeout
        self._waiting += 1
        try:
            while any(self.offsets.unresolved(tp) > 0 for tp in partitions):
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    return False
                self._resolved.clear()
                await self._clock.wait(self._resolved, remaining)
            return True
        finally:
            self._waiting -= 1
