from __future__ import annotations

import orjson
import pytest

from parsers import LineParser, Many, Parsed, Unparseable
from tests.parsers.stories import field, headers


def parse_doc(line: bytes, log_type: str) -> dict:  # type: ignore[type-arg]
    """The span document of a one-span line (the line may also carry its service document)."""
    result = LineParser().parse(line, headers(log_type))
    part = result.parts[0] if isinstance(result, Many) else result
    assert isinstance(part, Parsed), result
    return part.doc

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"
START_NS = 1795780800_000_000_000  # 2026-11-27T12:00:00Z


def test_opentelemetry_json_span() -> None:
    span = {
        "traceId": TRACE,
        "spanId": SPAN,
        "parentSpanId": PARENT,
        "name": "GET /cart",
        "kind": "SPAN_KIND_SERVER",
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 250_000_000),
        "attributes": [
            {"key": "http.method", "value": {"stringValue": "GET"}},
            {"key": "http.status_code", "value": {"intValue": "503"}},
            {"key": "retry", "value": {"boolValue": True}},
        ],
        "status": {"code": 2, "message": "upstream down"},
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart-api"}}]},
    }
    doc = parse_doc(orjson.dumps(span), "trace")
    expected = {
        "trace.id": TRACE,
        "span.id": SPAN,
        "parent.id": PARENT,
        "span.name": "GET /cart",
        "span.kind": "server",
        "event.duration": 250_000_000,
        "@timestamp": "2026-11-27T12:00:00Z",
        "event.outcome": "failure",
        "error.message": "upstream down",
        "service.name": "cart-api",
        "http.request.method": "GET",
        "http.response.status_code": 503,
        "logpipe.type": "trace",
        "traceID": TRACE,
        "operationName": "GET /cart",
        "duration": 250_000,
        "startTime": START_NS // 1000,
        "startTimeMillis": START_NS // 1_000_000,
        "process.serviceName": "cart-api",
    }
    assert {k: field(doc, k) for k in expected} == expected
    assert doc["references"] == [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": PARENT}]
    assert {"key": "http.status_code", "type": "int64", "value": 503} in doc["tags"]
    assert {"key": "retry", "type": "bool", "value": True} in doc["tags"]
    assert {"key": "error", "type": "bool", "value": True} in doc["tags"]


def test_zipkin_span() -> None:
    span = {
        "traceId": TRACE,
        "id": SPAN,
        "parentId": PARENT,
        "name": "select",
        "kind": "CLIENT",
        "timestamp": START_NS // 1000,
        "duration": 1500,
        "localEndpoint": {"serviceName": "orders"},
        "tags": {"db.system": "mysql", "error": "timeout"},
    }
    doc = parse_doc(orjson.dumps(span), "trace")
    assert field(doc, "span.kind") == "client"
    assert field(doc, "event.duration") == 1_500_000
    assert field(doc, "event.outcome") == "failure"
    assert field(doc, "error.message") == "timeout"
    assert field(doc, "service.name") == "orders"
    assert field(doc, "@timestamp") == "2026-11-27T12:00:00Z"


def test_jaeger_span() -> None:
    span = {
        "traceID": TRACE,
        "spanID": SPAN,
        "operationName": "HTTP GET",
        "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": PARENT}],
        "startTime": START_NS // 1000,
        "duration": 2000,
        "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
        "process": {"serviceName": "gateway"},
    }
    doc = parse_doc(orjson.dumps(span), "trace")
    assert (field(doc, "parent.id"), field(doc, "span.name"), field(doc, "span.kind")) == (
        PARENT,
        "HTTP GET",
        "server",
    )
    assert field(doc, "event.outcome") == "success"
    assert field(doc, "service.name") == "gateway"


def test_generic_span_with_iso_start_and_header_component() -> None:
    line = orjson.dumps(
        {"trace_id": TRACE, "span_id": SPAN, "operation": "work", "start": "2026-11-27T20:00:00+08:00", "duration": 7}
    )
    doc = parse_doc(line, "trace")
    assert field(doc, "@timestamp") == "2026-11-27T12:00:00Z"
    assert field(doc, "event.duration") == 7_000
    assert field(doc, "service.name") == "cart"  # the Component, from the headers
    assert "parent" not in doc


def test_base64_ids_become_hex() -> None:
    doc = parse_doc(b'{"traceId": "W47/95gDgQPSabYzgT/GDA==", "spanId": "7uGbfsPBsXQ="}', "trace")
    assert (field(doc, "trace.id"), field(doc, "span.id")) == (TRACE, SPAN)
    assert "timestamp_fallback" in doc["logpipe"]["flags"]


@pytest.mark.parametrize("line", [b'{"name": "no ids"}', b"[]", b"{", b'{"traceId": {}, "spanId": 1}'])
def test_spans_without_ids_are_unparseable(line: bytes) -> None:
    assert isinstance(LineParser().parse(line, headers("trace")), Unparseable)
