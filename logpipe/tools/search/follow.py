"""``-f/--follow``: print documents as they become searchable, each exactly once, with no gaps.

Why not ``search_after`` on ``@timestamp``: lines arrive late (their ``@timestamp`` is older than
lines already shown) and a refresh makes documents visible out of order, so a cursor on time skips
them. A point in time is a frozen snapshot and shows nothing new. Instead each poll asks for every
match whose ``event.ingested`` (the time the consumer indexed it) is at or after a lower bound, and a
seen-id set drops what was already printed:

* The bound of poll *k* is ``start(k-1) - overlap``, where ``start(k-1)`` is when the previous
  successful poll began (by this machine's clock). A document with ``event.ingested = I`` that first
  becomes visible at time *V* is found by the first poll starting after *V*, whose bound is below
  ``V - overlap``; so it is printed unless ``V - I > overlap`` (refresh delay, bulk latency and clock
  skew together exceeding the overlap, 30 s by default). An outage of Elasticsearch does not move
  the bound, so nothing indexed meanwhile is lost.
* The seen set only holds ids whose ``event.ingested`` is at or above the current bound (older ones
  cannot match again), so memory is bounded by the documents indexed within one overlap window.
  A line the consumer redelivers within the window overwrites itself (same ``_id``) and is not
  printed again; one redelivered later is printed again, since it was indexed again.
* Each poll first reads ids only (no ``_source``), then fetches the documents it has not printed.
  New documents of one poll are printed in ``@timestamp`` order with the file offset as tiebreaker.

Start-up: the ids already visible in the window are marked seen *before* the backlog search
(``--limit`` newest lines) runs, and the backlog's ids are added after it; a document that turns
visible between the two is either in the backlog or printed by the first poll, never both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

from logpipe.tools.search.client import SearchClient
from logpipe.tools.search.errors import Unavailable
from logpipe.tools.search.hits import LogDoc
from logpipe.tools.search.query_builder import SearchFilters, index_pattern, ingested_since_query, ingested_sort
from logpipe.tools.search.render import Renderer

ID_PAGE = 10_000
FETCH_CHUNK = 1_000


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SeenWindow:
    """Ids printed so far (with their ``event.ingested``) and the lower bound of the next poll."""

    overlap_ms: int
    lower_ms: int
    seen: dict[str, int] = field(default_factory=dict)

    @classmethod
    def starting_at(cls, start_ms: int, overlap_ms: int) -> SeenWindow:
        return cls(overlap_ms=overlap_ms, lower_ms=start_ms - overlap_ms)

    def unseen(self, ids: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        """The (id, ingested) pairs not printed yet, first occurrence only."""
        out: list[tuple[str, int]] = []
        picked: set[str] = set()
        for doc_id, ingested in ids:
            if doc_id not in self.seen and doc_id not in picked:
                picked.add(doc_id)
                out.append((doc_id, ingested))
        return out

    def mark(self, doc_id: str, ingested_ms: int) -> None:
        self.seen[doc_id] = max(ingested_ms, self.seen.get(doc_id, ingested_ms))

    def advance(self, poll_started_ms: int) -> None:
        """After a successful poll that began at ``poll_started_ms``: move the bound, forget old ids."""
        self.lower_ms = max(self.lower_ms, poll_started_ms - self.overlap_ms)
        self.seen = {k: v for k, v in self.seen.items() if v >= self.lower_ms}


class Follower:
    """Polls Elasticsearch for documents matching ``filters`` as they are indexed."""

    def __init__(
        self,
        client: SearchClient,
        filters: SearchFilters,
        prefix: str,
        *,
        overlap_s: float = 30.0,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.client = client
        self.filters = filters
        self.index = index_pattern(prefix, filters.types)
        self.clock_ms = clock_ms
        self.window = SeenWindow.starting_at(clock_ms(), int(overlap_s * 1000))

    async def _visible_ids(self, lower_ms: int) -> list[tuple[str, int]]:
        """(id, event.ingested) of every match indexed at or after ``lower_ms``, in index-time order."""
        query = ingested_since_query(self.filters, lower_ms)
        out: list[tuple[str, int]] = []
        after = None
        while True:
            page = await self.client.search(
                self.index, query, ingested_sort(), ID_PAGE, search_after=after, source=False
            )
            if page.failed_shards:
                # A partial answer must not move the bound: retry the whole poll instead.
                raise Unavailable(f"{page.failed_shards} shard(s) failed: {page.failure}")
            for doc in page.docs:
                ingested = doc.sort[0] if doc.sort and isinstance(doc.sort[0], int) else lower_ms
                out.append((doc.id, int(ingested)))
            if len(page.docs) < ID_PAGE:
                return out
            after = page.docs[-1].sort

    async def _fetch(self, ids: list[str]) -> list[LogDoc]:
        docs: list[LogDoc] = []
        for i in range(0, len(ids), FETCH_CHUNK):
            chunk = ids[i : i + FETCH_CHUNK]
            page = await self.client.search(self.index, {"ids": {"values": chunk}}, [], len(chunk))
            docs += page.docs
        return docs

    async def prime(self) -> None:
        """Mark what is visible now as seen (call before printing the backlog)."""
        for doc_id, ingested in await self._visible_ids(self.window.lower_ms):
            self.window.mark(doc_id, ingested)

    def shown(self, docs: Iterable[LogDoc]) -> None:
        """Mark documents printed elsewhere (the backlog) as seen."""
        for d in docs:
            ingested = d.ingested_ms
            if ingested is not None:
                self.window.mark(d.id, ingested)

    async def poll(self) -> list[LogDoc]:
        """The documents that became visible since the last poll, in time order; each returned once."""
        started = self.clock_ms()
        fresh = self.window.unseen(await self._visible_ids(self.window.lower_ms))
        ingested_of = dict(fresh)
        docs = await self._fetch([doc_id for doc_id, _ in fresh]) if fresh else []
        out: list[LogDoc] = []
        for d in docs:
            if d.id in ingested_of and d.id not in self.window.seen:
                self.window.mark(d.id, ingested_of[d.id])
                out.append(d)
        self.window.advance(started)
        out.sort(key=LogDoc.order_key)
        return out


async def follow(
    follower: Follower,
    renderer: Renderer,
    notes: TextIO,
    *,
    interval_s: float = 1.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Poll and print until ``stop`` is set (or forever).

    Outages and overload are reported once on ``notes`` and retried every ``interval_s``; the poll
    bound does not move meanwhile, so nothing indexed during the outage is missed. Other errors
    (a rejected query) end the follow.
    """
    stop = stop or asyncio.Event()
    down = False
    while not stop.is_set():
        try:
            renderer.write_all(await follower.poll())
            if down:
                notes.write("Elasticsearch answers again; resuming\n")
                notes.flush()
                down = False
        except Unavailable as exc:  # unreachable, 429, 5xx (e.g. a new index's shards not started yet)
            if not down:
                notes.write(f"{exc}; retrying every {interval_s:g}s\n")
                notes.flush()
                down = True
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            pass
