"""Every span format of a line -> documents Jaeger reads (hand-written fixtures: unit level).

The real producers (the OpenTelemetry SDK, py_zipkin) are in tests/integration/test_traces_jaeger.py.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from parsers import LineParser, Many, Parsed, Unparseable
from tests.parsers.stories import headers

TRACE = "5b8efff798038103d269b633813fc60c"
ROOT, CHILD, GRANDCHILD = "eee19b7ec3c1b173", "eee19b7ec3c1b174", "eee19b7ec3c1b175"
START_NS = 1795780800_000_000_000  # 2026-11-27T12:00:00Z
DAY = "2026-11-27"


def kv(key: str, **value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def otlp_span(span_id: str, parent: str = "", **over: Any) -> dict[str, Any]:
    span = {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": f"op-{span_id[-1]}",
        "kind": 2,
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 5_000_000),
        "attributes": [kv("http.request.method", stringValue="GET"), kv("http.response.status_code", intValue="200")],
        "status": {},
    }
    span.update(over)
    return span


def otlp_line(*spans: dict[str, Any], service: str = "cart-api") -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            kv("service.name", stringValue=service),
                            kv("k8s.pod.name", stringValue="cart-7d9f"),
                            kv("telemetry.sdk.name", stringValue="opentelemetry"),
                        ]
                    },
                    "scopeSpans": [{"scope": {"name": "shop.cart", "version": "1.2"}, "spans": list(spans)}],
                }
            ]
        }
    )


def parse(line: bytes, parser: LineParser | None = None) -> list[Parsed | Unparseable]:
    result = (parser or LineParser()).parse(line, headers("trace", 40))
    return list(result.parts) if isinstance(result, Many) else [result]  # type: ignore[list-item]


def span_docs(parts: list[Parsed | Unparseable]) -> dict[str, dict[str, Any]]:
    return {p.doc["spanID"]: p.doc for p in parts if isinstance(p, Parsed) and p.log_type == "trace"}


def tags(doc: dict[str, Any], where: str = "tags") -> dict[str, Any]:
    holder = doc["process"] if where == "process" else doc
    return {t["key"]: t["value"] for t in holder["tags"]}


def test_otlp_request_becomes_one_document_per_span_in_jaegers_model() -> None:
    line = otlp_line(
        otlp_span(ROOT),
        otlp_span(
            CHILD,
            ROOT,
            kind=3,
            status={"code": 2, "message": "upstream down"},
            events=[{"timeUnixNano": str(START_NS + 1000), "name": "retry", "attributes": [kv("n", intValue="2")]}],
            links=[{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}],
        ),
    )
    parts = parse(line)
    docs = span_docs(parts)
    assert set(docs) == {ROOT, CHILD}
    child = docs[CHILD]
    assert child["traceID"] == TRACE and child["operationName"] == "op-4"
    assert child["startTime"] == START_NS // 1000 and child["duration"] == 5000
    assert child["startTimeMillis"] == START_NS // 1_000_000
    assert child["references"] == [
        {"refType": "CHILD_OF", "traceID": TRACE, "spanID": ROOT},
        {"refType": "FOLLOWS_FROM", "traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "b7ad6b7169203331"},
    ]
    assert tags(child) == {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "otel.scope.name": "shop.cart",
        "otel.scope.version": "1.2",
        "span.kind": "client",
        "otel.status_code": "ERROR",
        "error": True,
        "otel.status_description": "upstream down",
    }
    assert child["process"]["serviceName"] == "cart-api"
    assert tags(child, "process") == {"k8s.pod.name": "cart-7d9f", "telemetry.sdk.name": "opentelemetry"}
    assert child["logs"] == [
        {
            "timestamp": START_NS // 1000 + 1,
            "fields": [{"key": "event", "type": "string", "value": "retry"}, {"key": "n", "type": "int64", "value": 2}],
        }
    ]
    # ECS beside Jaeger's fields: what logpipe search/trace read
    assert child["trace"] == {"id": TRACE} and child["span"] == {"id": CHILD, "name": "op-4", "kind": "client"}
    assert child["parent"] == {"id": ROOT} and child["event"]["outcome"] == "failure"
    assert child["event"]["duration"] == 5_000_000 and child["error"] == {"message": "upstream down"}
    assert child["@timestamp"] == "2026-11-27T12:00:00Z" and child["service"] == {"name": "cart-api"}
    assert child["kubernetes"]["pod"]["name"] == "cart-7d9f-abcde"  # from the shipper's headers
    assert docs[ROOT]["references"] == [] and "parent" not in docs[ROOT]
    spans = [p for p in parts if isinstance(p, Parsed) and p.log_type == "trace"]
    assert [(p.doc_id, p.index) for p in spans] == [
        (f"{TRACE}-{ROOT}", f"logpipe-jaeger-span-{DAY}"),
        (f"{TRACE}-{CHILD}", f"logpipe-jaeger-span-{DAY}"),
    ]


def test_protobuf_json_mapping_base64_ids_enum_names_and_string_ints() -> None:
    b64 = lambda h: base64.b64encode(bytes.fromhex(h)).decode()  # noqa: E731
    line = otlp_line(
        otlp_span(
            b64(CHILD),
            b64(ROOT),
            traceId=b64(TRACE),
            kind="SPAN_KIND_CONSUMER",
            status={"code": "STATUS_CODE_ERROR"},
            flags=257,
            attributes=[
                kv("bytes", intValue="9007199254740993"),
                kv("ratio", doubleValue=0.5),
                kv("ok", boolValue=False),
                kv("list", arrayValue={"values": [{"stringValue": "a"}]}),
            ],
        )
    )
    [doc] = span_docs(parse(line)).values()
    assert (doc["traceID"], doc["spanID"], doc["references"][0]["spanID"]) == (TRACE, CHILD, ROOT)
    assert tags(doc)["span.kind"] == "consumer" and tags(doc)["error"] is True
    assert tags(doc)["bytes"] == 9007199254740993 and tags(doc)["ratio"] == 0.5 and tags(doc)["ok"] is False
    assert tags(doc)["list"] == '["a"]' and doc["flags"] == 1


def test_an_invalid_span_is_dead_lettered_alone_with_its_reason() -> None:
    line = otlp_line(
        otlp_span(ROOT),
        otlp_span("abc", ROOT),  # bad id length
        otlp_span(GRANDCHILD, CHILD, endTimeUnixNano=str(START_NS - 1)),  # ends before it starts
        otlp_span(CHILD, ROOT),
    )
    parts = parse(line)
    reasons = [p.reason for p in parts if isinstance(p, Unparseable)]
    assert len(reasons) == 2
    assert "span 2" in reasons[0] and "'abc'" in reasons[0] and "16" in reasons[0]
    assert "span 3" in reasons[1] and "ends before it starts" in reasons[1]
    assert set(span_docs(parts)) == {ROOT, CHILD}
    nameless = parse(otlp_line(otlp_span(ROOT), service=""))
    assert [p.reason for p in nameless if isinstance(p, Unparseable)] == [f"span 1: span {ROOT} has no service name"]


def test_service_documents_once_per_day_with_jaegers_ids() -> None:
    parser = LineParser()
    first = parse(otlp_line(otlp_span(ROOT), otlp_span(CHILD, ROOT, name="op-3")), parser)
    services = [p for p in first if isinstance(p, Parsed) and p.log_type == "trace-service"]
    assert [p.doc for p in services] == [{"serviceName": "cart-api", "operationName": "op-3"}]
    assert services[0].index == f"logpipe-jaeger-service-{DAY}"
    # Jaeger's writer: FNV-1a 64 of service + operation, hex
    from parsers.spans.document import fnv1a_64, service_doc_id

    assert format(fnv1a_64(b"a"), "x") == "af63dc4c8601ec8c"  # the published FNV-1a test vector
    assert services[0].doc_id == service_doc_id("cart-api", "op-3") == format(fnv1a_64(b"cart-apiop-3"), "x")
    again = LineParser().parse(otlp_line(otlp_span(ROOT)), headers("trace"))
    assert isinstance(again, Many)  # a new parser (another replica) writes the same document again
    assert parser.parse(otlp_line(otlp_span(GRANDCHILD, name="op-3")), headers("trace")).__class__ is Parsed


def test_zipkin_list_with_a_shared_server_half_stores_both() -> None:
    client = {
        "traceId": TRACE[16:],
        "id": CHILD,
        "parentId": ROOT,
        "name": "get /cart",
        "kind": "CLIENT",
        "timestamp": START_NS // 1000,
        "duration": 900,
        "localEndpoint": {"serviceName": "web", "ipv4": "10.0.0.1"},
        "remoteEndpoint": {"serviceName": "cart", "port": 8080},
        "tags": {"http.path": "/cart"},
        "annotations": [{"timestamp": START_NS // 1000 + 10, "value": "ws"}],
    }
    server = {
        "traceId": TRACE[16:],
        "id": CHILD,
        "parentId": ROOT,
        "name": "get /cart",
        "kind": "SERVER",
        "shared": True,
        "timestamp": START_NS // 1000 + 100,
        "duration": 700,
        "localEndpoint": {"serviceName": "cart"},
        "tags": {"error": "out of stock"},
    }
    parts = parse(orjson.dumps([client, server]))
    spans = [p for p in parts if isinstance(p, Parsed) and p.log_type == "trace"]
    padded = "0" * 16 + TRACE[16:]  # a 64-bit Zipkin trace id, as Jaeger v2 looks it up
    assert [p.doc_id for p in spans] == [f"{padded}-{CHILD}", f"{padded}-{CHILD}-shared"]
    c, s = (p.doc for p in spans)
    assert c["spanID"] == s["spanID"] == CHILD and c["traceID"] == padded
    assert tags(c) == {"http.path": "/cart", "span.kind": "client", "peer.service": "cart", "peer.port": 8080}
    assert tags(c, "process") == {"ip": "10.0.0.1"} and c["logs"][0]["fields"][0]["value"] == "ws"
    assert s["process"]["serviceName"] == "cart" and tags(s)["error"] is True
    assert s["error"] == {"message": "out of stock"} and s["event"]["outcome"] == "failure"


def test_a_64_bit_trace_id_and_its_padded_spelling_name_the_same_trace() -> None:
    padded = {
        "traceId": "0" * 16 + TRACE[16:],
        "id": ROOT,
        "name": "x",
        "timestamp": START_NS // 1000,
        "duration": 1,
        "localEndpoint": {"serviceName": "web"},
    }
    [doc] = span_docs(parse(orjson.dumps(padded))).values()
    [short] = span_docs(parse(orjson.dumps({**padded, "traceId": TRACE[16:]}))).values()
    assert doc["traceID"] == doc["trace"]["id"] == short["traceID"] == "0" * 16 + TRACE[16:]


def test_the_same_span_in_two_formats_has_one_id() -> None:
    zipkin = {
        "traceId": TRACE,
        "id": ROOT,
        "name": "op-3",
        "timestamp": START_NS // 1000,
        "duration": 5000,
        "localEndpoint": {"serviceName": "cart-api"},
        "kind": "SERVER",
    }
    a = [p for p in parse(otlp_line(otlp_span(ROOT))) if isinstance(p, Parsed) and p.log_type == "trace"]
    b = [p for p in parse(orjson.dumps([zipkin])) if isinstance(p, Parsed) and p.log_type == "trace"]
    assert a[0].doc_id == b[0].doc_id and a[0].index == b[0].index


def test_jaeger_ui_download_with_processes() -> None:
    download = {
        "data": [
            {
                "traceID": TRACE,
                "processes": {
                    "p1": {"serviceName": "gateway", "tags": [{"key": "hostname", "type": "string", "value": "gw-1"}]},
                    "p2": {"serviceName": "cart", "tags": []},
                },
                "spans": [
                    {
                        "traceID": TRACE,
                        "spanID": ROOT,
                        "operationName": "GET /",
                        "references": [],
                        "startTime": START_NS // 1000,
                        "duration": 3000,
                        "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
                        "logs": [],
                        "processID": "p1",
                        "flags": 1,
                    },
                    {
                        "traceID": TRACE,
                        "spanID": CHILD,
                        "operationName": "load",
                        "processID": "p2",
                        "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": ROOT}],
                        "startTime": START_NS // 1000 + 5,
                        "duration": 1000,
                        "tags": [{"key": "error", "type": "bool", "value": True}],
                        "logs": [
                            {
                                "timestamp": START_NS // 1000 + 6,
                                "fields": [{"key": "event", "type": "string", "value": "x"}],
                            }
                        ],
                    },
                ],
            }
        ]
    }
    docs = span_docs(parse(orjson.dumps(download)))
    assert docs[ROOT]["process"] == {
        "serviceName": "gateway",
        "tags": [{"key": "hostname", "type": "string", "value": "gw-1"}],
    }
    assert docs[ROOT]["span"]["kind"] == "server"
    assert docs[CHILD]["parent"] == {"id": ROOT} and docs[CHILD]["event"]["outcome"] == "failure"
    assert docs[CHILD]["logs"] == [
        {"timestamp": START_NS // 1000 + 6, "fields": [{"key": "event", "type": "string", "value": "x"}]}
    ]


def test_jaeger_per_span_json() -> None:
    span = {
        "traceID": TRACE,
        "spanID": ROOT,
        "operationName": "GET /",
        "references": [],
        "startTime": START_NS // 1000,
        "duration": 3000,
        "tags": [],
        "process": {"serviceName": "gateway", "tags": []},
    }
    [doc] = span_docs(parse(orjson.dumps(span))).values()
    assert doc["process"]["serviceName"] == "gateway" and doc["duration"] == 3000


def test_a_list_that_is_not_zipkin_is_unparseable() -> None:
    [part] = parse(b'[{"a": 1}]')
    assert isinstance(part, Unparseable) and "Zipkin" in part.reason
    [empty] = parse(b'{"resourceSpans": []}')
    assert isinstance(empty, Unparseable) and empty.reason == "no spans in the line"


def test_each_resource_keeps_its_own_process_across_lines() -> None:
    """Process tags are built once per resource and reused by later lines (parsers/spans/otlp.py):
    lines of other resources get theirs, and a document's tags equal a fresh parse's."""
    parser = LineParser()
    services = ("cart-api", "pay-api", "cart-api")
    lines = [otlp_line(otlp_span(f"{i + 1:016x}"), service=s) for i, s in enumerate(services)]
    docs = [span_docs(parse(line, parser)) for line in lines]
    (cart1,), (pay,), (cart2,) = (d.values() for d in docs)
    assert [d["process"]["serviceName"] for d in (cart1, pay, cart2)] == ["cart-api", "pay-api", "cart-api"]
    assert cart1["process"] == cart2["process"] and tags(pay, "process")["k8s.pod.name"] == "cart-7d9f"
    from parsers.spans import otlp

    for line, got in zip(lines, docs, strict=True):
        otlp._PROCESSES.clear()  # the uncached reading
        assert got == span_docs(parse(line, LineParser()))
    assert orjson.loads(orjson.dumps(cart2))["process"] == cart1["process"]
