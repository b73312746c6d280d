"""The Elasticsearch ``_bulk`` endpoint on the real cluster: answers as mappings, failures as the ports' errors.

The loop's unit tier (``test_loop.py``) relies on exactly these two errors to tell "the cluster
refused the request" from "nothing answered"; here the real client produces them.
"""

from __future__ import annotations

import socket

import orjson
import pytest

from consumer.config import ElasticsearchConfig
from consumer.es_client import ElasticsearchBulk, make_client
from consumer.ports import BulkHttpError, BulkUnreachable

pytestmark = pytest.mark.integration


async def test_a_bulk_body_is_answered_item_by_item(es_url: str, unique_name: str) -> None:
    es = make_client(ElasticsearchConfig(url=es_url))
    try:
        body = b"".join(
            orjson.dumps({"index": {"_index": unique_name, "_id": str(i)}}) + b"\n" + orjson.dumps(doc) + b"\n"
            for i, doc in enumerate([{"n": 1}, {"n": "not a number"}])
        )
        answer = await ElasticsearchBulk(es).bulk(body)
        assert answer["errors"] is True
        assert [item["index"]["status"] for item in answer["items"]] == [201, 400]
        assert answer["items"][1]["index"]["error"]["type"] == "document_parsing_exception"
    finally:
        await es.indices.delete(index=unique_name, ignore_unavailable=True)
        await es.close()


async def test_a_request_the_cluster_refuses_is_a_bulk_http_error(es_url: str) -> None:
    es = make_client(ElasticsearchConfig(url=es_url))
    try:
        with pytest.raises(BulkHttpError) as refused:
            await ElasticsearchBulk(es).bulk(b'{"no such action":{}}\n{}\n')
        assert refused.value.status == 400
    finally:
        await es.close()


async def test_no_answer_is_bulk_unreachable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    es = make_client(ElasticsearchConfig(url=f"http://127.0.0.1:{port}"), request_timeout=2)
    try:
        with pytest.raises(BulkUnreachable):
            await ElasticsearchBulk(es).bulk(b'{"index":{"_index":"x"}}\n{}\n')
    finally:
        await es.close()
