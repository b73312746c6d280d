"""`logpipe trace ID|show|find|stats`: one trace as a waterfall, and the commands that find traces.

`logpipe trace` is a group whose first word may also be a trace id: `logpipe trace 4bf9…` is
`logpipe trace show 4bf9…` (the form people type), `logpipe trace find …` searches traces.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from logpipe.cli.es_options import DEFAULT_ES_URL, EsUrl, IndexPrefix, es_connection_options
from logpipe.cli.search import Colour, use_colour


class TraceGroup(TyperGroup):
    """A group whose unknown first word is a trace id for ``show`` (so `logpipe trace ID` keeps working)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Any: typer vendors click privately
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.command_path, "[ID | show ID | COMMAND] [ARGS]...")


app = typer.Typer(cls=TraceGroup, no_args_is_help=True)


@app.command("show")
@es_connection_options
def trace(
    trace_id: Annotated[str, typer.Argument(help="The trace id (trace.id), as logged.")],
    es_url: EsUrl = DEFAULT_ES_URL,
    index_prefix: IndexPrefix = "logpipe",
    json_: Annotated[bool, typer.Option("--json", help="One JSON object: spans in tree order, log lines.")] = False,
    color: Annotated[Colour, typer.Option("--color", help="auto (on a terminal), always, never.")] = Colour.auto,
    *,
    es: Any,
) -> None:
    """Show the spans (a tree by parent, with durations) and log lines of one trace; exit 1 if none."""
    from logpipe.tools.search.trace_command import TraceOptions, run  # lazily: see logpipe/cli/search.py

    options = TraceOptions(
        trace_id=trace_id, es_url=es_url, index_prefix=index_prefix, as_json=json_, colour=use_colour(color),
        es=es,
    )
    raise typer.Exit(run(options))


class StatsBy(StrEnum):
    """Rows of `logpipe trace stats` (mirrors logpipe.tools.search.trace_stats.GroupBy, imported lazily)."""

    operation = "operation"
    service = "service"
    status = "status"


@app.command("stats")
@es_connection_options
def stats(
    component: Annotated[
        list[str] | None, typer.Option("--component", "-c", help="Component (service.name); repeatable.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Start this long ago (15m, 2h, 1d; 'all': no start). Default 1h.")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Start, inclusive: ISO 8601 (no offset = UTC), now, or a duration ago.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="End, exclusive: ISO 8601 (no offset = UTC), now, or a duration ago.")
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="One row per group per time bucket of this length (5m, 1h).")
    ] = None,
    by: Annotated[
        StatsBy,
        typer.Option("--by", help="Rows per operation (service + span name), service, or service + HTTP status."),
    ] = StatsBy.operation,
    limit: Annotated[int, typer.Option("--limit", help="The N groups with the most calls (per time bucket).")] = 20,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per group (durations in ms).")] = False,
    es_url: EsUrl = DEFAULT_ES_URL,
    index_prefix: IndexPrefix = "logpipe",
    *,
    es: Any,
) -> None:
    """Calls, errors, error rate and p50/p95/p99 duration per group from the stored spans; exit 1 if none."""
    from logpipe.tools.search.trace_stats import GroupBy, StatsOptions, run  # lazily: see logpipe/cli/search.py

    options = StatsOptions(
        components=tuple(component or ()), since=since, from_=from_, to=to, every=every, by=GroupBy(by.value),
        limit=limit, as_json=json_, es_url=es_url, index_prefix=index_prefix,
        es=es,
    )
    raise typer.Exit(run(options))


class Sort(StrEnum):
    """The order of ``trace find``."""

    start = "start"
    duration = "duration"


@app.command("find")
@es_connection_options
def find(
    component: Annotated[
        list[str] | None,
        typer.Option("--component", "-c", help="A Component that took part (any span's service.name); repeatable."),
    ] = None,
    root: Annotated[
        bool, typer.Option("--root", help="-c and --operation apply to the root span: traces that entered there.")
    ] = False,
    operation: Annotated[
        list[str] | None, typer.Option("--operation", help="A span name in the trace (with --root: the root's).")
    ] = None,
    min_duration: Annotated[
        str | None, typer.Option("--min-duration", help="The whole trace took at least this (500ms, 2s).")
    ] = None,
    max_duration: Annotated[str | None, typer.Option("--max-duration", help="... and at most this.")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only traces with a failed span.")] = False,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="The root span's HTTP status: 500, 5xx, >=500, 500-504; repeatable."),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option("--where", help='On the summary\'s fields: \'spans>50 and root.service="web"\', duration>2s.'),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Traces that started in the last D (15m, 1h, 1d), or 'all'.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="... and before this time (exclusive).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many traces.")] = 20,
    sort: Annotated[Sort, typer.Option("--sort", help="start: newest first; duration: slowest first.")] = Sort.start,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per trace: trace_id and its summary.")] = False,
    es_url: EsUrl = DEFAULT_ES_URL,
    index_prefix: Annotated[
        str, typer.Option("--index-prefix", envvar="LOGPIPE_INDEX_PREFIX", help="Summaries are <prefix>-traces-*.")
    ] = "logpipe",
    *,
    es: Any,
) -> None:
    """Find traces — slow, failing, through a Component — from their summaries; exit 1 if none (like grep)."""
    from logpipe.tools.search.trace_find import FindOptions, run  # lazily: see logpipe/cli/search.py

    options = FindOptions(
        components=tuple(component or ()), root=root, operations=tuple(operation or ()),
        min_duration=min_duration, max_duration=max_duration, errors=errors, statuses=tuple(status or ()),
        where=where, since=since, until=until, limit=limit, sort=sort.value, as_json=json_,
        es_url=es_url, index_prefix=index_prefix,
        es=es,
    )
    raise typer.Exit(run(options))
