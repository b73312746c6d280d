"""The span tree and waterfall (unit)."""

from __future__ import annotations

from typing import Any

from logpipe.tools.search.hits import LogDoc
from logpipe.tools.search.spans import Span, bar, span_tree, waterfall


def span(sid: str, parent: str | None, name: str, start_ms: int, dur_ms: int, service: str = "pay") -> Span:
    src: dict[str, Any] = {
        "@timestamp": f"2026-11-27T09:00:00.{start_ms:03d}Z",
        "span": {"id": sid, "name": name},
        "event": {"duration": dur_ms * 1_000_000},
        "service": {"name": service},
    }
    if parent:
        src["parent"] = {"id": parent}
    return Span.from_doc(LogDoc(sid, "logpipe-trace-2026.11.27", src))


def test_children_nest_under_parents_in_start_order_and_orphans_stay_visible() -> None:
    spans = [
        span("c2", "root", "second", 50, 10),
        span("root", None, "GET /", 0, 100, "gw"),
        span("c1", "root", "first", 10, 20),
        span("g1", "c1", "grandchild", 12, 5),
        span("o1", "missing", "orphan", 60, 1),
    ]
    rows = span_tree(spans)
    assert [(r.prefix + r.span.name, r.orphan) for r in rows] == [
        ("GET /", False),
        ("├─ first", False),
        ("│  └─ grandchild", False),
        ("└─ second", False),
        ("orphan", True),
    ]


def test_cycles_do_not_lose_spans() -> None:
    rows = span_tree([span("a", "b", "a", 0, 1), span("b", "a", "b", 1, 1)])
    assert sorted(r.span.span_id for r in rows) == ["a", "b"]


def test_bar_positions_on_the_trace_axis() -> None:
    assert bar(0, 100, 0, 100, 10) == "██████████"
    assert bar(50, 10, 0, 100, 10) == "     █    "
    assert bar(99, 0, 0, 100, 10) == "         █"  # never empty


def test_waterfall_lines() -> None:
    lines = waterfall("t1", [span("root", None, "GET /", 0, 100, "gw"), span("c", "root", "db", 50, 50)], colour=False,
                      width=10)
    assert lines == [
        "trace t1  2 spans, 2 services, 100.0ms, started 2026-11-27T09:00:00.000Z",
        "  gw   GET /   100.0ms |██████████|",
        "  pay  └─ db    50.0ms |     █████|",
    ]


def test_failed_spans_are_marked_and_counted() -> None:
    ok = span("root", None, "GET /", 0, 100, "gw")
    failed = {"duration": 20_000_000, "outcome": "failure"}
    bad_src = {**span("c1", "root", "charge", 10, 20).doc.source, "event": failed}
    bad = Span.from_doc(LogDoc("c1", "logpipe-jaeger-span-2026-11-27", bad_src))
    lines = waterfall("t1", [ok, bad], colour=False)
    assert ", 1 failed" in lines[0]
    assert "└─ charge ✗" in lines[2] and "✗" not in lines[1]
