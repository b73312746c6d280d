"""`logpipe search`: one Component's logs in Elasticsearch, or a live tail with -f."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from logpipe.cli.es_options import DEFAULT_ES_URL, EsUrl, IndexPrefix, es_connection_options


class Colour(StrEnum):
    """When to colour the output."""

    auto = "auto"
    always = "always"
    never = "never"


def use_colour(choice: Colour) -> bool:
    """Colour on a terminal (unless NO_COLOR is set), never when piped, unless forced."""
    if choice is Colour.always:
        return True
    if choice is Colour.never:
        return False
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@es_connection_options
def search(
    query: Annotated[
        str | None,
        typer.Argument(help='Free text over the message: all words must occur; "a phrase", -word, a|b, pre*.'),
    ] = None,
    component: Annotated[
        list[str] | None, typer.Option("--component", "-c", help="Component (service.name); repeatable.")
    ] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n", help="Kubernetes namespace.")] = None,
    pod: Annotated[list[str] | None, typer.Option("--pod", "-p", help="Pod name; wildcards: 'pay-*'.")] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="Log type: access, app, stdout or trace.")
    ] = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="HTTP status: 500, 5xx, >=500, 500-504.")] = None,
    level: Annotated[list[str] | None, typer.Option("--level", "-l", help="Log level (case-insensitive).")] = None,
    trace: Annotated[str | None, typer.Option("--trace", help="Only lines carrying this trace id.")] = None,
    where: Annotated[
        str | None, typer.Option("--where", "-w", help='Filter expression, e.g. status>=500 and path~"^/api/pay".')
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Start this long ago (15m, 2h, 1d; 'all': no start). Default 15m.")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Start, inclusive: ISO 8601 (no offset = UTC), now, or a duration ago.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="End, exclusive: ISO 8601 (no offset = UTC), now, or a duration ago.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Show the newest N matches (newest last).")] = 100,
    context: Annotated[
        int, typer.Option("--context", "-C", help="Show N events (a stack trace is one) around each hit.")
    ] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines as they are indexed.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="One JSON document per line.")] = False,
    color: Annotated[Colour, typer.Option("--color", help="Colour per pod: auto (on a terminal), always, never.")] = (
        Colour.auto
    ),
    es_url: EsUrl = DEFAULT_ES_URL,
    index_prefix: IndexPrefix = "logpipe",
    poll_interval: Annotated[float, typer.Option("--poll-interval", help="Seconds between polls with -f.")] = 1.0,
    follow_overlap: Annotated[
        float,
        typer.Option("--follow-overlap", help="Seconds of index time re-read by each -f poll (late visibility)."),
    ] = 30.0,
    *,
    es: Any,
) -> None:
    """Search logs in Elasticsearch; exit 0 with hits, 1 without, 2 on an error (like grep)."""
    # Imported here: the Elasticsearch client costs ~0.2 s to import, which other verbs need not pay.
    from logpipe.tools.search.search_command import SearchOptions, run

    options = SearchOptions(
        text=query,
        components=tuple(component or ()),
        namespaces=tuple(namespace or ()),
        pods=tuple(pod or ()),
        types=tuple(type_ or ()),
        statuses=tuple(status or ()),
        levels=tuple(level or ()),
        trace_id=trace,
        where=where,
        since=since,
        from_=from_,
        to=to,
        limit=limit,
        context=context,
        follow=follow,
        as_json=json_,
        colour=use_colour(color),
        es_url=es_url,
        es=es,
        index_prefix=index_prefix,
        follow_interval_s=poll_interval,
        follow_overlap_s=follow_overlap,
    )
    raise typer.Exit(run(options))
