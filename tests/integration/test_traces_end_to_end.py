"""Spans written by real tracers into pod files come back whole from Jaeger's API and logpipe trace.

The OpenTelemetry Python SDK (OTLP/JSON lines, ``span_producers.py``) and py_zipkin (Zipkin v2
lists) write ``trace.log`` in their pods' EmptyDirs; ``logpipe ship`` and ``logpipe consume`` run as
processes; the real Jaeger (``JaegerService`` over this test's index prefix) answers its own HTTP API.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from elasticsearch import AsyncElasticsearch
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from py_zipkin import Kind
from py_zipkin.encoding import Encoding
from py_zipkin.zipkin import zipkin_span

from consumer.index_templates import remove_templates
from logpipe.tools.search.trace_command import TraceOptions, trace_main
from tests.end_to_end import Pipeline
from tests.integration.jaeger_api import get, private_jaeger, search, tags, wait_for_trace
from tests.integration.span_producers import BufferedExporter, ZipkinFileTransport, otel_tracer_provider

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(tmp_path: Path, kafka_bootstrap: str, es_url: str, unique_name: str) -> AsyncIterator[Pipeline]:
    p = Pipeline(tmp_path, kafka_bootstrap, es_url, unique_name)
    try:
        yield p
    finally:
        await asyncio.to_thread(p.stop)
        es = AsyncElasticsearch(es_url)
        try:
            await es.indices.delete(index=f"{unique_name}-*", allow_no_indices=True, ignore_unavailable=True)
            await remove_templates(es, unique_name)
        finally:
            await es.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(unique_name)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()


def otel_checkout(cart_log: Path, pricing_log: Path, cart: str, pricing: str) -> str:
    """cart: GET /cart (server) -> load cart (internal, an event) -> price (client, failed) ->
    pricing: quote (server, its own pod, one span per line). cart's four spans are ONE line."""
    batch = BufferedExporter(cart_log)
    cart_provider = otel_tracer_provider(cart_log, cart, batch)
    pricing_provider = otel_tracer_provider(pricing_log, pricing)
    tracer, remote = cart_provider.get_tracer("shop.cart", "1.0"), pricing_provider.get_tracer("shop.pricing")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "GET")
        root.set_attribute("http.response.status_code", 502)
        with tracer.start_as_current_span("load cart") as load:
            load.add_event("cache miss", {"key": "cart:42"})
            time.sleep(0.02)
        with tracer.start_as_current_span("price", kind=SpanKind.CLIENT) as client:
            with remote.start_as_current_span("quote", kind=SpanKind.SERVER, context=trace.set_span_in_context(client)):
                time.sleep(0.03)
            client.set_status(Status(StatusCode.ERROR, "pricing answered 503"))
        time.sleep(0.01)
        trace_id = format(root.get_span_context().trace_id, "032x")
    batch.flush_line()
    cart_provider.shutdown()
    pricing_provider.shutdown()
    return trace_id


def zipkin_checkout(web_log: Path, web: str) -> str:
    transport = ZipkinFileTransport(web_log)
    with zipkin_span(
        service_name=web,
        span_name="POST /pay",
        transport_handler=transport,
        sample_rate=100.0,
        encoding=Encoding.V2_JSON,
        kind=Kind.SERVER,
    ) as root:
        with zipkin_span(service_name=web, span_name="charge card", kind=Kind.CLIENT) as child:
            child.update_binary_annotations({"error": "card declined", "peer": "bank"})
            time.sleep(0.02)
        trace_id: str = root.zipkin_attrs.trace_id
    return trace_id


async def wait_spans(es: AsyncElasticsearch, index: str, n: int, p: Pipeline, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        p.check_alive()
        await es.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
        count = int((await es.count(index=index, allow_no_indices=True, ignore_unavailable=True))["count"])
        if count >= n:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{count} span documents in {index} after {timeout}s, expected {n}")


def by_name(trace_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["operationName"]: s for s in trace_json["spans"]}


async def test_sdk_and_zipkin_spans_come_back_whole_from_jaeger_and_logpipe_trace(
    pipeline: Pipeline, es_url: str, unique_name: str, tmp_path: Path
) -> None:
    sim = pipeline.sim
    cart, pricing, web = (f"{c}-{unique_name[-6:]}" for c in ("cart", "pricing", "web"))
    cart_pod, pricing_pod, web_pod = sim.add_pod(cart), sim.add_pod(pricing), sim.add_pod(web)
    otel_trace = otel_checkout(cart_pod.trace_log, pricing_pod.trace_log, cart, pricing)
    zipkin_trace = zipkin_checkout(web_pod.trace_log, web)
    # The same request line written again (a replay, a second file): stored once.
    first_line = cart_pod.trace_log.read_bytes()
    cart_pod.trace_log.write_bytes(first_line + first_line)

    pipeline.start_consumer()
    pipeline.start_shipper()
    es = AsyncElasticsearch(es_url)
    try:
        await wait_spans(es, f"{unique_name}-jaeger-span-*", 6, pipeline)
        await asyncio.sleep(1.5)  # the replayed line arrives too: still six spans
        await wait_spans(es, f"{unique_name}-jaeger-span-*", 6, pipeline)
        assert (await es.count(index=f"{unique_name}-jaeger-span-*"))["count"] == 6
    finally:
        await es.close()

    with private_jaeger(es_url, unique_name, tmp_path / "jaeger") as jaeger:
        assert set(get(jaeger, "/api/services")["data"]) == {cart, pricing, web}
        assert sorted(get(jaeger, f"/api/services/{cart}/operations")["data"]) == ["GET /cart", "load cart", "price"]

        otel = wait_for_trace(jaeger, otel_trace, 4)
        spans = by_name(otel)
        assert len(otel["spans"]) == 4
        service_of = {name: otel["processes"][s["processID"]]["serviceName"] for name, s in spans.items()}
        assert service_of == {"GET /cart": cart, "load cart": cart, "price": cart, "quote": pricing}
        parent_of = {
            name: [r["spanID"] for r in s["references"] if r["refType"] == "CHILD_OF"] for name, s in spans.items()
        }
        root_id = spans["GET /cart"]["spanID"]
        assert parent_of == {
            "GET /cart": [],
            "load cart": [root_id],
            "price": [root_id],
            "quote": [spans["price"]["spanID"]],
        }
        assert (
            tags(spans["price"])["error"] is True
            and tags(spans["price"])["otel.status_description"] == "pricing answered 503"
        )
        assert (
            tags(spans["GET /cart"])["http.response.status_code"] == 502
            and tags(spans["quote"])["span.kind"] == "server"
        )
        assert "error" not in tags(spans["load cart"])
        assert spans["load cart"]["logs"][0]["fields"][0]["value"] == "cache miss"
        assert spans["quote"]["duration"] >= 30_000 and spans["GET /cart"]["duration"] >= 60_000
        assert spans["GET /cart"]["duration"] >= spans["price"]["duration"] >= spans["quote"]["duration"]
        cart_process = otel["processes"][spans["GET /cart"]["processID"]]
        assert {t["key"]: t["value"] for t in cart_process["tags"]}["telemetry.sdk.name"] == "opentelemetry"

        zipkin = wait_for_trace(jaeger, zipkin_trace, 2)
        zspans = by_name(zipkin)
        assert zspans["charge card"]["references"][0]["spanID"] == zspans["POST /pay"]["spanID"]
        assert tags(zspans["charge card"])["error"] is True and tags(zspans["charge card"])["span.kind"] == "client"

        found = search(jaeger, service=cart, tags={"error": "true"}, minDuration="20ms")
        assert [t["traceID"] for t in found] == [otel_trace]
        assert search(jaeger, service=cart, minDuration="10s") == []
        assert [t["traceID"] for t in search(jaeger, service=web, operation="charge card")] == [zipkin_trace]

    out = io.StringIO()
    assert await trace_main(TraceOptions(otel_trace, es_url=es_url, index_prefix=unique_name), out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"trace {otel_trace}  4 spans, 2 services") and ", 1 failed" in lines[0]
    # load cart, then price -> quote, one after the other: every span is on the critical path
    assert lines[0].endswith("critical path 4 spans")
    rows = [ln.split("|")[0].split() for ln in lines[2:6]]
    assert [r[:2] for r in rows] == [["◆", cart], ["◆", cart], ["◆", cart], ["◆", pricing]]
    assert "price" in lines[4] and "✗" in lines[4] and "quote" in lines[5]
