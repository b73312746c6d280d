"""A trace's spans as a tree by ``parent.id`` and its terminal waterfall (a mini Jaeger). Pure.

Each row: service, the span name indented under its parent (``✗`` when it failed), its duration,
and a bar placed on the trace's time axis (from the earliest start to the latest end). Spans whose parent is not in the
trace become roots (marked ``↑?``), so a partly indexed trace still shows everything it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from logpipe.tools.search import docfields as F
from logpipe.tools.search.hits import LogDoc
from logpipe.tools.search.render import RESET, format_duration_ns, pod_colour
from logpipe.tools.timerange import iso_ms


@dataclass(frozen=True, slots=True)
class Span:
    """One span: ids, name, service, start and duration."""

    span_id: str
    parent_id: str
    name: str
    service: str
    start: datetime | None
    duration_ns: int
    doc: LogDoc
    error: bool = False
    """The span failed (``event.outcome: failure``): marked ``✗`` in the waterfall."""

    @classmethod
    def from_doc(cls, doc: LogDoc) -> Span:
        try:
            duration = int(doc.get(F.DURATION) or 0)
        except (TypeError, ValueError):
            duration = 0
        return cls(
            span_id=doc.text(F.SPAN_ID),
            parent_id=doc.text(F.PARENT_ID),
            name=doc.text(F.SPAN_NAME) or "(unnamed)",
            service=doc.text(F.COMPONENT) or "?",
            start=doc.timestamp,
            duration_ns=max(duration, 0),
            doc=doc,
            error=doc.text("event.outcome") == "failure",
        )

    @property
    def start_ns(self) -> int:
        return int(self.start.timestamp() * 1_000_000) * 1000 if self.start else 0


@dataclass(frozen=True, slots=True)
class Row:
    """A span placed in the tree: its depth, its tree prefix (``│  └─ ``) and whether its parent is missing."""

    span: Span
    depth: int
    prefix: str
    orphan: bool


def span_tree(spans: Sequence[Span]) -> list[Row]:
    """Depth-first rows, children in start order; orphans and cycles never lose a span."""
    ids = {s.span_id for s in spans if s.span_id}
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    for s in spans:
        if s.parent_id and s.parent_id in ids and s.parent_id != s.span_id:
            children.setdefault(s.parent_id, []).append(s)
        else:
            roots.append(s)
    order = lambda s: (s.start_ns, s.span_id)  # noqa: E731
    rows: list[Row] = []
    placed: set[int] = set()

    def visit(s: Span, depth: int, lead: str, last: bool, orphan: bool) -> None:
        if id(s) in placed:
            return
        placed.add(id(s))
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        rows.append(Row(s, depth, lead + branch, orphan))
        kids = sorted(children.get(s.span_id, []), key=order)
        below = lead + ("" if depth == 0 else ("   " if last else "│  "))
        for i, k in enumerate(kids):
            visit(k, depth + 1, below, i == len(kids) - 1, False)

    for r in sorted(roots, key=order):
        visit(r, 0, "", True, bool(r.parent_id))
    # Spans only reachable through a cycle: show them as roots rather than drop them.
    for s in sorted(spans, key=order):
        if id(s) not in placed:
            visit(s, 0, "", True, True)
    return rows


def bar(start_ns: int, duration_ns: int, t0: int, total: int, width: int) -> str:
    """``   ██████     `` : where the span lies on the trace's time axis (at least one cell)."""
    if total <= 0:
        return "█" * width
    begin = int((start_ns - t0) / total * width)
    end = int((start_ns + duration_ns - t0) / total * width + 0.999)
    begin = min(max(begin, 0), width - 1)
    end = min(max(end, begin + 1), width)
    return " " * begin + "█" * (end - begin) + " " * (width - end)


def waterfall(trace_id: str, spans: Sequence[Span], *, colour: bool, width: int = 40) -> list[str]:
    """The header line and one line per span."""
    if not spans:
        return []
    rows = span_tree(spans)
    t0 = min(s.start_ns for s in spans)
    t_end = max(s.start_ns + s.duration_ns for s in spans)
    services = sorted({s.service for s in spans})
    first = min((s.start for s in spans if s.start), default=None)
    head = (
        f"trace {trace_id}  {len(spans)} span{'s' * (len(spans) != 1)}, {len(services)} "
        f"service{'s' * (len(services) != 1)}, {format_duration_ns(t_end - t0) or '0µs'}"
        + (f", {errors} failed" if (errors := sum(s.error for s in spans)) else "")
        + (f", started {iso_ms(first)}" if first else "")
    )
    svc_w = max(len(s) for s in services)
    name_w = max(len(r.prefix) + len(r.span.name) + (3 if r.orphan else 0) + (2 if r.span.error else 0) for r in rows)
    lines = [head]
    for r in rows:
        s = r.span
        name = r.prefix + s.name + (" ✗" if s.error else "") + (" ↑?" if r.orphan else "")
        svc = s.service.ljust(svc_w)
        cells = bar(s.start_ns, s.duration_ns, t0, t_end - t0, width)
        dur = (format_duration_ns(s.duration_ns) or "0µs").rjust(8)
        if colour:
            c = pod_colour(s.service)
            svc = f"\x1b[{c}m{svc}{RESET}"
            cells = f"\x1b[{c}m{cells}{RESET}"
        lines.append(f"  {svc}  {name.ljust(name_w)}  {dur} |{cells}|")
    return lines


def tree_json(spans: Sequence[Span]) -> list[dict[str, Any]]:
    """The spans in tree order, each with its ``depth`` and the document's fields."""
    out: list[dict[str, Any]] = []
    for r in span_tree(spans):
        obj: dict[str, Any] = {"_id": r.span.doc.id, "_index": r.span.doc.index, "depth": r.depth}
        obj.update(r.span.doc.source)
        out.append(obj)
    return out
