"""From pod log files through the real shipper and consumer into Elasticsearch: every line, once, right.

Pods write JSON access logs, CRI stdout and APM spans; ``logpipe ship`` and ``logpipe consume`` run
as processes; the documents in Elasticsearch must be exactly the lines written, with their fields.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from elasticsearch import AsyncElasticsearch

from consumer.dependencies.templates import remove_dependency_templates
from consumer.index_templates import remove_templates
from tests.end_to_end import Pipeline

pytestmark = pytest.mark.integration

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
async def pipeline(
    tmp_path: Path, kafka_bootstrap: str, es_url: str, unique_name: str
) -> AsyncIterator[Pipeline]:
    p = Pipeline(tmp_path, kafka_bootstrap, es_url, unique_name)
    try:
        yield p
    finally:
        await asyncio.to_thread(p.stop)
        es = AsyncElasticsearch(es_url)
        try:
            await es.indices.delete(index=f"{unique_name}-*", allow_no_indices=True, ignore_unavailable=True)
            await remove_dependency_templates(es, unique_name)  # they use the settings component template
            await remove_templates(es, unique_name)
        finally:
            await es.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            mine = [t for t in existing if t.startswith(unique_name)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()


async def wait_count(es: AsyncElasticsearch, index: str, n: int, p: Pipeline, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        p.check_alive()
        await es.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
        count = int((await es.count(index=index, allow_no_indices=True, ignore_unavailable=True))["count"])
        if count >= n:
            return count
        await asyncio.sleep(0.5)
    raise AssertionError(f"{count} documents in {index} after {timeout}s, expected {n}")


async def test_pod_logs_become_exactly_their_documents(pipeline: Pipeline, es_url: str) -> None:
    sim = pipeline.sim
    pay = sim.add_pod("pay-gw")
    orders = sim.add_pod("order-svc")
    start = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    sim.write_access(pay, 400, start=start)
    sim.write_access(orders, 300, start=start, status=503, path="/api/orders", trace_id=TRACE)
    sim.write_stdout(pay, [f"started worker {i}" for i in range(50)])
    sim.write_stdout(orders, ['{"level":"error","msg":"db timeout"}'] * 10)
    root_span = sim.write_span(orders, TRACE, "GET /api/orders")
    sim.write_span(orders, TRACE, "SELECT orders", parent=root_span)

    pipeline.start_consumer()
    pipeline.start_shipper()
    es = AsyncElasticsearch(es_url)
    try:
        total = 400 + 300 + 50 + 10 + 2 + 2  # + a service/operation document per new span name
        assert await wait_count(es, f"{pipeline.name}-*", total, pipeline) == total
        await asyncio.sleep(1.0)  # nothing more arrives: no duplicates trickling in
        assert await wait_count(es, f"{pipeline.name}-*", total, pipeline) == total

        access = await es.search(
            index=f"{pipeline.name}-access-*", size=1,
            query={"term": {"trace.id": TRACE}},
            track_total_hits=True,
        )
        assert access["hits"]["total"]["value"] == 300
        doc = access["hits"]["hits"][0]["_source"]
        raw = orjson.loads(doc["message"])
        assert doc["service"]["name"] == "order-svc"
        assert doc["kubernetes"]["namespace"] == "shop"
        assert doc["kubernetes"]["pod"]["name"] == orders.name
        assert doc["kubernetes"]["pod"]["uid"] == orders.uid
        assert doc["http"]["response"]["status_code"] == 503
        assert doc["url"]["path"] == "/api/orders"
        assert doc["http"]["request"]["method"] == raw["method"]
        assert doc["event"]["duration"] == round(raw["request_time"] * 1e9)
        assert doc["client"]["ip"] == raw["client_ip"]
        assert doc["log"]["file"]["path"].endswith("access.log")
        assert "ingested" in doc["event"]

        errors = await es.count(index=f"{pipeline.name}-stdout-*", query={"term": {"log.level": "error"}})
        assert errors["count"] == 10
        spans = await es.search(index=f"{pipeline.name}-jaeger-span-*", query={"match_all": {}}, size=10)
        hits = spans["hits"]["hits"]
        assert {h["_source"]["span"]["name"] for h in hits} == {"GET /api/orders", "SELECT orders"}
        assert all(h["_source"]["trace"]["id"] == h["_source"]["traceID"] == TRACE for h in hits)
        services = await es.search(index=f"{pipeline.name}-jaeger-service-*", query={"match_all": {}}, size=10)
        assert sorted(h["_source"]["operationName"] for h in services["hits"]["hits"]) == [
            "GET /api/orders", "SELECT orders"]
    finally:
        await es.close()
