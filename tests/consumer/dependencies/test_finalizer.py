"""The span work's finalizer: a span's record is committed only once its link record is acknowledged."""

from __future__ import annotations

from consumer.dependencies.link import SpanLink
from logpipe.core.envelope import H_TYPE
from parsers import Many, Parsed, ParseResult
from tests.consumer.memory import LoopStory, MemoryLinks, config
from tests.consumer.test_loop import SpansParser

TRACE = ("logpipe-trace", 0)


def jaeger_span(span_id: str, parent: str | None, service: str, kind: str) -> Parsed:
    """A span document as the trace parsers write it (Jaeger's model; ECS beside it left out)."""
    doc = {
        "traceID": "t1", "spanID": span_id, "operationName": "op", "startTime": 1_795_000_000_000_000,
        "references": [{"refType": "CHILD_OF", "traceID": "t1", "spanID": parent}] if parent else [],
        "tags": [{"key": "span.kind", "type": "string", "value": kind}, {"key": "peer.service", "value": "x"}],
        "process": {"serviceName": service},
        "@timestamp": "2026-11-27T02:00:00.000Z", "logpipe": {"file_id": "fp::t"}, "log": {"offset": 7},
    }
    return Parsed(doc, "trace", doc_id=f"t1-{span_id}", index="lp-jaeger-span-2026-11-27")


def story(links: MemoryLinks) -> LoopStory:
    spans: dict[bytes, ParseResult] = {
        b"two spans": Many((jaeger_span("a", None, "web", "server"), jaeger_span("b", "a", "web", "client"))),
        b"one span": jaeger_span("c", "b", "api", "server"),
    }
    env = LoopStory(config(), new_parser=lambda: SpansParser(spans), links=links)
    for value in (b"two spans", b"one span"):
        env.source.append(TRACE, value, [(H_TYPE, b"trace")])
    return env


async def test_spans_are_committed_after_their_links_are_acknowledged() -> None:
    links = MemoryLinks()
    links.holding = True
    env = story(links)
    async with env.running():
        await env.until(lambda: len(env.bulk.ids) == 3)  # indexed ...
        await env.run_for(3.0)
        assert env.source.committed.get(TRACE, 0) == 0  # ... but not committed: the links are not acknowledged
        links.release()
        await env.until(lambda: env.source.committed.get(TRACE) == 2)
    start = 1_795_000_000_000_000
    assert sorted(links.links, key=lambda x: x.span_id) == [  # the peer tag is carried; the linker uses it on leaves
        SpanLink("t1", "a", (), "web", "server", False, start, "x", "op"),
        SpanLink("t1", "b", ("a",), "web", "client", False, start, "x", "op"),
        SpanLink("t1", "c", ("b",), "api", "server", False, start, "x", "op"),
    ]


async def test_a_failing_links_topic_is_retried_and_holds_the_commit() -> None:
    links = MemoryLinks()
    links.failures = 3
    env = story(links)
    async with env.running():
        await env.until(lambda: env.source.committed.get(TRACE) == 2)
    assert links.attempts >= 4
    assert {link.span_id for link in links.links} == {"a", "b", "c"}
