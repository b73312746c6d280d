"""The join: a trace is flushed once quiet, caps evict the oldest (flushed, not dropped)."""

from __future__ import annotations

from consumer.dependencies.join import TraceJoin
from consumer.dependencies.link import SpanLink


def link(trace: str, span: str, *refs: str) -> SpanLink:
    return SpanLink(trace, span, tuple(refs), "svc", "server", False, 1)


def test_trace_is_due_after_the_horizon_of_its_last_span() -> None:
    join = TraceJoin(horizon=10, max_age=100, max_traces=10, max_spans=100)
    join.add(link("t1", "a"), partition=0, offset=5, now=0)
    join.add(link("t1", "b", "a"), partition=0, offset=6, now=8)
    assert join.due(now=17) == []  # 9 s since the last span
    (flush,) = join.due(now=18)
    assert (flush.trace_id, flush.offsets, len(flush.links), flush.evicted) == ("t1", (5, 6), 2, False)
    assert len(join) == 0 and join.spans == 0


def test_a_trace_that_never_goes_quiet_is_flushed_at_max_age() -> None:
    join = TraceJoin(horizon=10, max_age=30, max_traces=10, max_spans=100)
    for i in range(31):
        join.add(link("busy", f"s{i}"), 0, i, now=float(i))
    (flush,) = join.due(now=30)
    assert len(flush.offsets) == 31


def test_caps_flush_the_oldest_trace_early_and_count_it() -> None:
    join = TraceJoin(horizon=10, max_age=100, max_traces=2, max_spans=3)
    join.add(link("t1", "a"), 0, 0, now=0)
    join.add(link("t2", "a"), 1, 0, now=1)
    join.add(link("t3", "a"), 0, 1, now=2)  # third trace: t1 goes
    join.add(link("t3", "b"), 0, 2, now=3)
    join.add(link("t3", "c"), 0, 3, now=4)  # four spans: t2 goes
    flushed = join.due(now=5)
    assert [(f.trace_id, f.evicted) for f in flushed] == [("t1", True), ("t2", True)]
    assert join.evictions == 2 and len(join) == 1 and join.spans == 3


def test_a_duplicate_link_is_held_once_but_its_offset_is_kept() -> None:
    join = TraceJoin(horizon=1, max_age=100, max_traces=10, max_spans=100)
    join.add(link("t1", "a"), 0, 0, now=0)
    join.add(link("t1", "a"), 0, 1, now=0)
    (flush,) = join.due(now=1)
    assert flush.offsets == (0, 1) and len(flush.links) == 1


def test_revoked_partitions_are_taken_out() -> None:
    join = TraceJoin(horizon=10, max_age=100, max_traces=10, max_spans=100)
    join.add(link("t1", "a"), 0, 0, now=0)
    join.add(link("t2", "a"), 1, 0, now=0)
    assert [f.trace_id for f in join.take_partitions({1})] == ["t2"]
    assert [f.trace_id for f in join.drain()] == ["t1"]
