"""A line of 10 000 spans: parsed in one pass, memory proportional to its documents."""

from __future__ import annotations

import tracemalloc

import orjson

from parsers import LineParser, Many, Parsed
from tests.parsers.stories import headers

START_NS = 1795780800_000_000_000


def big_line(n: int) -> bytes:
    spans = [
        {
            "traceId": f"{i // 20 + 1:032x}",
            "spanId": f"{i + 1:016x}",
            "parentSpanId": f"{i:016x}" if i % 20 else "",
            "name": f"op-{i % 7}",
            "kind": 2,
            "startTimeUnixNano": str(START_NS + i * 1000),
            "endTimeUnixNano": str(START_NS + i * 1000 + 500_000),
            "attributes": [{"key": "http.route", "value": {"stringValue": f"/r/{i % 13}"}}],
        }
        for i in range(n)
    ]
    service = {"key": "service.name", "value": {"stringValue": "big"}}
    return orjson.dumps({"resourceSpans": [{"resource": {"attributes": [service]}, "scopeSpans": [{"spans": spans}]}]})


def test_ten_thousand_spans_in_one_line() -> None:
    line = big_line(10_000)
    parser = LineParser()
    tracemalloc.start()
    try:
        result = parser.parse(line, headers("trace"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(result, Many)
    spans = [p for p in result.parts if isinstance(p, Parsed) and p.log_type == "trace"]
    services = [p for p in result.parts if isinstance(p, Parsed) and p.log_type == "trace-service"]
    assert len(spans) == 10_000 and len({p.doc_id for p in spans}) == 10_000
    assert len(services) == 7  # one per operation, not one per span
    encoded = sum(len(orjson.dumps(p.doc)) for p in spans)
    # The documents themselves as Python objects are a few times their JSON; nothing else grows with N.
    assert peak < 12 * encoded, (peak, encoded, len(line))
