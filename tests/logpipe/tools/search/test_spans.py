"""The span tree and waterfall (unit)."""

from __future__ import annotations

from typing import Any

from logpipe.tools.search.hits import LogDoc
from logpipe.tools.search.spans import Span, bar, place_logs, span_tree, trace_timing, tree_json, waterfall

MS = 1_000_000


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


def test_bar_marks_the_critical_stretches_solid_and_the_rest_light() -> None:
    assert bar(0, 100, 0, 100, 10, [(0, 20), (90, 100)]) == "██░░░░░░░█"
    assert bar(50, 10, 0, 100, 10, []) == "     ░    "
    assert bar(0, 100, 0, 100, 10, [(40, 41)]) == "░░░░█░░░░░"  # a short stretch still shows


def test_waterfall_lines() -> None:
    lines = waterfall("t1", [span("root", None, "GET /", 0, 100, "gw"), span("c", "root", "db", 50, 50)], colour=False,
                      width=10)
    assert lines == [
        "trace t1  2 spans, 2 services, 100.0ms, started 2026-11-27T09:00:00.000Z, critical path 2 spans",
        "  service  span   duration     self  ◆ █ critical path, ░ rest of the span",
        "◆ gw       GET /   100.0ms   50.0ms |█████░░░░░|",
        "◆ pay      └─ db    50.0ms   50.0ms |     █████|",
    ]


def test_failed_spans_are_marked_and_counted() -> None:
    ok = span("root", None, "GET /", 0, 100, "gw")
    failed = {"duration": 20_000_000, "outcome": "failure"}
    bad_src = {**span("c1", "root", "charge", 10, 20).doc.source, "event": failed}
    bad = Span.from_doc(LogDoc("c1", "logpipe-jaeger-span-2026-11-27", bad_src))
    lines = waterfall("t1", [ok, bad], colour=False)
    assert ", 1 failed" in lines[0]
    assert "└─ charge ✗" in lines[3] and "✗" not in lines[2]


def checkout() -> list[Span]:
    """gw GET / 0-100 -> pay charge 10-90 -> (bank 20-60, ledger 65-85) plus a cache call 30-40 in
    parallel with bank, under charge."""
    return [
        span("g", None, "GET /", 0, 100, "gw"),
        span("p", "g", "charge", 10, 80),
        span("b", "p", "bank", 20, 40, "bank"),
        span("c", "p", "cache", 30, 10, "cache"),
        span("l", "p", "ledger", 65, 20),
    ]


def by_name(spans: list[Span]) -> dict[str, tuple[int, bool, int]]:
    """name -> (self ms, on the critical path, critical ms)."""
    rows = span_tree(spans)
    t = trace_timing(rows)
    return {r.span.name: (t.self_ns[i] // MS, t.on_path(i), t.critical_ns(i) // MS) for i, r in enumerate(rows)}


def test_self_time_and_critical_path_of_a_checkout() -> None:
    assert by_name(checkout()) == {
        "GET /": (20, True, 20),
        "charge": (80 - 40 - 20, True, 80 - 40 - 20),  # bank and cache overlap: 20-60 once
        "bank": (40, True, 40),
        "cache": (10, False, 0),  # ran in parallel with bank, which finished later
        "ledger": (20, True, 20),
    }
    t = trace_timing(span_tree(checkout()))
    assert t.duration_ns == 100 * MS
    assert sum(s.length for s in t.path) == t.duration_ns


def test_a_missing_parent_hangs_its_spans_under_the_root_on_the_path() -> None:
    # pay's span never arrived: bank's parent is unknown, yet it ran inside the request
    spans = [span("g", None, "GET /", 0, 100, "gw"), span("b", "lost", "bank", 20, 70, "bank")]
    assert by_name(spans) == {"GET /": (100, True, 30), "bank": (70, True, 70)}


def test_without_a_root_the_path_spans_first_start_to_last_end_with_the_gaps_unheld() -> None:
    spans = [span("a", "lost", "a", 0, 30), span("b", "lost", "b", 50, 50)]
    t = trace_timing(span_tree(spans))
    assert t.duration_ns == 100 * MS
    rel = [(s.node, (s.start - t.start_ns) // MS, (s.end - t.start_ns) // MS) for s in t.path]
    assert rel == [(0, 0, 30), (-1, 30, 50), (1, 50, 100)]


def test_clock_skewed_and_async_children_count_only_inside_their_parent() -> None:
    spans = [
        span("g", None, "GET /", 10, 90, "gw"),  # 10-100
        span("s", "g", "skewed", 0, 30),  # "starts" 10 ms before its parent: host clock behind
        span("a", "g", "audit", 80, 200),  # async: goes on after the response
    ]
    assert by_name(spans) == {"GET /": (90 - 20 - 20, True, 50), "skewed": (30, True, 20), "audit": (200, True, 20)}
    lines = waterfall("t", spans, colour=False, width=30)
    assert ", 90.0ms," in lines[0]  # the trace's duration is the root's, not first start to last end


def log(lid: str, at_ms: int, msg: str, span_id: str | None = None) -> LogDoc:
    src: dict[str, Any] = {
        "@timestamp": f"2026-11-27T09:00:00.{at_ms:03d}Z", "message": msg, "log": {"level": "info"},
        "kubernetes": {"pod": {"name": "pay-1"}}, "trace": {"id": "t"},
    }
    if span_id:
        src["span"] = {"id": span_id}
    return LogDoc(lid, "logpipe-app-2026.11.27", src)


def test_log_lines_go_under_the_span_they_name_and_the_rest_stay_apart() -> None:
    logs = [log("1", 12, "charging", "p"), log("2", 25, "bank says ok", "b"), log("3", 50, "no span"),
            log("4", 60, "unknown span", "zz")]
    rows = span_tree(checkout())
    under, rest = place_logs(rows, logs)
    names = {rows[i].span.name: [d.text("message") for d in ds] for i, ds in under.items()}
    assert names == {"charge": ["charging"], "bank": ["bank says ok"]}
    assert [d.id for d in rest] == ["3", "4"]

    lines = waterfall("t", checkout(), colour=False, width=20, logs=logs)
    charge = next(i for i, ln in enumerate(lines) if "└─ charge" in ln)
    assert lines[charge + 1].endswith("· 2026-11-27T09:00:00.012Z pay-1 INFO charging")
    assert lines[charge + 1].index("│") == lines[charge + 2].index("├─")  # the tree line goes on down
    bank = next(i for i, ln in enumerate(lines) if "├─ bank" in ln)
    assert "bank says ok" in lines[bank + 1]
    assert "no span" not in "".join(lines)  # the caller prints those in the log list


def test_json_carries_self_time_critical_flags_logs_per_span_and_the_path() -> None:
    logs = [log("1", 12, "charging", "p"), log("3", 50, "no span")]
    doc = tree_json(checkout(), logs)
    spans = {s["span"]["name"]: s for s in doc["spans"]}
    assert spans["charge"]["self_ns"] == 20 * MS and spans["charge"]["critical"] is True
    assert spans["cache"]["critical"] is False and spans["cache"]["critical_ns"] == 0
    assert [d["message"] for d in spans["charge"]["logs"]] == ["charging"] and spans["bank"]["logs"] == []
    assert [d["message"] for d in doc["logs"]] == ["no span"]
    assert doc["duration_ns"] == 100 * MS
    assert [(p["span_id"], p["start_ns"] - doc["critical_path"][0]["start_ns"]) for p in doc["critical_path"]] == [
        ("g", 0), ("p", 10 * MS), ("b", 20 * MS), ("p", 60 * MS), ("l", 65 * MS), ("p", 85 * MS), ("g", 90 * MS),
    ]


def shared_half(sid: str, parent: str, name: str, start_ms: int, dur_ms: int, service: str) -> Span:
    """A Zipkin ``shared: true`` server half as stored: the client's span id, ``_id`` ``…-shared``."""
    client = span(sid, parent, name, start_ms, dur_ms, service)
    return Span.from_doc(LogDoc(f"t-{sid}-shared", client.doc.index, client.doc.source))


def test_a_zipkin_shared_server_half_sits_inside_its_client_half_and_takes_its_children() -> None:
    spans = [
        span("r", None, "POST /pay", 0, 100, "gw"),
        span("x", "r", "GET /orders", 10, 60, "gw"),  # the client half
        shared_half("x", "r", "GET /orders", 12, 55, "orders"),  # the server half, same id and parent
        span("db", "x", "SELECT", 20, 40, "orders"),  # orders' own child names the shared id
    ]
    rows = span_tree(spans)
    assert [(r.prefix + r.span.name, r.span.service) for r in rows] == [
        ("POST /pay", "gw"), ("└─ GET /orders", "gw"), ("   └─ GET /orders", "orders"), ("      └─ SELECT", "orders"),
    ]
    assert by_name(spans)["POST /pay"] == (40, True, 40)
    t = trace_timing(rows)
    assert all(t.on_path(i) for i in range(4))  # the server side is on the path, inside the call
    assert [t.self_ns[i] // MS for i in range(4)] == [40, 5, 15, 40]
    # a line of orders naming the shared id goes under orders' half, gw's under gw's
    lines = [log("1", 30, "orders line", "x"), log("2", 11, "gw line", "x")]
    lines[0] = LogDoc("1", lines[0].index, {**lines[0].source, "service": {"name": "orders"}})
    lines[1] = LogDoc("2", lines[1].index, {**lines[1].source, "service": {"name": "gw"}})
    under, rest = place_logs(rows, lines)
    assert {i: [d.id for d in ds] for i, ds in under.items()} == {2: ["1"], 1: ["2"]} and rest == []
