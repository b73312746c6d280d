"""Ordered acknowledgements: release a position only when everything before it is resolved.

Sinks acknowledge batches out of order (several requests in flight), but a checkpoint — the
shipper's file offset, the consumer's Kafka offset — may only move over a *contiguous* prefix of
resolved work, or a crash would skip the unresolved gap. Both the shipper's registry and the
consumer's commits go through :class:`OrderedAcks` (as Vector's ``OrderedFinalizer``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass
class OrderedAcks:
    """Tracks pending ranges ``[start, end)`` of one stream and the contiguous low-water mark.

    ``add(start, end)`` registers work in stream order; ``resolve(start)`` marks it done in any
    order; ``committed`` is the position up to which all work is resolved.
    """

    committed: int = 0
    _pending: dict[int, int] = field(default_factory=dict)  # start -> end, unresolved
    _resolved: list[tuple[int, int]] = field(default_factory=list)  # heap of (start, end)
    _next: int | None = None

    def add(self, start: int, end: int) -> None:
        """Register the range ``[start, end)``; ranges must be added in order and without gaps."""
        if end <= start:
            raise ValueError(f"empty or reversed range [{start}, {end})")
        if self._next is not None and start != self._next:
            raise ValueError(f"range starts at {start}, expected {self._next}: ranges must be contiguous")
        if self._next is None and not self._pending and not self._resolved:
            self.committed = start
        self._pending[start] = end
        self._next = end

    def resolve(self, start: int) -> int:
        """Mark the range starting at ``start`` as resolved; return the new committed position."""
        end = self._pending.pop(start)
        resolved = self._resolved
        if start != self.committed:
            heapq.heappush(resolved, (start, end))
            return self.committed
        # The oldest range (the usual case: acknowledgements mostly come in order): no heap round trip.
        self.committed = end
        while resolved and resolved[0][0] == end:
            end = heapq.heappop(resolved)[1]
            self.committed = end
        return end

    def reset(self, position: int) -> None:
        """Forget all pending work and restart at ``position`` (e.g. a file truncated, a partition reassigned)."""
        self._pending.clear()
        self._resolved.clear()
        self.committed = position
        self._next = position

    @property
    def in_flight(self) -> int:
        """Number of unresolved ranges."""
        return len(self._pending)

    @property
    def frontier(self) -> int | None:
        """End of the last added range (where the next range must start)."""
        return self._next
