"""``logpipe search``: options -> plan -> search (or follow) -> exit code like grep (0 hits, 1 none, 2 error)."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from logpipe.core.es_connection import EsConnection
from logpipe.tools.search.client import SearchClient
from logpipe.tools.search.errors import EXIT_FOUND, EXIT_NONE, BadArgument, run_command
from logpipe.tools.search.follow import Follower, follow
from logpipe.tools.search.oneshot import SearchPlan, newest, run_search
from logpipe.tools.search.query_builder import SearchFilters, index_pattern
from logpipe.tools.search.render import Renderer
from logpipe.tools.search.where_query import fields_of, known_types, where_query
from logpipe.tools.timerange import TimeRange, TimeSpecError, time_range

EXIT_INTERRUPTED = 130  # as a shell reports Ctrl-C
DEFAULT_SINCE = "15m"


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """The command line of ``logpipe search``, as typed."""

    text: str | None = None
    components: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    pods: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    trace_id: str | None = None
    where: str | None = None
    since: str | None = None
    from_: str | None = None
    to: str | None = None
    limit: int = 100
    context: int = 0
    follow: bool = False
    as_json: bool = False
    colour: bool = False
    es_url: str = "http://127.0.0.1:9200"
    es: EsConnection | None = None
    """TLS and credentials; when set its url is used instead of ``es_url``."""
    index_prefix: str = "logpipe"
    follow_interval_s: float = 1.0
    follow_overlap_s: float = 30.0


def check_options(o: SearchOptions) -> None:
    """Reject combinations that make no sense before any request is sent."""
    if o.limit < 0:
        raise BadArgument("--limit must be 0 or more")
    if o.context < 0:
        raise BadArgument("--context must be 0 or more")
    if o.follow and o.to is not None:
        raise BadArgument("--to cannot be combined with --follow: a live tail has no end")
    if o.follow and o.context:
        raise BadArgument("--context cannot be combined with --follow")
    index_pattern(o.index_prefix, o.types)  # validates --type and --index-prefix


def search_range(o: SearchOptions, now: datetime) -> TimeRange:
    """``--since``/``--from``/``--to`` as in ``logpipe.tools.timerange``; with no start, the last 15 minutes."""
    try:
        return time_range(o.since, o.from_, o.to, now, default_since=DEFAULT_SINCE)
    except TimeSpecError as exc:
        raise BadArgument(str(exc)) from None


async def build_filters(client: SearchClient, o: SearchOptions) -> SearchFilters:
    """The filters of ``o``; a ``--where`` is translated with the mapped field types."""
    where = None
    if o.where is not None:
        types: dict[str, str] = {}
        if fields_of(o.where):
            # With no index yet (a follow started early) the templates' well-known fields are allowed.
            types = await client.field_types(index_pattern(o.index_prefix, o.types)) or known_types()
        where = where_query(o.where, types)
    return SearchFilters(
        text=o.text,
        components=o.components,
        namespaces=o.namespaces,
        pods=o.pods,
        types=o.types,
        statuses=o.statuses,
        levels=o.levels,
        trace_id=o.trace_id,
        where=where,
    )


async def search_main(
    o: SearchOptions,
    out: TextIO,
    notes: TextIO,
    stop: asyncio.Event | None = None,
    following: asyncio.Event | None = None,
) -> int:
    """Run one ``logpipe search``; returns the exit code. Raises :class:`SearchError` on errors.

    With ``--follow`` it runs until ``stop`` is set; ``following`` is set once the backlog is printed
    and every line indexed from then on will be printed.
    """
    check_options(o)
    window = search_range(o, datetime.now(UTC))
    renderer = Renderer(out, colour=o.colour, as_json=o.as_json, marks=o.context > 0)
    async with SearchClient(o.es or o.es_url) as client:
        filters = await build_filters(client, o)
        plan = SearchPlan(filters, window, o.index_prefix, o.limit, o.context)
        if not o.follow:
            shown = await run_search(client, plan, renderer, notes) if o.limit else 0
            return EXIT_FOUND if shown else EXIT_NONE
        follower = Follower(client, filters, o.index_prefix, overlap_s=o.follow_overlap_s)
        await follower.prime()
        if o.limit:
            backlog = await newest(client, plan)
            renderer.write_all(backlog.docs)
            follower.shown(backlog.docs)
        if following is not None:
            following.set()
        await follow(follower, renderer, notes, interval_s=o.follow_interval_s, stop=stop)
        return EXIT_FOUND if renderer.printed else EXIT_NONE


def run(o: SearchOptions) -> int:
    """Entry point for the CLI: handles Ctrl-C / SIGTERM (ends a follow cleanly) and errors (exit 2)."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.ensure_future(search_main(o, sys.stdout, sys.stderr, stop))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            # A follow ends at its next wake-up; a one-shot search is abandoned.
            await asyncio.wait({task}, timeout=o.follow_interval_s + 5 if o.follow else 0.1)
        stopper.cancel()
        if not task.done():
            task.cancel()
            return EXIT_INTERRUPTED
        return task.result()

    return run_command("logpipe search", main())
