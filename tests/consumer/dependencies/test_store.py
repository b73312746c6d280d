"""The store on the real Elasticsearch: replays, redeliveries and late spans never count a call twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

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

T0 = 1_764_600_000 * 1_000_000  # a whole 300 s bucket, in microseconds


def rpc_trace(trace: str) -> list[SpanLink]:
    """web -> auth (Zipkin shared span) -> db, auth's db call failing."""
    return [
        SpanLink(trace, "01", (), "web", "server", False, T0),
        SpanLink(trace, "02", ("01",), "web", "client", False, T0 + 10),
        SpanLink(trace, "02", ("01",), "auth", "server", False, T0 + 11),
        SpanLink(trace, "03", ("02",), "auth", "client", True, T0 + 20),
        SpanLink(trace, "04", ("03",), "db", "server", True, T0 + 21),
    ]


@pytest.fixture
async def store(es_url: str, unique_name: str) -> AsyncIterator[DependencyStore]:
    es = make_client(ElasticsearchConfig(url=es_url))
    cfg = IndexConfig(prefix=unique_name)
    await install_templates(es, cfg)
    await install_dependency_templates(es, cfg)
    try:
        yield DependencyStore(es, unique_name, bucket_s=300)
    finally:
        await es.indices.delete(index=f"{unique_name}-*", ignore_unavailable=True, allow_no_indices=True)
        await remove_dependency_templates(es, unique_name)  # first: they use the settings component
        await remove_templates(es, unique_name)
        await es.close()


async def jaeger_view(store: DependencyStore) -> dict[tuple[str, str], tuple[int, int]]:
    """What Jaeger's /api/dependencies computes: every document of the window, summed by pair."""
    await store.es.indices.refresh(index=f"{store.prefix}-jaeger-dependencies-*")
    resp = await store.es.search(index=f"{store.prefix}-jaeger-dependencies-*", size=10_000)
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for hit in resp.body["hits"]["hits"]:
        for d in hit["_source"]["dependencies"]:
            calls, errors = out.get((d["parent"], d["child"]), (0, 0))
            out[(d["parent"], d["child"])] = (calls + d["callCount"], errors + d["errorCount"])
    return out


async def flush(store: DependencyStore, *flushes: TraceFlush) -> None:
    written = await store.write_traces(flushes)
    await store.rollup(written.buckets)


async def test_counts_equal_the_reference_and_survive_replays(store: DependencyStore) -> None:
    traces = [rpc_trace(f"{i:032x}") for i in range(1, 4)]
    for i, spans in enumerate(traces):
        await flush(store, TraceFlush(spans[0].trace_id, i % 2, tuple(spans), ()))
    expected = count_links(e for spans in traces for e in trace_edges(spans))
    assert expected[("web", "auth")] == (3, 0) and expected[("auth", "db")] == (3, 3)
    assert await jaeger_view(store) == expected

    # A crash and redelivery: the same links again, in other groupings, and one trace twice in a batch.
    await flush(store, TraceFlush(traces[0][0].trace_id, 0, tuple(traces[0][:2]), ()))
    await flush(
        store,
        TraceFlush(traces[1][0].trace_id, 1, tuple(traces[1]), ()),
        TraceFlush(traces[1][0].trace_id, 1, tuple(traces[1][3:]), ()),
    )
    assert await jaeger_view(store) == expected


async def test_late_spans_link_against_the_stored_trace(store: DependencyStore) -> None:
    spans = rpc_trace("ab" * 16)
    trace_id = spans[0].trace_id
    # The first flush lacks the client half of the shared span: the server half links from web's root.
    await flush(store, TraceFlush(trace_id, 0, (spans[0], spans[2]), ()))
    assert await jaeger_view(store) == count_links(trace_edges([spans[0], spans[2]])) == {("web", "auth"): (1, 0)}
    # The rest arrives late, in a second flush: the calls are recomputed over the whole trace.
    await flush(store, TraceFlush(trace_id, 0, (spans[1], spans[3], spans[4]), ()))
    assert await jaeger_view(store) == count_links(trace_edges(spans))
