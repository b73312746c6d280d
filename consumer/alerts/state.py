"""Mutable alert state kept apart from the frozen rules: sliding windows, firing groups, silences.

One :class:`RuleState` per rule holds one :class:`GroupState` per ``group_by`` value, bounded by
``max_groups`` with least-recently-used eviction that spares firing groups while it can (evicting
a firing group would lose it silently; evictions are counted either way).

Windows are bucketed: a window of W seconds keeps at most :data:`BUCKETS` + 1 buckets of W/BUCKETS
seconds, so memory per group is constant whatever the log rate, and counts are exact up to one
bucket (1 % of W) at the old edge of the window.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consumer.alerts.latency import LatencyWindow

GroupKey = tuple[tuple[str, str], ...]
BUCKETS = 100


class Window:
    """Counts of (matching, all) documents in a sliding window of ``span`` seconds."""

    __slots__ = ("_buckets", "_hits", "_total", "span", "width")

    def __init__(self, span: float) -> None:
        self.span = span
        self.width = max(span / BUCKETS, 0.001)
        self._buckets: deque[list[int]] = deque()  # [bucket index, hits, total]
        self._hits = 0
        self._total = 0

    def _expire(self, now: float) -> None:
        # a bucket counts while any part of it lies inside (now - span, now]
        oldest = math.floor((now - self.span) / self.width)
        b = self._buckets
        while b and b[0][0] < oldest:
            _, h, t = b.popleft()
            self._hits -= h
            self._total -= t

    def add(self, now: float, hit: bool) -> None:
        """Record one document at ``now`` (times may repeat; earlier times join the newest bucket)."""
        self._expire(now)
        idx = math.floor(now / self.width)
        b = self._buckets
        if b and b[-1][0] >= idx:
            bucket = b[-1]
        else:
            bucket = [idx, 0, 0]
            b.append(bucket)
        bucket[2] += 1
        self._total += 1
        if hit:
            bucket[1] += 1
            self._hits += 1

    def counts(self, now: float) -> tuple[int, int]:
        """(matching, all) documents within the window ending at ``now``."""
        self._expire(now)
        return self._hits, self._total

    def empty(self, now: float) -> bool:
        self._expire(now)
        return not self._buckets


@dataclass
class GroupState:
    """One group of one rule: its window, whether it fires, and when it last notified."""

    key: GroupKey
    window: Window | None = None
    latency: LatencyWindow | None = None
    """The durations of a latency condition's window (``consumer/alerts/latency.py``)."""
    checked_at: float = -math.inf
    """When a document last made a latency group compute its statistic (at most every 100 ms)."""
    unchecked: bool = False
    """A duration that may lift the latency statistic arrived and the statistic was not computed
    since (throttled): the tick computes it."""
    last_seen: float = 0.0
    """Last matching document (absence), or creation time for a seeded Component."""
    last_true: float | None = None
    """Last time the condition held."""
    firing: bool = False
    started_at: float = 0.0
    last_sent: float = 0.0
    last_asserted: float = 0.0
    hits: int = 0
    """Matching documents since the group started firing (or since it was created)."""
    suppressed: int = 0
    """Matches not notified because of ``realert`` since the last notification."""
    last_notified: tuple[int, int, str] = (0, 0, "")
    """(count, total, why) of the last new/realert notification, repeated by re-assertions."""
    last_value: float | None = None
    """The latency statistic of that notification."""
    samples: deque[str] = field(default_factory=deque)
    last_doc: Mapping[str, Any] | None = None
    restored: bool = False
    """Firing as read back from Alertmanager after a restart, not yet confirmed by this process: it
    is not re-asserted, and is forgotten without a *resolved* (Alertmanager lets it expire at its
    ``endsAt``) if the condition does not hold again within the grace — another replica may own it."""
    restored_annotations: dict[str, str] | None = None
    """Annotations read back from Alertmanager for a group restored after a restart."""

    def add_sample(self, line: str, keep: int, chars: int) -> None:
        """Keep the last ``keep`` matching lines, each truncated to ``chars``."""
        if keep <= 0:
            return
        if len(line) > chars:
            line = line[: chars - 1] + "…"
        self.samples.append(line)
        while len(self.samples) > keep:
            self.samples.popleft()


class RuleState:
    """The groups of one rule, bounded by ``max_groups`` (LRU, firing groups spared while possible)."""

    def __init__(self, max_groups: int) -> None:
        self.max_groups = max_groups
        self._groups: OrderedDict[GroupKey, GroupState] = OrderedDict()
        self.evicted = 0
        self.evicted_firing = 0

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self) -> Iterator[GroupState]:
        return iter(list(self._groups.values()))

    def get(self, key: GroupKey) -> GroupState | None:
        return self._groups.get(key)

    def group(self, key: GroupKey, span: float | None = None, now: float = 0.0) -> GroupState:
        """The group for ``key``, created (with a window of ``span`` seconds) when new; marks it recent."""
        g = self._groups.get(key)
        if g is not None:
            self._groups.move_to_end(key)
            return g
        g = GroupState(key=key, window=Window(span) if span else None, last_seen=now)
        self._groups[key] = g
        if len(self._groups) > self.max_groups:
            self._evict(key)
        return g

    def _evict(self, keep: GroupKey) -> None:
        victim: GroupKey | None = None
        for i, (k, g) in enumerate(self._groups.items()):
            if not g.firing and k != keep:
                victim = k
                break
            if i >= 64:  # bounded search: a table full of firing groups evicts the oldest
                break
        if victim is None:
            victim = next(iter(self._groups))
            self.evicted_firing += 1
        del self._groups[victim]
        self.evicted += 1

    def drop(self, key: GroupKey) -> None:
        self._groups.pop(key, None)

    def firing(self) -> list[GroupState]:
        """Groups currently firing."""
        return [g for g in self._groups.values() if g.firing]

    def restore_firing(
        self,
        key: GroupKey,
        started_at: float,
        now: float,
        grace: float,
        span: float | None = None,
        annotations: dict[str, str] | None = None,
        last_seen: float | None = None,
    ) -> GroupState:
        """Mark ``key`` firing after a restart, as already notified at ``now``.

        The condition counts as holding until ``now + grace`` (the window refills after a restart):
        a condition that persists confirms the group without a new notification (no storm); one
        that does not is forgotten quietly and Alertmanager resolves it at its ``endsAt``.
        """
        g = self.group(key, span, now)
        g.firing = True
        g.started_at = started_at
        g.last_sent = now
        g.last_asserted = now
        g.last_true = now + grace
        g.restored = True
        g.restored_annotations = annotations
        if last_seen is not None:
            g.last_seen = last_seen
        return g
