"""Gather the links of each trace until it is quiet, within a bounded memory.

A trace is *due* once no link of it has come for ``horizon`` seconds (or it has been open for
``max_age``, so a trace that never ends still gets counted and its offsets committed). The join
holds at most ``max_traces`` traces and ``max_spans`` links; past either cap the oldest trace is
flushed early (counted: ``trace_dependency_traces_evicted_total``) rather than dropped, so its links
are still counted.

Late links — a span of a trace that was already flushed — simply open the trace again: the
store (``consumer/dependencies/store.py``) keeps every flushed trace's links and merges the new
ones into them, so the trace's calls are recomputed over all of its spans. The join itself never
needs to remember a flushed trace.

Pure: the clock is an argument, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from consumer.dependencies.link import SpanLink


@dataclass(slots=True)
class _Open:
    partition: int
    first_seen: float
    last_seen: float
    links: dict[SpanLink, None] = field(default_factory=dict)  # insertion-ordered set
    offsets: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TraceFlush:
    """A trace's links gathered since it was last flushed, and the link-topic offsets they came from."""

    trace_id: str
    partition: int
    links: tuple[SpanLink, ...]
    offsets: tuple[int, ...]
    evicted: bool = False
    """Flushed early because a cap was reached (not because it went quiet)."""


class TraceJoin:
    """Open traces by id, oldest first (insertion order = first seen)."""

    def __init__(self, horizon: float, max_age: float, max_traces: int, max_spans: int) -> None:
        self.horizon = horizon
        self.max_age = max_age
        self.max_traces = max_traces
        self.max_spans = max_spans
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._evicted: list[TraceFlush] = []
        self.spans = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._open)

    def add(self, link: SpanLink, partition: int, offset: int, now: float) -> None:
        """Hold ``link`` (from ``offset`` of ``partition``) with its trace; may evict the oldest trace."""
        entry = self._open.get(link.trace_id)
        if entry is None:
            entry = self._open[link.trace_id] = _Open(partition, now, now)
        entry.last_seen = now
        entry.offsets.append(offset)
        if link not in entry.links:
            entry.links[link] = None
            self.spans += 1
        while len(self._open) > self.max_traces or self.spans > self.max_spans:
            trace_id, oldest = next(iter(self._open.items()))
            self._evicted.append(self._take(trace_id, oldest, evicted=True))
            self.evictions += 1

    def due(self, now: float) -> list[TraceFlush]:
        """Take the traces quiet for ``horizon`` (or open for ``max_age``), and any evicted ones."""
        out, self._evicted = self._evicted, []
        for trace_id, entry in list(self._open.items()):
            if now - entry.last_seen >= self.horizon or now - entry.first_seen >= self.max_age:
                out.append(self._take(trace_id, entry))
        return out

    def drain(self) -> list[TraceFlush]:
        """Take every trace now (stop: count what was gathered before committing)."""
        out, self._evicted = self._evicted, []
        out.extend(self._take(t, e) for t, e in list(self._open.items()))
        return out

    def take_partitions(self, partitions: set[int]) -> list[TraceFlush]:
        """Take the traces of revoked partitions now (written before the revoke completes, if possible)."""
        out = [f for f in self._evicted if f.partition in partitions]
        self._evicted = [f for f in self._evicted if f.partition not in partitions]
        out.extend(self._take(t, e) for t, e in list(self._open.items()) if e.partition in partitions)
        return out

    def _take(self, trace_id: str, entry: _Open, evicted: bool = False) -> TraceFlush:
        del self._open[trace_id]
        self.spans -= len(entry.links)
        return TraceFlush(trace_id, entry.partition, tuple(entry.links), tuple(entry.offsets), evicted)
