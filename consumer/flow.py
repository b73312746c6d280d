"""Buffer accounting and the pause policy: how much the consumer holds, and when it stops fetching.

Every work counts its bytes (``Work.size``: the raw line, its encoded item and its document) from
the moment it is queued until it is resolved. While more than ``bulk.max_buffered_bytes`` are held,
or Elasticsearch is unavailable, every partition is paused — the member stays in the group, so no
rebalance — and resumed once the backlog drained and Elasticsearch answers again.
"""

from __future__ import annotations

from collections.abc import Iterable

from consumer.ports import Source
from consumer.telemetry import FetchPaused, FetchResumed
from consumer.work import Work


class Flow:
    """The bytes held by unresolved work, and the pause/resume decision taken from them."""

    def __init__(self, max_buffered_bytes: int) -> None:
        self.max_buffered_bytes = max_buffered_bytes
        self.buffered_bytes = 0

    def hold(self, work: Work) -> None:
        """Count ``work.size`` bytes as held (until :meth:`free`)."""
        self.buffered_bytes += work.size

    def free(self, work: Work) -> None:
        self.buffered_bytes -= work.size
        work.size = 0

    def free_all(self, works: Iterable[Work]) -> None:
        freed = 0
        for w in works:
            freed += w.size
            w.size = 0
        self.buffered_bytes -= freed

    @property
    def over(self) -> bool:
        return self.buffered_bytes > self.max_buffered_bytes

    def apply(self, source: Source, indexer_available: bool) -> None:
        """Pause ``source`` while over the limit or Elasticsearch is down; resume it otherwise."""
        over = self.over
        if over or not indexer_available:
            if source.pause_all():
                FetchPaused(
                    reason="buffer_full" if over else "elasticsearch_down", buffered_bytes=self.buffered_bytes
                ).emit()
        elif source.paused and source.resume_all():
            FetchResumed(buffered_bytes=self.buffered_bytes).emit()
