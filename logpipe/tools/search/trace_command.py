"""``logpipe trace ID``: the trace's spans as a waterfall — critical path marked, self time per span,
each log line under the span whose ``span.id`` it carries — then the other log lines in time order."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import TextIO

import orjson

from logpipe.core.es_connection import EsConnection
from logpipe.tools.search import docfields as F
from logpipe.tools.search.client import SearchClient
from logpipe.tools.search.errors import EXIT_FOUND, EXIT_NONE, SearchError, run_command
from logpipe.tools.search.hits import LogDoc
from logpipe.tools.search.query_builder import index_pattern, time_sort, trace_query
from logpipe.tools.search.render import Renderer
from logpipe.tools.search.spans import Span, place_logs, span_tree, tree_json, waterfall

MAX_DOCS = 10_000


@dataclass(frozen=True, slots=True)
class TraceOptions:
    """The command line of ``logpipe trace``."""

    trace_id: str
    es_url: str = "http://127.0.0.1:9200"
    es: EsConnection | None = None
    """TLS and credentials; when set its url is used instead of ``es_url``."""
    index_prefix: str = "logpipe"
    as_json: bool = False
    colour: bool = False


@dataclass(frozen=True, slots=True)
class TraceDocs:
    """The spans and the log lines of one trace, each in time order."""

    spans: list[Span]
    logs: list[LogDoc]


async def fetch_trace(client: SearchClient, prefix: str, trace_id: str) -> TraceDocs:
    """Spans from ``<prefix>-trace-*`` and lines of the other types, in two concurrent searches."""
    query = trace_query(trace_id)
    log_types = tuple(t for t in F.LOG_TYPES if t != "trace")
    spans_page, logs_page = await asyncio.gather(
        client.search(index_pattern(prefix, ("trace",)), query, time_sort("asc"), MAX_DOCS),
        client.search(index_pattern(prefix, log_types), query, time_sort("asc"), MAX_DOCS),
    )
    return TraceDocs([Span.from_doc(d) for d in spans_page.docs], logs_page.docs)


async def trace_main(o: TraceOptions, out: TextIO) -> int:
    """Print the trace; returns 0 when anything was found, 1 when nothing was."""
    if not o.trace_id.strip():
        raise SearchError("the trace id is empty")
    async with SearchClient(o.es or o.es_url) as client:
        found = await fetch_trace(client, o.index_prefix, o.trace_id.strip())
    if o.as_json:
        doc = {"trace_id": o.trace_id, **tree_json(found.spans, found.logs)}
        out.write(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    else:
        for line in waterfall(o.trace_id, found.spans, colour=o.colour, logs=found.logs):
            out.write(line + "\n")
        _, rest = place_logs(span_tree(found.spans), found.logs)
        if rest:
            if found.spans:
                out.write("\n")
            what = "log lines" if len(rest) == len(found.logs) else "log lines without a span of the trace"
            out.write(f"{what} ({len(rest)}):\n")
            Renderer(out, colour=o.colour, as_json=False).write_all(rest)
    out.flush()
    return EXIT_FOUND if found.spans or found.logs else EXIT_NONE


def run(o: TraceOptions) -> int:
    """CLI entry: errors are one line on stderr and exit 2."""
    return run_command("logpipe trace", trace_main(o, sys.stdout),
                       f"no span or log line carries trace id {o.trace_id!r}")
