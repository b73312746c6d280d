"""The whole consume loop on in-memory parts (``tests/consumer/memory.py``): ordering of commits,
pause/resume, Elasticsearch down, 429/400 items, dead-letter failures, rebalances mid-batch,
multi-document records, CRI fragments, alert ownership and stopping.

The same loop runs on the real Kafka and Elasticsearch in ``test_service.py``, ``test_outages.py``
and ``test_crash_and_rebalance.py``; here every timer runs on a fake clock, and the endpoint can
hold back, reorder or refuse, so each ordering is reproduced exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from consumer.ownership import partition_of
from logpipe.core.envelope import H_TYPE, document_id
from parsers import LineParser, Many, Parsed, ParseResult, Unparseable
from parsers.access_encoder import NATIVE_AVAILABLE, AccessEncoder
from parsers.fieldmap import FieldMap
from tests.consumer.memory import TP, LoopStory, MemorySource, config

TP1 = ("logpipe-access", 1)


def ids_of(env: LoopStory, records: list[Any]) -> set[str]:
    return {document_id(r.meta.file_id, r.offset) for r in records}


def assert_commits_never_pass(source: MemorySource, tp: tuple[str, int], limit: int) -> None:
    assert all(c[tp] <= limit for c in source.commit_log if tp in c), source.commit_log


async def test_lines_become_documents_and_every_partition_is_committed_to_its_end() -> None:
    env = LoopStory()
    a, b = env.access_lines(5), env.access_lines(3, file_no=1)
    env.produce(TP, a)
    env.produce(TP1, b)
    async with env.running():
        await env.until(lambda: env.source.committed == {TP: 5, TP1: 3})
    assert env.bulk.ids == ids_of(env, a + b)
    assert {index for index, _ in env.bulk.docs} == {"lp-access-2026.11.27"}
    positions = [c[TP] for c in env.source.commit_log if TP in c]
    assert positions == sorted(positions)  # commits only move forward
    assert not env.dead.letters
    assert env.loop.buffered_bytes == 0


async def test_acks_coming_back_out_of_order_commit_only_the_contiguous_prefix() -> None:
    env = LoopStory(config(**{"bulk.max_actions": 2}))
    lines = env.access_lines(6)
    env.produce(TP, lines)
    env.bulk.holding = True
    async with env.running():
        await env.until(lambda: len(env.bulk.held()) == 3)  # 3 requests of 2 in flight (concurrency 3)
        first, second, third = env.bulk.held()
        env.bulk.release(third, second)
        await env.run_for(2.0)  # two commit intervals
        assert env.source.committed.get(TP, 0) == 0  # records 0 and 1 are still out
        env.bulk.release(first)
        await env.until(lambda: env.source.committed.get(TP) == 6)
    assert env.bulk.ids == ids_of(env, lines)


async def test_fetching_pauses_while_the_buffer_is_full_and_resumes_when_it_drains() -> None:
    env = LoopStory(config(**{"bulk.max_buffered_bytes": 2048, "bulk.max_actions": 2, "kafka.max_poll_records": 2}))
    env.produce(TP, env.access_lines(40))
    env.bulk.holding = True
    async with env.running():
        await env.until(lambda: env.source.paused)
        fetched = env.source.position[TP]
        await env.run_for(1.0)
        assert env.source.position[TP] == fetched < 40  # nothing more is read while paused
        assert env.loop.buffered_bytes > 2048
        env.bulk.holding = False
        env.bulk.release()
        await env.until(lambda: env.source.committed.get(TP) == 40)
        assert not env.source.paused
    assert env.source.pauses >= 1
    assert len(env.bulk.ids) == 40


async def test_elasticsearch_down_pauses_fetching_commits_nothing_and_recovers() -> None:
    env = LoopStory()
    lines = env.access_lines(10)
    env.produce(TP, lines[:4])
    async with env.running():
        await env.until(lambda: env.source.committed.get(TP) == 4)
        env.bulk.down = True
        env.produce(TP, lines[4:])
        await env.until(lambda: env.source.paused and not env.loop.indexer.available)
        await env.run_for(5.0)  # retried with backoff meanwhile
        assert env.source.committed[TP] == 4
        assert len(env.bulk.calls) == 1  # only the first request got an answer; the rest never reached it
        env.bulk.down = False
        await env.until(lambda: env.source.committed.get(TP) == 10)
        assert not env.source.paused and env.loop.indexer.available
    assert env.bulk.ids == ids_of(env, lines)
    assert env.loop.indexer.retried_items > 0


async def test_items_answered_429_are_retried_and_items_answered_400_are_dead_lettered() -> None:
    env = LoopStory()
    lines = env.access_lines(4)
    busy, refused = (document_id(lines[i].meta.file_id, lines[i].offset) for i in (1, 2))
    env.bulk.item_status = {busy: [429, 429, 429], refused: [400]}
    env.produce(TP, lines)
    async with env.running():
        await env.until(lambda: env.source.committed.get(TP) == 4)
    assert env.bulk.ids == ids_of(env, lines) - {refused}
    assert sum(busy in c.ids for c in env.bulk.calls) == 4  # three 429s, then accepted
    [letter] = env.dead.letters
    assert letter.stage == "index" and letter.raw == lines[2].value
    assert "HTTP 400 document_parsing_exception" in letter.reason
    assert_commits_never_pass(env.source, TP, 4)


async def test_every_item_answered_429_pauses_fetching_until_the_cluster_takes_writes_again() -> None:
    env = LoopStory()
    lines = env.access_lines(3)
    env.bulk.item_status = {document_id(r.meta.file_id, r.offset): [429] * 5 for r in lines}
    env.produce(TP, lines)
    async with env.running():
        await env.until(lambda: env.source.paused and not env.loop.indexer.available)
        assert env.source.committed.get(TP, 0) == 0
        await env.until(lambda: env.source.committed.get(TP) == 3)
        assert not env.source.paused
    assert env.bulk.ids == ids_of(env, lines) and not env.dead.letters


async def test_a_request_over_the_body_limit_is_split_and_one_document_over_it_is_dead_lettered() -> None:
    env = LoopStory(config(**{"bulk.max_actions": 8}))
    lines = env.access_lines(8)
    huge = env.access_lines(1, file_no=1)[0]
    huge = type(huge)(huge.meta, huge.offset, huge.value[:-1] + b',"pad":"' + b"x" * 4000 + b'"}', 0)
    env.produce(TP, [*lines[:4], huge, *lines[4:]])
    env.bulk.max_body = 3000  # about four of these documents
    async with env.running():
        await env.until(lambda: env.source.committed.get(TP) == 9)
    assert env.bulk.ids == ids_of(env, lines)
    assert env.bulk.too_large >= 2
    [letter] = env.dead.letters
    assert letter.stage == "index" and "HTTP 413" in letter.reason and letter.raw == huge.value


async def test_a_dead_letter_that_fails_is_retried_and_nothing_is_committed_past_it() -> None:
    env = LoopStory()
    good = env.access_lines(6)
    env.produce(TP, good[:2])
    poison = env.produce(TP, [type(good[0])(good[0].meta, 999, b"\x00\xffnot json {", 0)])[0]
    env.produce(TP, good[2:])
    env.dead.failures = 1_000_000  # the dead-letter topic is down
    async with env.running():
        await env.until(lambda: len(env.bulk.ids) == 6)
        await env.run_for(3.0)
        assert env.dead.attempts >= 3  # tried again and again, with backoff
        assert env.source.committed[TP] == poison  # up to it, and not past it: the lines after it wait
        env.dead.failures = 0
        await env.until(lambda: env.source.committed.get(TP) == 7)
    [letter] = env.dead.letters
    assert letter.stage == "parse" and "JSON" in letter.reason and letter.kafka_offset == poison
    assert [c[TP] for c in env.source.commit_log] == [poison, 7]


async def test_a_rebalance_mid_batch_commits_the_resolved_prefix_and_old_work_moves_nothing() -> None:
    env = LoopStory(config(**{"bulk.max_actions": 2, "bulk.concurrency": 5, "shutdown_grace": "3s"}))
    lines = env.access_lines(6)
    env.produce(TP, lines)
    env.bulk.holding = True
    async with env.running():
        await env.until(lambda: len(env.bulk.held()) == 3)
        old = env.bulk.held()
        env.bulk.release(old[0])  # records 0-1 indexed before the revoke
        revoke = asyncio.create_task(env.source.rebalance(revoke=[TP]))
        await env.until(lambda: revoke.done(), seconds=5)
        assert env.source.committed[TP] == 2  # the resolved prefix, committed while still owned
        assert env.loop.offsets.partitions() == []

        await env.source.rebalance(assign=[TP])  # back to this member: a new generation, re-read from 2
        await env.until(lambda: len(env.bulk.held()) == 4)  # the 2 old requests + 2 new ones
        env.bulk.release(*old[1:])  # the old generation's acks come back late ...
        await env.run_for(2.0)
        assert env.source.committed[TP] == 2  # ... and move nothing
        env.bulk.release()
        await env.until(lambda: env.source.committed.get(TP) == 6)
    assert env.bulk.ids == ids_of(env, lines)


async def test_a_revoke_finishes_as_soon_as_its_work_is_resolved_not_at_the_end_of_the_grace() -> None:
    env = LoopStory(config(**{"shutdown_grace": "30s"}))
    env.produce(TP, env.access_lines(3))
    env.bulk.holding = True
    async with env.running():
        await env.until(lambda: len(env.bulk.held()) == 1)
        started = env.clock.now
        revoke = asyncio.create_task(env.source.rebalance(revoke=[TP]))
        await env.run_for(0.5)
        assert not revoke.done()  # waiting for the request in flight
        env.bulk.release()
        await env.until(lambda: revoke.done(), seconds=1)
        assert env.clock.now - started < 1.0
        assert env.source.committed[TP] == 3


async def test_a_cri_line_in_fragments_is_one_document_and_its_fragments_are_committed_with_it() -> None:
    env = LoopStory()
    stdout = ("logpipe-stdout", 0)
    whole = env.cri_lines("a long line cut in fragments by the runtime", split=10)
    dangling = env.cri_lines("the writer died in the middle of th", split=8, file_no=1)[:-1]  # no F
    env.produce(stdout, whole + dangling)
    async with env.running():
        await env.until(lambda: len(env.bulk.ids) == 1)
        assert env.source.committed.get(stdout, 0) == 0 or env.source.committed[stdout] == len(whole)
        await env.run_for(1.0)
        assert len(env.bulk.ids) == 1 and env.source.committed[stdout] == len(whole)  # the dangling ones wait
        await env.until(lambda: len(env.bulk.ids) == 2)  # after partial_line_timeout (2 s)
        await env.until(lambda: env.source.committed.get(stdout) == len(whole) + len(dangling))
    docs = {doc_id: doc for (_, doc_id), doc in env.bulk.docs.items()}
    assert docs[document_id(whole[0].meta.file_id, whole[0].offset)]["message"] == (
        "a long line cut in fragments by the runtime"
    )
    incomplete = docs[document_id(dangling[0].meta.file_id, dangling[0].offset)]
    assert "partial_incomplete" in incomplete["logpipe"]["flags"]


class SpansParser:
    """A ``LineParser`` whose trace records each carry several spans (``Many``), as the trace parsers will."""

    def __init__(self, spans: dict[bytes, ParseResult]) -> None:
        self.inner = LineParser()
        self.spans = spans

    def parse(self, value: bytes, headers: Mapping[str, str]) -> ParseResult:
        if headers.get(H_TYPE) == "trace":
            return self.spans[value]
        return self.inner.parse(value, headers)

    def expire(self, older_than_s: float) -> list[Parsed]:
        return self.inner.expire(older_than_s)


def span(name: str, **extra: Any) -> Parsed:
    doc = {"@timestamp": "2026-11-27T02:00:00.000Z", "name": name, "logpipe": {"file_id": "fp::t"}}
    doc["log"] = {"offset": 7}
    return Parsed(doc, "trace", **extra)


async def test_a_record_of_several_documents_is_committed_when_its_last_document_is_indexed() -> None:
    trace = ("logpipe-trace", 0)
    spans: dict[bytes, ParseResult] = {
        b"req": Many((span("a", doc_id="span-a", index="lp-jaeger-span-2026-11-27"), span("b"), span("c"))),
        b"bad": Many((span("d"), Unparseable("span 1: no traceId"))),
        b"empty": Many(()),
    }
    env = LoopStory(config(**{"bulk.max_actions": 1}), new_parser=lambda: SpansParser(spans))
    headers = [(H_TYPE, b"trace")]
    for value in (b"req", b"bad", b"empty"):
        env.source.append(trace, value, headers)
    env.bulk.holding = True
    async with env.running():
        await env.until(lambda: len(env.bulk.held()) == 3)
        a, b, c = env.bulk.held()
        assert (a.actions[0][0], a.ids) == ("lp-jaeger-span-2026-11-27", ["span-a"])
        assert b.actions[0][0] == "lp-trace-2026.11.27"
        # Parts without an id of their own: the record's position and the part number, stable on replay.
        assert (b.ids, c.ids) == ([document_id("fp::t", "7/1")], [document_id("fp::t", "7/2")])
        env.bulk.release(a, c)
        await env.run_for(2.0)
        assert env.source.committed.get(trace, 0) == 0  # span b is still out
        env.bulk.holding = False
        env.bulk.release()  # b, and d (of "bad") that waited for a free slot
        await env.until(lambda: env.source.committed.get(trace) == 3)  # "bad" and "empty" too
    [letter] = env.dead.letters
    assert (letter.reason, letter.raw, letter.kafka_offset) == ("span 1: no traceId", b"bad", 1)
    assert any(c.ids == [document_id("fp::t", "7/0")] for c in env.bulk.calls)  # bad's good part: indexed


async def test_the_alert_sink_sees_every_document_and_learns_what_this_member_owns() -> None:
    env = LoopStory()
    lines = env.access_lines(3)
    env.produce(TP, lines)
    env.produce(TP1, env.access_lines(2, file_no=1))
    async with env.running():
        await env.until(lambda: env.source.committed == {TP: 3, TP1: 2})
        owns = env.alerts.owner
        assert owns is not None and env.alerts.owner_calls == 1
        components = [f"svc-{i}" for i in range(20)]
        assert all(owns(c) for c in components)
        await env.source.rebalance(revoke=[TP1])
        assert [owns(c) for c in components] == [partition_of(c, [0, 1]) == 0 for c in components]
    paths = sorted(d["url"]["path"] for d in env.alerts.seen)
    assert paths == sorted(["/api/0", "/api/1", "/api/2", "/api/0", "/api/1"])


async def test_the_alert_sink_sees_every_span_of_a_line_and_no_jaeger_service_document() -> None:
    """The real span parser: one OTLP line of two spans also yields Jaeger's service documents
    (bookkeeping of the span index), which are indexed but are no events for the rules."""
    spans = [
        {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": f"00f067aa0ba902b{i}", "name": f"op-{i}",
         "startTimeUnixNano": "1796000000000000000", "endTimeUnixNano": "1796000000100000000"}
        for i in (1, 2)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "pay-gw"}}]}
    line = orjson.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]})
    trace = ("logpipe-trace", 0)
    env = LoopStory()
    env.source.append(trace, line, [(H_TYPE, b"trace")])
    async with env.running():
        await env.until(lambda: env.source.committed.get(trace) == 1)
    indexed = [ids for call in env.bulk.calls for ids in call.ids]
    assert len(indexed) == 4  # two spans and two service/operation documents
    assert [d["span"]["name"] for d in env.alerts.seen] == ["op-1", "op-2"]


async def test_a_failed_commit_is_tried_again_at_the_next_interval() -> None:
    env = LoopStory()
    env.produce(TP, env.access_lines(3))
    env.source.fail_commits = True
    async with env.running():
        await env.until(lambda: len(env.bulk.ids) == 3)
        await env.run_for(2.0)
        assert TP not in env.source.committed
        env.source.fail_commits = False
        await env.run_for(1.1)
        assert env.source.committed[TP] == 3


async def test_stopping_flushes_the_open_request_and_commits_what_was_indexed() -> None:
    env = LoopStory(config(**{"bulk.flush_interval": "10s", "kafka.commit_interval": "60s"}))
    env.produce(TP, env.access_lines(3))
    async with env.running():
        await env.until(lambda: env.source.position.get(TP) == 3)
        await env.run_for(0.5)
        assert not env.bulk.calls  # still in the open request
    assert len(env.bulk.ids) == 3
    assert env.source.committed[TP] == 3
    assert env.source.closed and not env.dead.started and not env.alerts.running


async def test_stopping_abandons_work_still_in_flight_after_the_grace() -> None:
    env = LoopStory(config(**{"shutdown_grace": "2s"}))
    env.produce(TP, env.access_lines(3))
    env.bulk.holding = True
    async with env.running():
        await env.until(lambda: len(env.bulk.held()) == 1)
    assert env.source.committed.get(TP, 0) == 0  # nothing indexed: the next owner redoes it
    assert env.source.closed


@pytest.mark.skipif(not NATIVE_AVAILABLE, reason="the C extension is not built")
async def test_the_native_encoder_and_the_parser_index_the_same_documents() -> None:
    cfg = config()
    native = LoopStory(cfg, encode=AccessEncoder(FieldMap(cfg.fields), cfg.index.prefix).encode)
    python = LoopStory(cfg)
    for env in (native, python):
        env.produce(TP, env.access_lines(5))
        async with env.running():
            await env.until(lambda env=env: env.source.committed.get(TP) == 5)  # type: ignore[misc]

    def stripped(env: LoopStory) -> dict[tuple[str, str], Any]:
        return {k: {**d, "event": {**d["event"], "ingested": None}} for k, d in env.bulk.docs.items()}

    assert stripped(native) == stripped(python)
    assert len(native.alerts.seen) == 5  # natively encoded documents are shown to the rules too
