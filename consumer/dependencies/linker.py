"""Caller -> callee links of one trace: the rules of Jaeger's spark-dependencies job, in our code.

The same spans give the same links as the job's ``SpansToDependencyLinks`` (Zipkin's linker
semantics as Jaeger applies them); our tests hold :func:`trace_edges` to hand-built traces whose
graph is known. The rules, per trace:

1. Identical spans count once.
2. **Shared spans** (Zipkin: the client and the server half of one RPC carry the same span id):
   a group of spans with one id that holds a ``client``/``producer`` span and a
   ``server``/``consumer`` span gives ``client service -> server service``.
3. Every span with references and a service gives ``parent service -> its service`` per reference
   whose span is in the trace — *also when both are the same service* (the job counts in-process
   parent/child pairs as self-calls; so do we). A shared half that is not the client is skipped
   (rule 2 already linked it); a reference to a shared id links from that group's server half.
   A reference to a span not in the trace (a missing parent) gives nothing.
4. A leaf span (no span refers to it) that has a service and a reference, and carries the
   peer-service tag, gives ``its service -> the tag's value`` (a call to an uninstrumented service).

Two differences, both deliberate: the kind comes from ``span.kind`` alone (the job takes *any*
tag whose value is ``client``/``server``/... for rule 2), and a server half without a service
makes no link (the job would write a null parent). Error counts are ours (the job has none): a
link is an error when the callee side's span — the child, the server half, or the leaf — failed.

Each link carries a ``key`` that names the spans it came from, unique within the trace; the stage
stores a link once per ``(trace, key)``, which is what makes replays and redeliveries count once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consumer.dependencies.link import SpanLink

_CALLERS = frozenset({"client", "producer"})
_CALLEES = frozenset({"server", "consumer"})


@dataclass(frozen=True, slots=True)
class Edge:
    """One call from ``parent`` (service) to ``child`` (service) seen in one trace."""

    parent: str
    child: str
    error: bool
    key: str
    """Which spans made it (``s:<id>`` shared, ``r:<parent id>><span>`` reference, ``p:<span>`` peer)."""
    start_us: int
    """Start of the callee side's span: the time bucket the call is counted in."""


def _span_key(span: SpanLink) -> str:
    # Shared halves have one span id: the kind (and start) tell them apart.
    return f"{span.span_id}/{span.kind}/{span.service}/{span.start_us}"


def trace_edges(spans: Iterable[SpanLink]) -> list[Edge]:
    """The links of one trace's spans (any order; duplicates allowed)."""
    unique = list(dict.fromkeys(spans))
    by_id: dict[str, list[SpanLink]] = {}
    referenced: set[str] = set()
    for span in unique:
        by_id.setdefault(span.span_id, []).append(span)
        referenced.update(span.refs)

    edges: list[Edge] = []
    for span_id, group in by_id.items():
        shared = _shared_edge(span_id, group)
        if shared is not None:
            edges.append(shared)

    for span in unique:
        if not span.refs or not span.service:
            continue
        if len(by_id[span.span_id]) > 1 and span.kind != "client":
            continue
        for i, ref in enumerate(span.refs):
            parents = by_id.get(ref)
            if not parents:
                continue
            if len(parents) > 1:
                parent = next((p for p in parents if p.kind == "server"), None)
            else:
                parent = parents[0]
            if parent is None or not parent.service:
                continue
            key = f"r:{ref}#{i}>{_span_key(span)}"
            edges.append(Edge(parent.service, span.service, span.error, key, span.start_us))
        if span.peer and span.span_id not in referenced:
            edges.append(Edge(span.service, span.peer, span.error, f"p:{_span_key(span)}", span.start_us))
    return edges


def _shared_edge(span_id: str, group: list[SpanLink]) -> Edge | None:
    """Rule 2: the client/producer -> server/consumer link of one span id's halves."""
    client: SpanLink | None = None
    server: SpanLink | None = None
    for span in group:
        if span.kind in _CALLERS:
            client = span
        elif span.kind in _CALLEES:
            server = span
        if client is not None and server is not None:
            if not client.service or not server.service:
                return None
            return Edge(client.service, server.service, server.error, f"s:{span_id}", server.start_us)
    return None


def count_links(edges: Iterable[Edge]) -> dict[tuple[str, str], tuple[int, int]]:
    """``{(parent, child): (calls, errors)}`` — the job's reduce step (plus errors)."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for e in edges:
        calls, errors = out.get((e.parent, e.child), (0, 0))
        out[(e.parent, e.child)] = (calls + 1, errors + int(e.error))
    return out
