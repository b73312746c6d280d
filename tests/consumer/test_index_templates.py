"""Index templates and retention on the real Elasticsearch: types, bounded dynamic mapping, old days deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import AsyncElasticsearch

from consumer.config import IndexConfig
from consumer.index_templates import install_templates, remove_templates
from consumer.retention import delete_expired

pytestmark = pytest.mark.integration


@pytest.fixture
async def es(es_url: str, unique_name: str) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(es_url)
    try:
        yield client
    finally:
        await client.indices.delete(index=f"{unique_name}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_templates(client, unique_name)
        await client.close()


def leaf(mapping: dict, dotted: str) -> dict:
    node = mapping
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


async def test_daily_indices_get_typed_fields_and_a_bounded_dynamic_mapping(
    es: AsyncElasticsearch, unique_name: str
) -> None:
    cfg = IndexConfig(prefix=unique_name, total_fields_limit=120)
    await install_templates(es, cfg)
    await install_templates(es, cfg)  # idempotent: every replica does it at start
    index = f"{unique_name}-access-2026.11.27"
    await es.index(index=index, id="1", refresh=True, document={
        "@timestamp": "2026-11-27T10:00:00.123+08:00",
        "message": "GET /api/pay 200",
        "client": {"ip": "10.1.2.3"},
        "http": {"response": {"status_code": 200}},
        "event": {"duration": 12_000_000, "ingested": "2026-11-27T02:00:00.500Z"},
        "extra": {"seq": "1", "nested": {"flag": "true"}},
        "surprise": "a top-level field nobody declared",
    })
    # A line with many unknown fields: the ones beyond the limit are kept in _source, not mapped.
    many = {f"k{i}": str(i) for i in range(300)}
    await es.index(index=index, id="2", refresh=True, document={"extra": many})

    mapping = (await es.indices.get_mapping(index=index))[index]["mappings"]
    assert leaf(mapping, "@timestamp")["type"] == "date"
    assert leaf(mapping, "client.ip")["type"] == "ip"
    assert leaf(mapping, "http.response.status_code")["type"] == "long"
    assert leaf(mapping, "event.ingested")["type"] == "date"
    assert leaf(mapping, "message")["type"] == "text"
    assert leaf(mapping, "message")["fields"]["keyword"]["type"] == "keyword"
    assert leaf(mapping, "extra.seq")["type"] == "keyword"
    assert leaf(mapping, "extra.nested.flag")["type"] == "keyword"
    assert leaf(mapping, "surprise")["type"] == "keyword"
    mapped_extra = len(leaf(mapping, "extra")["properties"])
    assert mapped_extra < 300
    doc2 = await es.get(index=index, id="2")
    assert len(doc2["_source"]["extra"]) == 300
    hits = await es.count(index=index, query={"term": {"message.keyword": "GET /api/pay 200"}})
    assert hits["count"] == 1


async def test_retention_deletes_only_days_older_than_the_retention(
    es: AsyncElasticsearch, unique_name: str
) -> None:
    today = datetime.now(UTC).date()
    old = f"{unique_name}-access-{(today - timedelta(days=10)):%Y.%m.%d}"
    recent = f"{unique_name}-access-{(today - timedelta(days=2)):%Y.%m.%d}"
    other = f"{unique_name}-x-access-{(today - timedelta(days=30)):%Y.%m.%d}"  # another prefix's index
    for name in (old, recent, other):
        await es.indices.create(index=name)

    deleted = await delete_expired(es, unique_name, retention_days=7)

    assert deleted == [old]
    remaining = set((await es.indices.get(index=f"{unique_name}-*")).body)
    assert remaining == {recent, other}
