"""A one-shot search: the newest ``limit`` matches in the time range, printed oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from logpipe.tools.search.client import SearchClient
from logpipe.tools.search.context import with_context
from logpipe.tools.search.hits import LogDoc
from logpipe.tools.search.query_builder import SearchFilters, index_pattern, search_query, time_sort
from logpipe.tools.search.render import Renderer
from logpipe.tools.timerange import TimeRange

PAGE = 10_000  # Elasticsearch's default index.max_result_window
COUNT_UP_TO = 10_000  # exact counting beyond this costs time for a number nobody reads


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """Everything a search needs besides the client and the output."""

    filters: SearchFilters
    time_range: TimeRange
    prefix: str = "logpipe"
    limit: int = 100
    context: int = 0

    @property
    def index(self) -> str:
        return index_pattern(self.prefix, self.filters.types)


@dataclass(frozen=True, slots=True)
class Newest:
    """The newest hits (oldest first) and how many matched in all."""

    docs: list[LogDoc]
    total: int
    total_is_lower_bound: bool
    failed_shards: int = 0
    failure: str = ""


async def newest(client: SearchClient, plan: SearchPlan) -> Newest:
    """The newest ``plan.limit`` matches, returned in time order (newest last)."""
    query = search_query(plan.filters, plan.time_range)
    docs: list[LogDoc] = []
    after = None
    total, lower_bound, failed, failure = 0, False, 0, ""
    while len(docs) < plan.limit:
        size = min(PAGE, plan.limit - len(docs))
        count: int | bool = COUNT_UP_TO if after is None else False
        page = await client.search(
            plan.index, query, time_sort("desc"), size, search_after=after, track_total_hits=count
        )
        if after is None:
            total, lower_bound = page.total or 0, page.total_is_lower_bound
        failed, failure = max(failed, page.failed_shards), failure or page.failure
        docs += page.docs
        if len(page.docs) < size:
            break
        after = page.docs[-1].sort
    docs.reverse()
    return Newest(docs, max(total, len(docs)), lower_bound, failed, failure)


async def run_search(client: SearchClient, plan: SearchPlan, renderer: Renderer, notes: TextIO) -> int:
    """Print the matches of ``plan``; returns how many hits were printed. ``notes`` gets the remarks."""
    found = await newest(client, plan)
    if plan.context > 0 and found.docs:
        blocks = await with_context(client, plan.prefix, found.docs, plan.context)
        for i, block in enumerate(blocks):
            if i:
                renderer.separator()
            renderer.write_all(block.docs)
    else:
        renderer.write_all(found.docs)
    shown = len(found.docs)
    if found.failed_shards:
        notes.write(f"warning: {found.failed_shards} shard(s) failed, results may be incomplete: {found.failure}\n")
    if found.total > shown:
        more = "more than " if found.total_is_lower_bound else ""
        notes.write(f"showing the newest {shown} of {more}{found.total} matches — raise --limit to see more\n")
    return shown
