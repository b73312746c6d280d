"""The dependency graph end to end: span lines on Kafka -> two consumer replicas -> Jaeger's /api/dependencies,
and the trace summaries the same stage writes (each trace's spans met in one place: exact summaries).

Hand-built traces whose graph is known, in the shapes tracers write (OTLP/JSON per service, and a
Zipkin v2 list with a shared client/server span), one file per service so the spans of one trace
land on different partitions and so at different replicas. The real Jaeger, reading this test's
index prefix, must answer exactly the known graph — which is also what the spark-dependencies
rules (``consumer/dependencies/linker.py``) give on the span documents the consumers stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumer.dependencies.link import SpanLink, link_from_document
from consumer.dependencies.linker import count_links, trace_edges
from logpipe.core.envelope import LineRecord, SourceMeta
from tests.consumer.story import ConsumerStory
from tests.integration.jaeger_api import get, private_jaeger

pytestmark = pytest.mark.integration

N = 12  # traces of the shop; every fourth payment fails


@pytest.fixture
async def story(kafka_bootstrap: str, es_url: str, unique_name: str) -> AsyncIterator[ConsumerStory]:
    env = ConsumerStory(kafka_bootstrap, es_url, unique_name)
    env.topics = {"trace": f"{unique_name}-trace"}
    await env.create_topics(partitions=3)
    try:
        yield env
    finally:
        await env.cleanup()  # also the links topic and the dependency templates


def kv(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def otlp(service: str, spans: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"resourceSpans": [{
        "resource": {"attributes": [kv("service.name", service)]},
        "scopeSpans": [{"scope": {"name": "shop"}, "spans": spans}],
    }]})


def ospan(
    trace: str, sid: str, parent: str, kind: int, start_ns: int, error: bool = False, **attrs: str
) -> dict[str, Any]:
    return {
        "traceId": trace, "spanId": sid, "parentSpanId": parent, "name": f"op-{sid[-2:]}", "kind": kind,
        "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(start_ns + 5_000_000),
        "attributes": [kv(k.replace("_", "."), v) for k, v in attrs.items()],
        "status": {"code": 2 if error else 1},
    }


def shop_lines(i: int, t0: int) -> dict[str, list[bytes]]:
    """frontend -> checkout -> {payments, inventory -> (peer) redis}, as each service's SDK writes it."""
    t = f"{0xABC000 + i:032x}"
    s = [f"{i + 1:08x}{k + 1:08x}" for k in range(8)]  # never all zeros (no span)
    SERVER, CLIENT = 2, 3
    return {
        "frontend": [otlp("frontend", [ospan(t, s[0], "", SERVER, t0), ospan(t, s[1], s[0], CLIENT, t0 + 1)])],
        "checkout": [otlp("checkout", [
            ospan(t, s[2], s[1], SERVER, t0 + 2),
            ospan(t, s[3], s[2], CLIENT, t0 + 3),
            ospan(t, s[5], s[2], CLIENT, t0 + 5),
        ])],
        "payments": [otlp("payments", [ospan(t, s[4], s[3], SERVER, t0 + 4, error=i % 4 == 0)])],
        "inventory": [otlp("inventory", [
            ospan(t, s[6], s[5], SERVER, t0 + 6),
            ospan(t, s[7], s[6], CLIENT, t0 + 7, peer_service="redis"),
        ])],
    }


def zipkin_lines(i: int, t0_us: int) -> dict[str, list[bytes]]:
    """web -> auth over a Zipkin shared span: the client and the server half carry one id."""
    t = f"{0xDEF000 + i:032x}"
    root, rpc = f"{i + 1:08x}00000001", f"{i + 1:08x}00000002"

    def z(sid: str, parent: str | None, kind: str, service: str, ts: int, **extra: Any) -> dict[str, Any]:
        out = {"traceId": t, "id": sid, "kind": kind, "name": "rpc", "timestamp": ts, "duration": 900,
               "localEndpoint": {"serviceName": service}, **extra}
        if parent:
            out["parentId"] = parent
        return out

    return {
        "web": [orjson.dumps([z(root, None, "SERVER", "web", t0_us), z(rpc, root, "CLIENT", "web", t0_us + 10)])],
        "auth": [orjson.dumps([z(rpc, root, "SERVER", "auth", t0_us + 20, shared=True)])],
    }


EXPECTED = {
    ("frontend", "frontend"): N, ("frontend", "checkout"): N, ("checkout", "checkout"): 2 * N,
    ("checkout", "payments"): N, ("checkout", "inventory"): N, ("inventory", "inventory"): N,
    ("inventory", "redis"): N,
    ("web", "auth"): 3, ("web", "web"): 3,
}
"""The known graph: spark-dependencies counts in-process parent/child pairs as self-calls too."""


def records(story: ConsumerStory, lines_by_service: list[dict[str, list[bytes]]]) -> list[LineRecord]:
    out: list[LineRecord] = []
    offsets: dict[str, int] = {}
    for lines in lines_by_service:
        for service, values in lines.items():
            meta = SourceMeta(
                node="node-1", namespace="shop", pod=f"{service}-1", pod_uid=f"uid-{service}", container="app",
                component=service, log_type="trace", path=f"/var/log/{service}-1/trace.log",
                file_id=f"fingerprint::{story.name}-{service}",
            )
            for value in values:
                offset = offsets.get(meta.file_id, 0)
                out.append(LineRecord(meta, offset, value, int(time.time() * 1000)))
                offsets[meta.file_id] = offset + len(value) + 1
    return out


async def reference_counts(story: ConsumerStory) -> dict[tuple[str, str], int]:
    """The spark-dependencies rules over the span documents as stored (read back from Elasticsearch)."""
    await story.es.indices.refresh(index=f"{story.prefix}-jaeger-span-*")
    resp = await story.es.search(index=f"{story.prefix}-jaeger-span-*", size=1000)
    by_trace: dict[str, list[SpanLink]] = {}
    for hit in resp.body["hits"]["hits"]:
        link = link_from_document(hit["_source"], "peer.service")
        assert link is not None
        by_trace.setdefault(link.trace_id, []).append(link)
    counts = count_links(e for links in by_trace.values() for e in trace_edges(links))
    return {pair: calls for pair, (calls, _) in counts.items()}


def jaeger_dependencies(jaeger: str) -> dict[tuple[str, str], int]:
    answer = get(jaeger, "/api/dependencies", endTs=int(time.time() * 1000) + 60_000, lookback=3_600_000)
    return {(d["parent"], d["child"]): d["callCount"] for d in answer.get("data") or ()}


async def test_two_replicas_and_jaeger_show_the_known_graph(story: ConsumerStory, tmp_path: Path) -> None:
    t0 = time.time_ns() - 30_000_000_000
    lines = [shop_lines(i, t0 + i * 1_000_000) for i in range(N)] + [zipkin_lines(i, t0 // 1000) for i in range(3)]
    cfg = story.config(**{
        "trace_dependencies.horizon": "1s", "trace_dependencies.flush_interval": "500ms",
        "trace_dependencies.partitions": 4,
    })
    with private_jaeger(story.es_url, story.prefix, tmp_path / "jaeger") as jaeger:  # before: it blocks a while
        async with story.consumer(cfg) as a, story.consumer(cfg) as b:
            await story.produce(records(story, lines))
            produced = time.monotonic()
            deadline = produced + 60
            while await asyncio.to_thread(jaeger_dependencies, jaeger) != EXPECTED and time.monotonic() < deadline:
                await asyncio.sleep(1)
            visible_after = time.monotonic() - produced
            assert await asyncio.to_thread(jaeger_dependencies, jaeger) == EXPECTED
            assert await reference_counts(story) == EXPECTED
            # Both replicas took part: each owns links partitions; together they read a link per span.
            assert a.dependencies is not None and b.dependencies is not None
            assert a.dependencies.partitions and b.dependencies.partitions
            assert a.dependencies.links_read + b.dependencies.links_read >= N * 8 + 3 * 3
            await story.wait_committed()
    print(f"dependencies visible in Jaeger {visible_after:.1f} s after the spans were produced")
    assert visible_after < 60
    errors = await dependency_errors(story)
    assert errors[("checkout", "payments")] == N // 4 and errors[("frontend", "checkout")] == 0
    assert await trace_summaries(story) == expected_summaries(t0)


def expected_summaries(t0_ns: int) -> dict[str, tuple[Any, ...]]:
    """Per trace: root (arrived, service, operation), start, duration, spans, errors, services."""
    out: dict[str, tuple[Any, ...]] = {}
    for i in range(N):
        start = (t0_ns + i * 1_000_000) // 1000
        services = ["checkout", "frontend", "inventory", "payments"]
        out[f"{0xABC000 + i:032x}"] = (True, "frontend", "op-01", start, 5_000, 8, int(i % 4 == 0), services)
    for i in range(3):
        out[f"{0xDEF000 + i:032x}"] = (True, "web", "rpc", t0_ns // 1000, 900, 3, 0, ["auth", "web"])
    return out


async def trace_summaries(story: ConsumerStory) -> dict[str, tuple[Any, ...]]:
    await story.es.indices.refresh(index=f"{story.prefix}-traces-*")
    resp = await story.es.search(index=f"{story.prefix}-traces-*", size=1000)
    out: dict[str, tuple[Any, ...]] = {}
    for hit in resp.body["hits"]["hits"]:
        s = hit["_source"]
        assert hit["_id"] == s["trace_id"] not in out
        root = s["root"]
        out[s["trace_id"]] = (root["arrived"], root["service"], root["operation"], s["start_us"], s["duration_us"],
                              s["spans"], s["errors"], s["services"])
    return out


async def dependency_errors(story: ConsumerStory) -> dict[tuple[str, str], int]:
    await story.es.indices.refresh(index=f"{story.prefix}-jaeger-dependencies-*")
    resp = await story.es.search(index=f"{story.prefix}-jaeger-dependencies-*", size=1000)
    out: dict[tuple[str, str], int] = {}
    for hit in resp.body["hits"]["hits"]:
        for d in hit["_source"]["dependencies"]:
            out[(d["parent"], d["child"])] = out.get((d["parent"], d["child"]), 0) + d["errorCount"]
    return out
