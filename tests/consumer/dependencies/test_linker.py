"""The spark-dependencies rules on hand-built traces whose graph is known."""

from __future__ import annotations

import orjson

from consumer.dependencies.link import SpanLink, link_from_document
from consumer.dependencies.linker import count_links, trace_edges
from parsers import LineParser, Many, Parsed
from tests.parsers.stories import headers


def span(
    sid: str, service: str, *refs: str, kind: str = "", error: bool = False, peer: str = "", start: int = 0
) -> SpanLink:
    return SpanLink("t1", sid, tuple(refs), service, kind, error, start or int(sid, 16), peer)


def test_jaeger_style_rpc_chain_links_every_parent_child_pair() -> None:
    # frontend(server) -> frontend(client) -> api(server) -> api(client) -> db(server)
    spans = [
        span("1", "frontend", kind="server"),
        span("2", "frontend", "1", kind="client"),
        span("3", "api", "2", kind="server"),
        span("4", "api", "3", kind="client", error=True),
        span("5", "db", "4", kind="server", error=True),
    ]
    assert count_links(trace_edges(spans)) == {
        ("frontend", "frontend"): (1, 0),  # in-process pairs count as self-calls, as the job does
        ("frontend", "api"): (1, 0),
        ("api", "api"): (1, 1),
        ("api", "db"): (1, 1),
    }


def test_zipkin_shared_span_links_client_to_server_once() -> None:
    # The RPC's two halves share span id 2: client in web, server in auth; auth's child 3 calls nothing.
    spans = [
        span("1", "web", kind="server"),
        span("2", "web", "1", kind="client", start=100),
        span("2", "auth", "1", kind="server", start=101),
        span("3", "auth", "2", kind="client", peer="ldap"),
    ]
    assert count_links(trace_edges(spans)) == {
        ("web", "auth"): (1, 0),  # the shared pair (rule 2); the server half is not linked to span 1
        ("web", "web"): (1, 0),  # the client half's own parent
        ("auth", "auth"): (1, 0),  # span 3's parent is the shared id: linked from its server half
        ("auth", "ldap"): (1, 0),  # leaf with the peer-service tag
    }


def test_missing_parent_and_serviceless_spans_give_nothing() -> None:
    spans = [
        span("a", "checkout", "ff", kind="server"),  # parent ff never arrived
        span("b", "", "a", kind="client"),  # no service
        span("c", "payments", "b", kind="server"),  # parent has no service
    ]
    assert trace_edges(spans) == []


def test_duplicates_count_once_and_keys_are_unique_per_call() -> None:
    spans = [span("1", "a", kind="server"), span("2", "b", "1", kind="server"), span("3", "b", "1", kind="server")]
    edges = trace_edges([*spans, spans[1]])  # span 2 delivered twice
    assert count_links(edges) == {("a", "b"): (2, 0)}
    assert len({e.key for e in edges}) == len(edges)


def test_producer_consumer_shared_span() -> None:
    spans = [span("9", "orders", kind="producer"), span("9", "mailer", kind="consumer", error=True)]
    assert count_links(trace_edges(spans)) == {("orders", "mailer"): (1, 1)}


def test_peer_tag_only_on_leaves_with_a_reference() -> None:
    spans = [
        span("1", "gw", kind="server", peer="ignored-root"),  # a root: no references, rule 4 skips it
        span("2", "gw", "1", kind="client", peer="redis"),
        span("3", "gw", "1", kind="client", peer="not-a-leaf"),
        span("4", "cache", "3", kind="server"),
    ]
    assert count_links(trace_edges(spans)) == {("gw", "gw"): (2, 0), ("gw", "redis"): (1, 0), ("gw", "cache"): (1, 0)}


def test_order_of_spans_does_not_change_the_links() -> None:
    spans = [
        span("1", "web", kind="server"),
        span("2", "web", "1", kind="client"),
        span("2", "auth", "1", kind="server"),
        span("3", "auth", "2", kind="client"),
        span("4", "db", "3", kind="server"),
    ]
    forward = sorted(trace_edges(spans), key=lambda e: e.key)
    backward = sorted(trace_edges(reversed(spans)), key=lambda e: e.key)
    assert forward == backward


def test_links_from_the_span_documents_the_parsers_write() -> None:
    """An OTLP/JSON line through the real parser: its documents carry what the linker needs."""

    def ospan(sid: str, parent: str, kind: int, **extra: object) -> dict[str, object]:
        return {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": sid, "parentSpanId": parent, "name": "op",
                "kind": kind, "startTimeUnixNano": "1795000000000000000", "endTimeUnixNano": "1795000000005000000",
                **extra}

    line = orjson.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
        "scopeSpans": [{"spans": [
            ospan("00f067aa0ba902b7", "", 2),
            ospan("00f067aa0ba902b8", "00f067aa0ba902b7", 3, status={"code": 2},
                  attributes=[{"key": "peer.service", "value": {"stringValue": "redis"}}]),
        ]}],
    }]})
    result = LineParser(index_prefix="lp").parse(line, headers("trace"))
    assert isinstance(result, Many)
    links = [link_from_document(p.doc, "peer.service") for p in result.parts if isinstance(p, Parsed)]
    links = [x for x in links if x is not None]
    assert [(x.span_id, x.refs, x.service, x.kind, x.error, x.peer, x.start_us) for x in links] == [
        ("00f067aa0ba902b7", (), "cart", "server", False, "", 1_795_000_000_000_000),
        ("00f067aa0ba902b8", ("00f067aa0ba902b7",), "cart", "client", True, "redis", 1_795_000_000_000_000),
    ]
    assert count_links(trace_edges(links)) == {("cart", "cart"): (1, 1), ("cart", "redis"): (1, 1)}
