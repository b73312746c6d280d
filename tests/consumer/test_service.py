"""The consumer end to end on the real Kafka and Elasticsearch: lines in, documents out, nothing lost.

Each test produces lines exactly as the shipper writes them (value, key, headers) and runs the
consumer in-process; the outage, crash and rebalance stories live in their own modules.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from prometheus_client import REGISTRY

from consumer.deadletter import H_DLQ_REASON, H_DLQ_SOURCE, H_DLQ_STAGE
from logpipe.core.envelope import H_FILE_ID, H_OFFSET, decode_headers, document_id
from parsers import LineParser, Parsed
from tests.consumer.story import ConsumerStory

pytestmark = pytest.mark.integration


async def test_every_line_becomes_one_document_with_its_fields(story: ConsumerStory) -> None:
    access = story.access_lines(300)
    await story.produce(access)
    await story.produce(story.cri_lines(["plain text line", '{"level":"error","msg":"boom"}']))
    await story.produce(story.cri_lines(["a long line cut in fragments by the runtime"], split=10))

    async with story.consumer():
        await story.wait_for_docs(story.line_count)
        await story.wait_committed()

    docs = {h["_id"]: h for h in await story.docs()}
    assert len(docs) == story.line_count == 303
    assert set(docs) == story.expected_ids()

    first = access[1]
    hit = docs[document_id(first.meta.file_id, first.offset)]
    src = hit["_source"]
    assert hit["_index"] == f"{story.prefix}-access-2026.11.27"  # 10:00+08:00 is 02:00 UTC the same day
    assert src["trace"]["id"] == "trace-00000001"  # traceId lands in trace.id
    assert src["http"]["response"]["status_code"] == 200
    assert src["http"]["request"]["method"] == "GET"
    assert src["url"]["path"] == "/api/pay/1"
    assert src["event"]["duration"] == 12_000_000  # latency in ms -> ns
    assert src["service"]["name"] == "pay-gw"
    assert src["kubernetes"]["pod"]["name"] == "pay-gw-1"
    assert src["log"]["offset"] == first.offset
    assert src["event"]["ingested"].endswith("Z")
    assert src["message"] == first.value.decode()

    cri = [h["_source"] for h in docs.values() if h["_source"]["logpipe"]["type"] == "stdout"]
    messages = sorted(d.get("message", "") for d in cri)
    assert "a long line cut in fragments by the runtime" in messages
    assert "plain text line" in messages
    assert all(h["_index"] == f"{story.prefix}-stdout-2026.11.27" for h in docs.values()
               if h["_source"]["logpipe"]["type"] == "stdout")


async def test_a_poison_record_is_dead_lettered_and_the_rest_indexed(story: ConsumerStory) -> None:
    good = story.access_lines(50)
    poison = story.access_lines(1)
    poison = [type(poison[0])(poison[0].meta, poison[0].offset, b"\x00\xffnot json {", poison[0].read_ts_ms)]
    await story.produce(good[:25])
    await story.produce(poison, indexable=False)
    await story.produce(good[25:])

    async with story.consumer():
        await story.wait_for_docs(50)
        letters = await story.dead_letters(1)
        await story.wait_committed()

    assert set(await story.doc_ids()) == story.expected_ids()
    assert len(letters) == 1
    letter = letters[0]
    headers = dict(letter.headers)
    assert letter.value == b"\x00\xffnot json {"  # the raw bytes, untouched
    assert headers[H_DLQ_STAGE] == b"parse"
    assert b"JSON" in headers[H_DLQ_REASON]
    source = decode_headers(letter.headers)  # the source identity travels along (the shipper's envelope, as it came)
    assert source[H_FILE_ID] == poison[0].meta.file_id
    assert source[H_OFFSET] == str(poison[0].offset)
    assert headers[H_DLQ_SOURCE].startswith(story.topics["access"].encode() + b"/")


async def test_a_document_elasticsearch_refuses_is_dead_lettered_with_the_error(story: ConsumerStory) -> None:
    # Someone created one day's index with url.path as a number: those documents cannot be indexed.
    await story.es.indices.create(
        index=f"{story.prefix}-access-2001.01.01",
        mappings={"properties": {"url": {"properties": {"path": {"type": "long"}}}}},
    )
    fine = story.access_lines(20)
    refused = story.access_lines(3, day="2001-01-01")
    await story.produce(fine)
    await story.produce(refused, indexable=False)

    async with story.consumer():
        await story.wait_for_docs(20)
        letters = await story.dead_letters(3)
        await story.wait_committed()

    assert set(await story.doc_ids()) == story.expected_ids()
    assert sorted(r.value for r in letters) == sorted(r.value for r in refused)
    for letter in letters:
        headers = dict(letter.headers)
        assert headers[H_DLQ_STAGE] == b"index"
        assert b"url.path" in headers[H_DLQ_REASON]
        assert b"HTTP 400" in headers[H_DLQ_REASON]


async def test_health_readiness_and_metrics_are_served(story: ConsumerStory) -> None:
    await story.produce(story.access_lines(10))

    async with story.consumer() as svc:
        await story.wait_for_docs(10)
        base = f"http://127.0.0.1:{svc.http.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as r:
                assert r.status == 200
            async with http.get(base + "/readyz") as r:
                assert r.status == 200
                assert (await r.json())["elasticsearch"] is True
            await story.wait_committed()
            svc.loop.update_lag()
            async with http.get(base + "/metrics") as r:
                text = await r.text()

    assert svc.http.port > 0
    for metric in (
        "logpipe_consumer_records_consumed_total",
        "logpipe_consumer_docs_indexed_total",
        "logpipe_consumer_bulk_latency_seconds_bucket",
        "logpipe_consumer_partition_lag",
        "logpipe_consumer_dead_lettered_total",
    ):
        assert metric in text
    assert f'logpipe_consumer_records_consumed_total{{topic="{story.topics["access"]}"}} 10.0' in text


async def test_a_cri_line_whose_end_never_comes_is_indexed_after_the_timeout(story: ConsumerStory) -> None:
    fragments = story.cri_lines(["the writer died in the middle of this line"], split=8)[:-1]  # no F
    await story.produce(fragments, indexable=False)
    await story.produce(story.access_lines(5))

    async with story.consumer(story.config(partial_line_timeout="1s")):
        await story.wait_for_docs(6)
        await story.wait_committed()  # the fragments' offsets are committed too: the partition moves on

    cri = [h["_source"] for h in await story.docs() if h["_source"]["logpipe"]["type"] == "stdout"]
    assert len(cri) == 1
    assert cri[0]["message"] == "the writer died in the middle of this li"
    assert "partial_incomplete" in cri[0]["logpipe"]["flags"]
    assert cri[0]["log"]["offset"] == fragments[0].offset


async def test_memory_stays_bounded_by_the_buffer_limit(story: ConsumerStory) -> None:
    await story.produce(story.access_lines(3_000))
    limit, turn = 256 * 1024, 50
    cfg = story.config(**{
        "bulk.max_buffered_bytes": limit, "bulk.max_actions": 50, "bulk.concurrency": 1,
        "kafka.max_poll_records": turn,
    })
    peak = 0

    async with story.consumer(cfg) as svc:

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, svc.loop.buffered_bytes)
                await asyncio.sleep(0.001)

        sampler = asyncio.create_task(sample())
        try:
            await story.wait_for_docs(3_000)
            await story.wait_committed()
        finally:
            sampler.cancel()

    # Fetching pauses once the limit is passed, so at most one more turn of records is buffered
    # (each of these lines counts under 4 KiB: the line, its encoded document and the dict).
    assert limit < peak <= limit + turn * 4096
    assert peak < 3_000 * 1024  # far below the whole backlog
    assert set(await story.doc_ids()) == story.expected_ids()


async def test_access_lines_take_the_native_encoder_and_index_the_python_paths_documents(
    story: ConsumerStory,
) -> None:
    def native_count() -> float:
        value = REGISTRY.get_sample_value(
            "logpipe_consumer_native_encoded_total", {"topic": story.topics["access"]}
        )
        return value or 0.0

    before = native_count()
    fast = story.access_lines(40)
    await story.produce(fast)
    async with story.consumer():
        await story.wait_for_docs(40)
        await story.wait_committed()
    assert native_count() - before == 40  # every plain access line went through the C encoder

    slow = story.access_lines(40, file_no=1)
    await story.produce(slow)
    async with story.consumer(story.config(native_encoder=False)):
        await story.wait_for_docs(80)
        await story.wait_committed()
    assert native_count() - before == 40  # switched off: all through the Python parser

    parser = LineParser(None)
    by_id = {document_id(r.meta.file_id, r.offset): r for r in fast + slow}
    docs = await story.docs()
    assert {h["_id"] for h in docs} == set(by_id)
    for hit in docs:
        rec = by_id[hit["_id"]]
        parsed = parser.parse(rec.value, decode_headers(rec.headers()))
        assert isinstance(parsed, Parsed)
        source = hit["_source"]
        assert source["event"].pop("ingested").endswith("Z")
        assert source == orjson.loads(orjson.dumps(parsed.doc)), hit["_id"]
