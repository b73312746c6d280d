"""``logpipe trace find``: traces (their summaries, ``<prefix>-traces-*``), newest or slowest first.

The summaries are written by the consumer's dependency stage, one per trace (docs/TRACES.md
"Trace summaries"), so every filter here is on the whole trace: ``--min-duration`` is the trace's
duration (Jaeger's is a single span's), ``-c`` a Component that took part anywhere in it (``--root``:
the one it entered through), ``--errors`` any failed span, ``--status`` the root span's HTTP status.
Exit codes like grep: 0 traces shown, 1 none, 2 an error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from logpipe.core.durations import parse_duration
from logpipe.core.es_connection import EsConnection
from logpipe.tools.search.client import SearchClient
from logpipe.tools.search.errors import EXIT_FOUND, EXIT_NONE, BadArgument, run_command
from logpipe.tools.search.query_builder import any_of, keyword_query, status_query
from logpipe.tools.search.where_query import Names, Query, where_query
from logpipe.tools.timerange import TimeRange, TimeSpecError, time_range

DEFAULT_SINCE = "1h"
SORTS = ("start", "duration")

ALIASES = {"duration": "duration_us", "status": "root.status"}
"""Short names ``--where`` accepts beside the summary's own fields (``spans``, ``root.service``...)."""
SUMMARY_NAMES = Names(resolve=lambda n: ALIASES.get(n, n), durations={"duration_us": 1_000_000})


@dataclass(frozen=True, slots=True)
class FindOptions:
    """The command line of ``logpipe trace find``."""

    components: tuple[str, ...] = ()
    root: bool = False
    operations: tuple[str, ...] = ()
    min_duration: str | None = None
    max_duration: str | None = None
    errors: bool = False
    statuses: tuple[str, ...] = ()
    where: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 20
    sort: str = "start"
    as_json: bool = False
    es_url: str = "http://127.0.0.1:9200"
    es: EsConnection | None = None
    index_prefix: str = "logpipe"


def summaries_pattern(prefix: str) -> str:
    return f"{prefix}-traces-*"


def _micros(option: str, text: str) -> int:
    try:
        return int(parse_duration(text) * 1_000_000)
    except ValueError as exc:
        raise BadArgument(f"{option}: {exc}") from None


def check_options(o: FindOptions) -> None:
    if o.limit < 1:
        raise BadArgument("--limit must be 1 or more")
    if o.sort not in SORTS:
        raise BadArgument(f"--sort {o.sort!r}: use one of {', '.join(SORTS)}")
    if o.root and not (o.components or o.operations):
        raise BadArgument("--root needs -c COMPONENT or --operation OP (it makes them apply to the root span)")
    if o.min_duration is not None and o.max_duration is not None:
        if _micros("--min-duration", o.min_duration) > _micros("--max-duration", o.max_duration):
            raise BadArgument("--min-duration is more than --max-duration — fix: swap them")


def find_range(o: FindOptions, now: datetime) -> TimeRange:
    """``--since`` (default 1h) and ``--until``, on the trace's start, as ``logpipe.tools.timerange``."""
    try:
        return time_range(o.since, None, o.until, now, default_since=DEFAULT_SINCE)
    except TimeSpecError as exc:
        raise BadArgument(str(exc).replace("--to", "--until")) from None


def find_query(o: FindOptions, window: TimeRange, where: Query | None = None) -> Query:
    """The query of ``o`` on the summaries (``where``: the translated ``--where``)."""
    clauses: list[Query] = []
    if o.components:
        clauses.append(keyword_query("root.service" if o.root else "services", o.components))
    if o.operations:
        clauses.append(keyword_query("root.operation" if o.root else "operations", o.operations))
    bounds: dict[str, int] = {}
    if o.min_duration is not None:
        bounds["gte"] = _micros("--min-duration", o.min_duration)
    if o.max_duration is not None:
        bounds["lte"] = _micros("--max-duration", o.max_duration)
    if bounds:
        clauses.append({"range": {"duration_us": bounds}})
    if o.errors:
        clauses.append({"range": {"errors": {"gte": 1}}})
    if o.statuses:
        clauses.append(any_of([status_query(s, "root.status") for s in o.statuses]))
    if where is not None:
        clauses.append(where)
    range_ = window.to_es()
    if range_:
        clauses.append({"range": {"start": range_}})
    return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


def find_sort(sort: str) -> list[dict[str, Any]]:
    """Newest (``start``) or slowest (``duration``) first; the trace id breaks ties (stable pages)."""
    first = "start_us" if sort == "start" else "duration_us"
    second = "duration_us" if sort == "start" else "start_us"
    return [{f: {"order": "desc", "unmapped_type": "long"}} for f in (first, second)] + [
        {"trace_id": {"order": "asc", "unmapped_type": "keyword"}}
    ]


async def find(client: SearchClient, o: FindOptions) -> list[dict[str, Any]]:
    """The summaries ``o`` selects, in its order (at most ``o.limit``)."""
    check_options(o)
    window = find_range(o, datetime.now(UTC))
    pattern = summaries_pattern(o.index_prefix)
    where = None
    if o.where is not None:
        types = await client.field_types(pattern)
        if not types:
            return []  # no summary index yet: nothing can match
        where = where_query(o.where, types, SUMMARY_NAMES)
    page = await client.search(pattern, find_query(o, window, where), find_sort(o.sort), o.limit)
    return [dict(d.source) for d in page.docs]


def format_duration(us: int) -> str:
    """``850µs``, ``12.3ms``, ``1.25s``, ``2m05s``: readable at a glance, sortable by eye."""
    if us < 1_000:
        return f"{us}µs"
    if us < 1_000_000:
        return f"{us / 1000:.1f}ms"
    if us < 60_000_000:
        return f"{us / 1_000_000:.2f}s"
    minutes, seconds = divmod(us // 1_000_000, 60)
    return f"{minutes}m{seconds:02d}s"


def _start(summary: dict[str, Any]) -> str:
    us = summary.get("start_us")
    if not isinstance(us, int):
        return str(summary.get("start", "?"))
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _root(summary: dict[str, Any]) -> str:
    root = summary.get("root") or {}
    text = f"{root.get('service') or '?'} {root.get('operation') or '?'}"
    if root.get("status"):
        text += f" {root['status']}"
    return text if root.get("arrived") else text + " (root missing)"


HEADER = ("TRACE", "START (UTC)", "DURATION", "ROOT", "SPANS", "ERRORS", "SERVICES")


def table(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """One line per trace under a header, columns aligned."""
    rows = [HEADER] + [
        (
            str(s.get("trace_id", "")), _start(s), format_duration(int(s.get("duration_us") or 0)), _root(s),
            str(s.get("spans", 0)), str(s.get("errors", 0)), ",".join(s.get("services") or ()),
        )
        for s in summaries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    right = {2, 4, 5}  # numbers
    out = []
    for r in rows:
        cells = [r[i].rjust(w) if i in right else r[i].ljust(w) for i, w in enumerate(widths)]
        out.append("  ".join([*cells, r[-1]]).rstrip())
    return out


def json_line(summary: dict[str, Any]) -> str:
    """One trace as one JSON object: ``trace_id`` first, then the summary's fields."""
    return orjson.dumps({"trace_id": summary.get("trace_id"), **summary}).decode()


async def find_main(o: FindOptions, out: TextIO) -> int:
    async with SearchClient(o.es or o.es_url) as client:
        found = await find(client, o)
    if o.as_json:
        for s in found:
            out.write(json_line(s) + "\n")
    elif found:
        for line in table(found):
            out.write(line + "\n")
    out.flush()
    return EXIT_FOUND if found else EXIT_NONE


def run(o: FindOptions) -> int:
    """CLI entry: errors are one line on stderr and exit 2; no trace found is exit 1 with a note."""
    return run_command("logpipe trace find", find_main(o, sys.stdout),
                       "no trace matches (summaries are written ~10 s after a trace's last span; widen --since?)")
