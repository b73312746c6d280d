"""Bulk bodies: bounded by bytes and actions, deterministic ids, daily index names, event.ingested."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from consumer.bulk import BulkBatcher, build_request, index_name, ingested_now, utc_day
from consumer.work import Work
from logpipe.core.envelope import document_id


def work(i: int, doc: dict[str, Any] | None = None, raw: bytes = b"line") -> Work:
    d = doc if doc is not None else {"@timestamp": "2026-11-27T10:00:00Z", "message": "x" * 50}
    return Work(
        topic="t", partition=0, generation=1, offsets=[i], raw=raw, headers=[], key=None, kafka_offset=i,
        doc=d, log_type="access", index="logpipe-access-2026.11.27", doc_id=document_id("fp::1", i * 10),
    )


def parse_body(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    lines = body.rstrip(b"\n").split(b"\n")
    assert len(lines) % 2 == 0
    return [(orjson.loads(lines[i]), orjson.loads(lines[i + 1])) for i in range(0, len(lines), 2)]


def test_a_request_closes_when_it_reaches_max_actions() -> None:
    batcher = BulkBatcher(max_bytes=10_000_000, max_actions=3)

    closed = [batcher.add(work(i)) for i in range(7)]

    full = [c for c in closed if c is not None]
    assert [len(r) for r in full] == [3, 3]
    assert batcher.pending == 1
    rest = batcher.take()
    assert rest is not None and len(rest) == 1
    assert batcher.take() is None


def test_a_request_never_exceeds_max_bytes_unless_one_document_does() -> None:
    one = len(build_request([work(0)]).body())
    batcher = BulkBatcher(max_bytes=one * 3 + 10, max_actions=1000)

    closed = [c for c in (batcher.add(work(i)) for i in range(10)) if c is not None]

    assert closed, "ten documents must not fit into three documents' worth of bytes"
    for req in closed:
        assert len(req.body()) <= one * 3 + 10
    huge = work(99, {"@timestamp": "2026-11-27T10:00:00Z", "message": "y" * (one * 5)})
    batcher = BulkBatcher(max_bytes=one * 3, max_actions=1000)
    alone = batcher.add(huge)
    assert alone is not None and len(alone) == 1


def test_actions_are_index_ops_with_deterministic_ids_and_event_ingested() -> None:
    items = [work(i) for i in range(3)]
    before = datetime.now(UTC)

    pairs = parse_body(build_request(items).body())

    assert [a["index"]["_id"] for a, _ in pairs] == [document_id("fp::1", i * 10) for i in range(3)]
    assert {a["index"]["_index"] for a, _ in pairs} == {"logpipe-access-2026.11.27"}
    for _, source in pairs:
        ingested = source["event"]["ingested"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ingested)
        stamp = datetime.fromisoformat(ingested)
        assert abs((stamp - before).total_seconds()) < 5


def test_a_retry_restamps_event_ingested() -> None:
    w = work(1)
    first = parse_body(build_request([w], ingested="2026-11-27T10:00:00.000Z").body())[0][1]
    again = parse_body(build_request([w], ingested="2026-11-27T10:00:05.000Z").body())[0][1]

    assert first["event"]["ingested"] == "2026-11-27T10:00:00.000Z"
    assert again["event"]["ingested"] == "2026-11-27T10:00:05.000Z"


def test_the_index_is_the_utc_day_of_the_timestamp_and_the_type() -> None:
    now = time.time()
    # 01:30 at +08:00 is still the previous day in UTC.
    assert index_name("logpipe", "access", {"@timestamp": "2026-11-27T01:30:00.5+08:00"}, now) == (
        "logpipe-access-2026.11.26"
    )
    assert index_name("prod", "stdout", {"@timestamp": "2026-01-02T23:59:59.999999999Z"}, now) == (
        "prod-stdout-2026.01.02"
    )
    assert index_name("logpipe", "Weird Type!", {"@timestamp": "2026-11-27T10:00:00Z"}, now) == (
        "logpipe-weird_type-2026.11.27"
    )


def test_half_hour_offsets_change_the_day_within_the_hour() -> None:
    assert utc_day("2026-11-27T05:00:00+05:30", 0) == "2026.11.26"
    assert utc_day("2026-11-27T05:45:00+05:30", 0) == "2026.11.27"
    assert utc_day("2026-11-27T07:10:00+08:00", 0) == "2026.11.26"
    assert utc_day("2026-11-27T07:50:00+08:00", 0) == "2026.11.26"
    assert utc_day("2026-11-27T08:10:00+08:00", 0) == "2026.11.27"


def test_an_unreadable_timestamp_falls_back_to_the_indexing_day() -> None:
    fallback = datetime(2026, 3, 4, 12, tzinfo=UTC).timestamp()

    assert utc_day("yesterday", fallback) == "2026.03.04"
    assert utc_day(None, fallback) == "2026.03.04"
    assert utc_day(12345, fallback) == "2026.03.04"


def test_ingested_now_has_millisecond_precision() -> None:
    assert ingested_now(1764237600.1234) == "2025-11-27T10:00:00.123Z"


def test_a_document_with_non_string_keys_is_still_encoded() -> None:
    w = work(1, doc={"@timestamp": "2026-11-27T10:00:00Z", "extra": {1: "one", "two": 2}})
    ((action, doc),) = parse_body(build_request([w], "2026-11-27T10:00:01.000Z").body())
    assert action == {"index": {"_index": "logpipe-access-2026.11.27", "_id": w.doc_id}}
    assert doc["extra"] == {"1": "one", "two": 2}


def test_cached_index_names_follow_the_prefix_type_and_day() -> None:
    now = time.time()
    for prefix, log_type, ts, expected in [
        ("logpipe", "access", "2026-11-27T23:59:59.999Z", "logpipe-access-2026.11.27"),
        ("logpipe", "access", "2026-11-28T00:00:00.000Z", "logpipe-access-2026.11.28"),
        ("staging", "access", "2026-11-28T00:00:00.000Z", "staging-access-2026.11.28"),
        ("logpipe", "stdout", "2026-11-28T00:00:00.000Z", "logpipe-stdout-2026.11.28"),
        ("logpipe", "Weird Type!", "2026-11-28T00:00:00Z", "logpipe-weird_type-2026.11.28"),
    ]:
        for _ in range(2):  # the second call is answered from the cache
            assert index_name(prefix, log_type, {"@timestamp": ts}, now) == expected
