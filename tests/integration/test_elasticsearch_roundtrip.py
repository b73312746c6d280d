"""Elasticsearch smoke test: documents bulk-indexed with the official client are found by search."""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk

pytestmark = pytest.mark.integration


async def test_indexed_documents_are_searchable(es_url: str, unique_name: str) -> None:
    es = AsyncElasticsearch(es_url)
    try:
        docs = [
            {"_index": unique_name, "_id": f"doc-{i}", "message": f"GET /orders/{i}", "status": 500 if i % 3 else 200}
            for i in range(12)
        ]
        ok, errors = await async_bulk(es, docs, refresh="wait_for")
        assert ok == 12 and not errors

        found = await es.search(index=unique_name, query={"term": {"status": 500}}, size=20)
        ids = sorted(hit["_id"] for hit in found["hits"]["hits"])
        assert ids == sorted(f"doc-{i}" for i in range(12) if i % 3)

        by_text = await es.search(index=unique_name, query={"match": {"message": "orders"}}, size=0)
        assert by_text["hits"]["total"]["value"] == 12
    finally:
        await es.options(ignore_status=404).indices.delete(index=unique_name)
        await es.close()
