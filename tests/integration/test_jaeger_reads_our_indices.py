"""Spans parsed by logpipe and written where the consumer writes them are read by the real Jaeger.

The parser's documents go straight into Elasticsearch here (the pipeline from pod files through
Kafka is tests/integration/test_traces_end_to_end.py), and a Jaeger of our own, over this test's
index prefix, answers its HTTP API from them: services, operations, whole traces, searches.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from consumer.config import IndexConfig
from consumer.index_templates import install_templates, remove_templates
from parsers import LineParser, Many, Parsed
from tests.integration.jaeger_api import get, private_jaeger, search, tags, wait_for_trace
from tests.parsers.stories import headers

pytestmark = pytest.mark.integration

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT, DB, PAY = "00f067aa0ba902b7", "00f067aa0ba902b8", "00f067aa0ba902b9"


@pytest.fixture
async def es(es_url: str, unique_name: str) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(es_url)
    try:
        yield client
    finally:
        await client.indices.delete(index=f"{unique_name}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_templates(client, unique_name)
        await client.close()


def kv(key: str, **value: object) -> dict[str, object]:
    return {"key": key, "value": value}


def otlp_line(service: str, spans: list[dict[str, object]]) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            kv("service.name", stringValue=service),
                            kv("k8s.namespace.name", stringValue="shop"),
                        ]
                    },
                    "scopeSpans": [{"scope": {"name": "shop"}, "spans": spans}],
                }
            ]
        }
    )


def span(span_id: str, parent: str, name: str, start_ns: int, ms: int, kind: int, **over: object) -> dict[str, object]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + ms * 1_000_000),
        **over,
    }


async def index_line(es: AsyncElasticsearch, parser: LineParser, line: bytes) -> int:
    result = parser.parse(line, headers("trace", lp_read_ts=str(int(time.time() * 1000))))
    parts = result.parts if isinstance(result, Many) else (result,)
    body: list[object] = []
    for p in parts:
        assert isinstance(p, Parsed), p
        body += [{"index": {"_index": p.index, "_id": p.doc_id}}, p.doc]
    resp = await es.bulk(operations=body, refresh=True)
    assert not resp["errors"], resp
    return len(parts)


async def test_jaeger_answers_from_the_documents_logpipe_writes(
    es: AsyncElasticsearch, es_url: str, unique_name: str, tmp_path: Path
) -> None:
    await install_templates(es, IndexConfig(prefix=unique_name))
    parser = LineParser(index_prefix=unique_name)
    t0 = time.time_ns() - 5_000_000_000
    await index_line(
        es,
        parser,
        otlp_line(
            "cart",
            [
                span(
                    ROOT,
                    "",
                    "GET /cart",
                    t0,
                    120,
                    2,
                    attributes=[kv("http.response.status_code", intValue="500")],
                    status={"code": 2, "message": "db down"},
                ),
                span(
                    DB,
                    ROOT,
                    "SELECT cart",
                    t0 + 10_000_000,
                    80,
                    3,
                    events=[{"timeUnixNano": str(t0 + 20_000_000), "name": "retry"}],
                ),
            ],
        ),
    )
    await index_line(es, parser, otlp_line("payments", [span(PAY, ROOT, "charge", t0 + 5_000_000, 30, 2)]))
    day = time.strftime("%Y-%m-%d", time.gmtime(t0 / 1e9))
    mapping = await es.indices.get_mapping(index=f"{unique_name}-jaeger-span-{day}")
    props = next(iter(mapping.body.values()))["mappings"]["properties"]
    assert props["tags"]["type"] == "nested" and props["startTimeMillis"]["format"] == "epoch_millis"
    assert props["trace"]["properties"]["id"]["type"] == "keyword"  # ECS beside Jaeger's fields

    with private_jaeger(es_url, unique_name, tmp_path / "jaeger-state") as jaeger:
        assert sorted(get(jaeger, "/api/services")["data"]) == ["cart", "payments"]
        assert sorted(get(jaeger, "/api/services/cart/operations")["data"]) == ["GET /cart", "SELECT cart"]
        trace = wait_for_trace(jaeger, TRACE, 3)
        by_id = {s["spanID"]: s for s in trace["spans"]}
        assert set(by_id) == {ROOT, DB, PAY}
        services = {s["spanID"]: trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
        assert services == {ROOT: "cart", DB: "cart", PAY: "payments"}
        assert by_id[DB]["references"][0]["spanID"] == ROOT and by_id[PAY]["references"][0]["spanID"] == ROOT
        assert by_id[ROOT]["references"] == []
        assert by_id[ROOT]["duration"] == 120_000 and by_id[DB]["duration"] == 80_000
        assert tags(by_id[ROOT])["error"] is True and tags(by_id[ROOT])["span.kind"] == "server"
        assert tags(by_id[DB])["span.kind"] == "client"
        assert by_id[DB]["logs"][0]["fields"][0] == {"key": "event", "type": "string", "value": "retry"}

        found = search(jaeger, service="cart", tags={"error": "true"}, minDuration="100ms")
        assert [t["traceID"] for t in found] == [TRACE]
        assert search(jaeger, service="cart", minDuration="1s") == []
        assert [t["traceID"] for t in search(jaeger, service="payments", operation="charge")] == [TRACE]
