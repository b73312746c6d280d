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
from logpipe.tools.search.render import BOLD, RESET, format_duration_ns, pod_colour, text_line
from logpipe.tools.search.span_timing import Section, critical_path, self_time
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
    shared: bool = False
    """A Zipkin shared server half: same span id as its client half (``_id`` ends ``-shared``)."""

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
            shared=doc.id.endswith("-shared"),
        )

    @property
    def start_ns(self) -> int:
        # Jaeger's ``startTime`` (µs, an integer) when stored; ``@timestamp`` loses nothing at µs either,
        # but float seconds would round sub-µs sums.
        start_us = self.doc.get("startTime")
        if isinstance(start_us, int) and not isinstance(start_us, bool) and start_us > 0:
            return start_us * 1000
        return int(self.start.timestamp() * 1_000_000) * 1000 if self.start else 0

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns


@dataclass(frozen=True, slots=True)
class Row:
    """A span placed in the tree: its depth, its tree prefix (``│  └─ ``) and whether its parent is missing."""

    span: Span
    depth: int
    prefix: str
    orphan: bool
    parent: int | None = None
    """The index of its parent's row, None for a root."""
    lead: str = ""
    """The prefix its children's branches hang from (``│  ``): where lines under it are drawn."""


def span_tree(spans: Sequence[Span]) -> list[Row]:
    """Depth-first rows, children in start order; orphans and cycles never lose a span.

    A Zipkin shared server half (same span id as its client half) hangs under the client half, and
    the spans naming that id as parent under the server half — as Jaeger's span-id deduper arranges
    them — so the call's server side sits inside the call, not beside it.
    """
    first: dict[str, Span] = {}
    server_half: dict[str, Span] = {}
    for s in spans:
        if s.shared:
            server_half.setdefault(s.span_id, s)
        elif s.span_id:
            first.setdefault(s.span_id, s)
    children: dict[int, list[Span]] = {}
    roots: list[Span] = []
    for s in spans:
        if s.shared and first.get(s.span_id) is not None:
            parent: Span | None = first[s.span_id]
        else:
            parent = server_half.get(s.parent_id) or first.get(s.parent_id) if s.parent_id else None
        if parent is not None and parent is not s:
            children.setdefault(id(parent), []).append(s)
        else:
            roots.append(s)
    order = lambda s: (s.start_ns, s.span_id)  # noqa: E731
    rows: list[Row] = []
    placed: set[int] = set()

    def visit(root: Span, orphan: bool) -> None:
        # Iterative depth-first walk: a very deep trace must not hit the recursion limit.
        todo: list[tuple[Span, int, str, bool, bool, int | None]] = [(root, 0, "", True, orphan, None)]
        while todo:
            s, depth, lead, last, orph, parent = todo.pop()
            if id(s) in placed:
                continue
            placed.add(id(s))
            branch = "" if depth == 0 else ("└─ " if last else "├─ ")
            below = lead + ("" if depth == 0 else ("   " if last else "│  "))
            me = len(rows)
            rows.append(Row(s, depth, lead + branch, orph, parent, below))
            kids = [k for k in sorted(children.get(id(s), []), key=order) if id(k) not in placed]
            for i in range(len(kids) - 1, -1, -1):
                todo.append((kids[i], depth + 1, below, i == len(kids) - 1, False, me))

    for r in sorted(roots, key=order):
        visit(r, bool(r.parent_id))
    # Spans only reachable through a cycle: show them as roots rather than drop them.
    for s in sorted(spans, key=order):
        if id(s) not in placed:
            visit(s, True)
    return rows


@dataclass(frozen=True, slots=True)
class TraceTiming:
    """Where the trace's time went, per row of :func:`span_tree` (same indices)."""

    start_ns: int
    end_ns: int
    """The window the critical path covers: the root span, or first start → last end without one root."""
    self_ns: list[int]
    critical: list[list[tuple[int, int]]]
    """Per row, its stretches ``(start, end)`` on the critical path (empty: not on it)."""
    path: list[Section]
    """The critical path in time order; ``node`` is a row index, or -1 for time no span of the trace
    holds (a gap between spans whose common parent is missing)."""

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def on_path(self, row: int) -> bool:
        return bool(self.critical[row])

    def critical_ns(self, row: int) -> int:
        return sum(e - s for s, e in self.critical[row])


def trace_timing(rows: Sequence[Row]) -> TraceTiming:
    """Self time of every span and the trace's critical path (:mod:`span_timing`) over the rows' tree.

    The path starts at the one root span when there is exactly one; spans whose parent is missing
    then hang from it (they ran inside the request, under a span we did not get). With no root or
    several, a virtual root spans first start → last end and holds the gaps between them.
    """
    n = len(rows)
    if n == 0:
        return TraceTiming(0, 0, [], [], [])
    start = [r.span.start_ns for r in rows]
    end = [max(r.span.end_ns, r.span.start_ns) for r in rows]
    children: list[list[int]] = [[] for _ in range(n + 1)]  # the last one: the virtual root
    tops = []
    for i, r in enumerate(rows):
        if r.parent is None:
            tops.append(i)
        else:
            children[r.parent].append(i)
    self_ns = [self_time(start[i], end[i], ((start[c], end[c]) for c in children[i])) for i in range(n)]
    true_roots = [i for i in tops if not rows[i].orphan]
    if len(true_roots) == 1:
        root = true_roots[0]
        children[root] = children[root] + [i for i in tops if i != root]
    else:
        root = n
        children[n] = tops
        start.append(min(start))
        end.append(max(end))
    path = critical_path(start, end, children, root)
    critical: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for sec in path:
        if sec.node < n:
            critical[sec.node].append((sec.start, sec.end))
    path = [sec if sec.node < n else Section(-1, sec.start, sec.end) for sec in path]
    return TraceTiming(start[root], end[root], self_ns, critical, path)


def place_logs(rows: Sequence[Row], logs: Sequence[LogDoc]) -> tuple[dict[int, list[LogDoc]], list[LogDoc]]:
    """Each log line under the row of the span whose id its ``span.id`` carries (of a Zipkin shared
    span's two halves, the one of the line's own Component); the rest, in their order, apart."""
    row_of: dict[str, int] = {}
    row_of_service: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        if r.span.span_id:
            row_of.setdefault(r.span.span_id, i)
            row_of_service.setdefault((r.span.span_id, r.span.service), i)
    placed: dict[int, list[LogDoc]] = {}
    rest: list[LogDoc] = []
    for d in logs:
        sid = d.text(F.SPAN_ID)
        at = row_of_service.get((sid, d.text(F.COMPONENT)), row_of.get(sid)) if sid else None
        if at is None:
            rest.append(d)
        else:
            placed.setdefault(at, []).append(d)
    return placed, rest


def _cells(t0: int, total: int, width: int, start_ns: int, end_ns: int) -> tuple[int, int]:
    """The cells ``[begin, end)`` an interval covers on the time axis (at least one)."""
    if total <= 0:
        return 0, width
    begin = int((start_ns - t0) / total * width)
    end = int((end_ns - t0) / total * width + 0.999)
    begin = min(max(begin, 0), width - 1)
    end = min(max(end, begin + 1), width)
    return begin, end


def bar(
    start_ns: int, duration_ns: int, t0: int, total: int, width: int, critical: Sequence[tuple[int, int]] | None = None
) -> str:
    """``   ░░██░░     `` : where the span lies on the trace's time axis (at least one cell). With
    ``critical`` given, its stretches on the critical path are ``█`` and the rest of it ``░``."""
    begin, end = _cells(t0, total, width, start_ns, start_ns + duration_ns)
    if critical is None:
        return " " * begin + "█" * (end - begin) + " " * (width - end)
    cells = [" "] * begin + ["░"] * (end - begin) + [" "] * (width - end)
    for s, e in critical:
        b, f = _cells(t0, total, width, s, e)
        for c in range(max(b, begin), min(f, end)):
            cells[c] = "█"
    return "".join(cells)


CRITICAL_MARK = "◆"


def waterfall(
    trace_id: str,
    spans: Sequence[Span],
    *,
    colour: bool,
    width: int = 40,
    logs: Sequence[LogDoc] = (),
) -> list[str]:
    """The header line, a column line, then one line per span, each followed by the log lines that
    carry its span id. ``◆`` marks the spans on the critical path; in a bar ``█`` is the span's time on
    the critical path and ``░`` the rest of it."""
    if not spans:
        return []
    rows = span_tree(spans)
    timing = trace_timing(rows)
    under, _ = place_logs(rows, logs)
    t0 = min(s.start_ns for s in spans)
    t_end = max(s.end_ns for s in spans)
    services = sorted({s.service for s in spans})
    first = min((s.start for s in spans if s.start), default=None)
    on_path = sum(timing.on_path(i) for i in range(len(rows)))
    head = (
        f"trace {trace_id}  {len(spans)} span{'s' * (len(spans) != 1)}, {len(services)} "
        f"service{'s' * (len(services) != 1)}, {format_duration_ns(timing.duration_ns) or '0µs'}"
        + (f", {errors} failed" if (errors := sum(s.error for s in spans)) else "")
        + (f", started {iso_ms(first)}" if first else "")
        + f", critical path {on_path} span{'s' * (on_path != 1)}"
    )
    svc_w = max(len(s) for s in (*services, "service"))
    name_w = max(len(r.prefix) + len(r.span.name) + (3 if r.orphan else 0) + (2 if r.span.error else 0) for r in rows)
    name_w = max(name_w, len("span"))
    lines = [head, f"  {'service'.ljust(svc_w)}  {'span'.ljust(name_w)}  {'duration':>8} {'self':>8}  "
             f"{CRITICAL_MARK} █ critical path, ░ rest of the span"]
    for i, r in enumerate(rows):
        s = r.span
        name = r.prefix + s.name + (" ✗" if s.error else "") + (" ↑?" if r.orphan else "")
        svc = s.service.ljust(svc_w)
        cells = bar(s.start_ns, s.duration_ns, t0, t_end - t0, width, timing.critical[i])
        dur = (format_duration_ns(s.duration_ns) or "0µs").rjust(8)
        own = (format_duration_ns(timing.self_ns[i]) or "0µs").rjust(8)
        mark = CRITICAL_MARK if timing.on_path(i) else " "
        if colour:
            c = pod_colour(s.service)
            svc = f"\x1b[{c}m{svc}{RESET}"
            cells = f"\x1b[{c}m{cells}{RESET}"
            if timing.on_path(i):
                mark = f"{BOLD}{mark}{RESET}"
        lines.append(f"{mark} {svc}  {name.ljust(name_w)}  {dur} {own} |{cells}|")
        if i in under:
            has_kids = i + 1 < len(rows) and rows[i + 1].parent == i
            lead = " " * (2 + svc_w + 2) + r.lead + ("│ " if has_kids else "  ")
            lines.extend(f"{lead}· {text_line(d, colour=colour)}" for d in under[i])
    return lines


def tree_json(spans: Sequence[Span], logs: Sequence[LogDoc] = ()) -> dict[str, Any]:
    """``spans`` in tree order, each with its ``depth``, ``self_ns``, ``critical`` (on the critical
    path), ``critical_ns``, the log lines carrying its id (``logs``) and the document's fields;
    ``critical_path`` (sections in time order); ``logs``: the lines that name no span of the trace."""
    rows = span_tree(spans)
    timing = trace_timing(rows)
    under, rest = place_logs(rows, logs)
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        obj: dict[str, Any] = {"_id": r.span.doc.id, "_index": r.span.doc.index, "depth": r.depth}
        obj.update(r.span.doc.source)
        obj["self_ns"] = timing.self_ns[i]
        obj["critical"] = timing.on_path(i)
        obj["critical_ns"] = timing.critical_ns(i)
        obj["logs"] = [log_json(d) for d in under.get(i, [])]
        out.append(obj)
    path = [
        {
            "span_id": rows[sec.node].span.span_id if sec.node >= 0 else None,
            "_id": rows[sec.node].span.doc.id if sec.node >= 0 else None,
            "start_ns": sec.start,
            "end_ns": sec.end,
        }
        for sec in timing.path
    ]
    return {
        "duration_ns": timing.duration_ns,
        "spans": out,
        "critical_path": path,
        "logs": [log_json(d) for d in rest],
    }


def log_json(doc: LogDoc) -> dict[str, Any]:
    """A log line as ``--json`` prints it: ``_id``, ``_index`` and the document."""
    return {"_id": doc.id, "_index": doc.index, **doc.source}
