"""The trace summary's merge logic: a pure function of the set of a trace's spans."""

from __future__ import annotations

import itertools

import pytest

from consumer.dependencies.link import SpanLink, decode_link
from consumer.dependencies.summary import (
    MAX_OPERATIONS,
    accepts,
    iso_us,
    merge_links,
    summarize,
    summary_document,
    unchanged,
)

T = "0af7651916cd43dd8448eb211c80319c"
T0 = 1_764_633_600_000_000  # 2025-12-02T00:00:00Z in microseconds


def span(
    sid: str, parent: str | None, service: str, op: str, start: int, dur: int,
    kind: str = "", error: bool = False, status: int = 0,
) -> SpanLink:
    return SpanLink(T, sid, (parent,) if parent else (), service, kind, error, T0 + start, "", op, dur, status)


CHECKOUT = [
    span("r", None, "frontend", "GET /checkout", 0, 900_000, kind="server", status=502, error=True),
    span("a", "r", "frontend", "call checkout", 1_000, 850_000, kind="client"),
    span("b", "a", "checkout", "POST /pay", 2_000, 840_000, kind="server", error=True),
    span("c", "b", "payments", "charge", 3_000, 800_000, kind="server"),
]


def test_a_whole_trace_takes_the_roots_time_status_and_names() -> None:
    s = summarize(T, CHECKOUT)
    assert s == {
        "trace_id": T,
        "start": iso_us(T0),
        "start_us": T0,
        "end": iso_us(T0 + 900_000),
        "duration_us": 900_000,
        "root": {"arrived": True, "span_id": "r", "service": "frontend", "operation": "GET /checkout",
                 "error": True, "status": 502},
        "services": ["checkout", "frontend", "payments"],
        "operations": ["GET /checkout", "POST /pay", "call checkout", "charge"],
        "spans": 4,
        "errors": 2,
    }
    assert s["end"] == "2025-12-02T00:00:00.900000Z"


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_order_and_duplicates_change_nothing(order: tuple[int, ...]) -> None:
    spans = [CHECKOUT[i] for i in order]
    assert summarize(T, spans + spans[:2]) == summarize(T, CHECKOUT)


def test_a_missing_root_spans_first_start_to_last_end_and_says_so() -> None:
    s = summarize(T, CHECKOUT[2:])  # the root and the client span are lost
    assert s["root"] == {"arrived": False, "span_id": "b", "service": "checkout", "operation": "POST /pay",
                         "error": True}
    assert s["start_us"] == T0 + 2_000
    assert s["duration_us"] == 840_000  # b starts first and ends last
    late_end = span("d", "b", "payments", "refund", 900_000, 200_000)
    s = summarize(T, [*CHECKOUT[2:], late_end])
    assert s["duration_us"] == 900_000 + 200_000 - 2_000  # first start -> last end
    assert s["spans"] == 3 and "status" not in s["root"]


def test_the_root_arriving_late_becomes_the_summary() -> None:
    without = summarize(T, CHECKOUT[1:])
    assert without["root"]["arrived"] is False and without["root"]["span_id"] == "a"
    assert summarize(T, [*CHECKOUT[1:], CHECKOUT[0]]) == summarize(T, CHECKOUT)


def test_a_root_with_unknown_duration_spans_its_children() -> None:
    root = span("r", None, "frontend", "GET /", 0, 0)
    s = summarize(T, [root, span("x", "r", "api", "q", 10, 5_000)])
    assert s["root"]["arrived"] is True and s["duration_us"] == 5_010


def test_a_shared_zipkin_rpc_is_two_spans() -> None:
    client = span("s", "r", "web", "rpc", 10, 100, kind="client")
    server = span("s", "r", "auth", "rpc", 20, 80, kind="server")
    s = summarize(T, [CHECKOUT[0], client, server])
    assert s["spans"] == 3 and s["services"] == ["auth", "frontend", "web"]


def test_a_richer_record_of_a_span_replaces_the_old_one() -> None:
    old = SpanLink(T, "r", (), "frontend", "server", False, T0)  # written before o/d/h existed
    assert decode_link(old.encode()) == old
    new = CHECKOUT[0]
    assert merge_links([old], [new]) == [new]
    assert summarize(T, [old, *CHECKOUT[1:], new]) == summarize(T, CHECKOUT)
    rich = decode_link(new.encode())
    assert (rich.operation, rich.duration_us, rich.status) == ("GET /checkout", 900_000, 502)


def test_operations_are_capped() -> None:
    spans = [span(f"s{i}", "r" if i else None, "api", f"op-{i:04d}", i, 10) for i in range(MAX_OPERATIONS + 50)]
    s = summarize(T, spans)
    assert len(s["operations"]) == MAX_OPERATIONS and s["spans"] == MAX_OPERATIONS + 50


def test_the_horizon_counts_from_the_first_write() -> None:
    now = 1_764_640_000.0
    first = summary_document(summarize(T, CHECKOUT), None, "2025-12-02T01:46:40Z")  # = now
    assert first["first_seen"] == first["updated"] == "2025-12-02T01:46:40Z"
    assert accepts(None, now, 3600)
    assert accepts(first, now + 600, 3600)  # a late child after 10 min
    assert accepts(first, now + 3600, 3600)
    assert not accepts(first, now + 3601, 3600)
    again = summary_document(summarize(T, CHECKOUT[:3]), first, "2025-12-02T01:56:40Z")
    assert again["first_seen"] == first["first_seen"] and again["updated"] == "2025-12-02T01:56:40Z"


def test_a_replay_is_unchanged_and_a_new_span_is_not() -> None:
    stored = summary_document(summarize(T, CHECKOUT), None, "2025-12-02T01:46:40Z")
    assert unchanged(stored, summarize(T, list(reversed(CHECKOUT))))
    assert not unchanged(stored, summarize(T, [*CHECKOUT, span("z", "c", "db", "select", 4_000, 10)]))
    assert not unchanged(None, summarize(T, CHECKOUT))
