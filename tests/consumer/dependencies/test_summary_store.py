"""Trace summaries on the real Elasticsearch: known shapes -> exact summaries; replays change nothing;
late spans update a summary within the horizon (moved by the store's clock, not by waiting)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from consumer.config import ElasticsearchConfig, IndexConfig
from consumer.dependencies.join import TraceFlush
from consumer.dependencies.link import SpanLink
from consumer.dependencies.linker import count_links, trace_edges
from consumer.dependencies.store import DependencyStore
from consumer.dependencies.templates import install_dependency_templates, remove_dependency_templates
from consumer.es_client import make_client
from consumer.index_templates import install_templates, remove_templates

pytestmark = pytest.mark.integration

T0 = 1_764_633_600_000_000  # 2025-12-02T00:00:00Z, microseconds
NOW = T0 / 1_000_000 + 5.0
HORIZON = 3600.0


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


def span(trace: str, sid: str, parent: str | None, service: str, op: str, start: int, dur: int,
         kind: str = "", error: bool = False, status: int = 0) -> SpanLink:
    return SpanLink(trace, sid, (parent,) if parent else (), service, kind, error, T0 + start, "", op, dur, status)


def checkout(trace: str) -> list[SpanLink]:
    return [
        span(trace, "r1", None, "frontend", "GET /checkout", 0, 900_000, "server", True, 503),
        span(trace, "c1", "r1", "frontend", "POST checkout", 1_000, 800_000, "client"),
        span(trace, "s1", "c1", "checkout", "POST /checkout", 2_000, 790_000, "server", True, 500),
        span(trace, "d1", "s1", "checkout", "SELECT", 3_000, 10_000, "client"),
    ]


@pytest.fixture
async def env(es_url: str, unique_name: str) -> AsyncIterator[tuple[DependencyStore, Clock]]:
    es = make_client(ElasticsearchConfig(url=es_url))
    cfg = IndexConfig(prefix=unique_name)
    await install_templates(es, cfg)
    await install_dependency_templates(es, cfg)
    clock = Clock()
    try:
        yield DependencyStore(es, unique_name, bucket_s=300, now=clock, summary_horizon=HORIZON), clock
    finally:
        await es.indices.delete(index=f"{unique_name}-*", ignore_unavailable=True, allow_no_indices=True)
        await remove_dependency_templates(es, unique_name)
        await remove_templates(es, unique_name)
        await es.close()


async def stored(store: DependencyStore, trace: str) -> tuple[dict[str, Any], int]:
    """The trace's summary as stored, and its ``_seq_no`` (changes with every write)."""
    resp = await store.es.get(index=f"{store.prefix}-traces-2025.12.02", id=trace)
    return resp.body["_source"], int(resp.body["_seq_no"])


async def write(store: DependencyStore, partition: int, *spans: SpanLink) -> tuple[int, int]:
    written = await store.write_traces([TraceFlush(spans[0].trace_id, partition, spans, ())])
    await store.rollup(written.buckets)
    return written.summaries, written.summaries_final


async def test_a_whole_trace_then_a_replay_changes_nothing(env: tuple[DependencyStore, Clock]) -> None:
    store, clock = env
    trace = "1" * 32
    assert await write(store, 0, *checkout(trace)) == (1, 0)
    summary, seq = await stored(store, trace)
    assert summary == {
        "trace_id": trace, "start": "2025-12-02T00:00:00.000000Z", "start_us": T0,
        "end": "2025-12-02T00:00:00.900000Z", "duration_us": 900_000,
        "root": {"arrived": True, "span_id": "r1", "service": "frontend", "operation": "GET /checkout",
                 "error": True, "status": 503},
        "services": ["checkout", "frontend"],
        "operations": ["GET /checkout", "POST /checkout", "POST checkout", "SELECT"],
        "spans": 4, "errors": 2,
        "first_seen": "2025-12-02T00:00:05Z", "updated": "2025-12-02T00:00:05Z",
    }
    clock.t += 30
    # A replay, in two other groupings, seen by another partition's owner: not even rewritten.
    assert await write(store, 1, *checkout(trace)[2:]) == (0, 0)
    assert await write(store, 0, *reversed(checkout(trace))) == (0, 0)
    assert await stored(store, trace) == (summary, seq)


async def test_missing_root_then_a_late_child_then_past_the_horizon(env: tuple[DependencyStore, Clock]) -> None:
    store, clock = env
    trace = "2" * 32
    spans = checkout(trace)
    await write(store, 0, *spans[2:])  # the frontend's spans have not come (yet)
    summary, _ = await stored(store, trace)
    assert summary["root"] == {"arrived": False, "span_id": "s1", "service": "checkout",
                               "operation": "POST /checkout", "error": True, "status": 500}
    assert (summary["start_us"], summary["duration_us"], summary["spans"]) == (T0 + 2_000, 790_000, 2)

    clock.t += 600  # ten minutes later: the root and its client span, then a late child ending after the root
    late = span(trace, "q1", "s1", "payments", "charge", 5_000, 1_200_000, "server", True)
    await write(store, 0, *spans[:2])
    await write(store, 0, late)
    summary, seq = await stored(store, trace)
    assert summary["root"]["arrived"] is True and summary["root"]["service"] == "frontend"
    assert summary["duration_us"] == 900_000  # the root's own duration decides
    assert (summary["spans"], summary["errors"]) == (5, 3)
    assert summary["services"] == ["checkout", "frontend", "payments"]
    assert summary["first_seen"] == "2025-12-02T00:00:05Z" and summary["updated"] == "2025-12-02T00:10:05Z"

    clock.t = NOW + HORIZON + 1  # past the horizon: the summary is final, the dependency graph still counts
    past = span(trace, "z1", "q1", "ledger", "append", 6_000, 1_000, "server")
    assert await write(store, 0, past) == (0, 1)
    assert await stored(store, trace) == (summary, seq)
    calls = count_links(trace_edges([*spans, late, past]))
    assert calls[("payments", "ledger")] == (1, 0)
    await store.es.indices.refresh(index=f"{store.prefix}-jaeger-dependencies-*")
    resp = await store.es.search(index=f"{store.prefix}-jaeger-dependencies-*", size=100)
    pairs = {(d["parent"], d["child"]) for h in resp.body["hits"]["hits"] for d in h["_source"]["dependencies"]}
    assert ("payments", "ledger") in pairs


async def test_without_a_horizon_no_summaries_are_written(env: tuple[DependencyStore, Clock]) -> None:
    store, _ = env
    off = DependencyStore(store.es, store.prefix, bucket_s=300, now=store._now, summary_horizon=None)
    trace = "3" * 32
    written = await off.write_traces([TraceFlush(trace, 0, tuple(checkout(trace)), ())])
    assert (written.traces, written.summaries) == (1, 0)
    assert (await store.es.indices.get(index=f"{store.prefix}-traces-*", allow_no_indices=True)).body == {}
    assert (await store.es.indices.get(index=f"{store.prefix}-tracedeps-*")).body  # the trace itself is stored
