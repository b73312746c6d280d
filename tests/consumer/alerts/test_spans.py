"""Alert rules on span documents: every span of a line counts, the notification names the trace.

The documents come from the consumer's own span parser (``parsers.LineParser`` on OTLP/JSON lines),
as ``consumer/ingest.py`` hands them to the engine, one per span.
"""

from __future__ import annotations

from typing import Any

import orjson

from consumer.alerts.channels.alertmanager import to_alert
from consumer.alerts.channels.email import body
from consumer.alerts.channels.webhook import to_body
from consumer.alerts.channels.wecom import to_markdown
from consumer.alerts.engine import AlertEngine
from consumer.alerts.evaluate import evaluate
from logpipe.core.envelope import H_COMPONENT, H_FILE_ID, H_NAMESPACE, H_OFFSET, H_TYPE
from parsers import Many, Parsed
from parsers.line_parser import LineParser
from tests.consumer.alerts.docs import compiled, rule_file

T0 = 1_800_000_000.0
TRACE = "0af7651916cd43dd8448eb211c80319c"


def otlp_line(spans: list[dict[str, Any]], service: str = "pay-gw") -> bytes:
    """One OTLP/JSON ExportTraceServiceRequest with ``spans`` (failed ones carry status code 2)."""
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return orjson.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]})


def span(n: int, *, failed: bool, ms: int = 20, at: float = T0, trace: str = TRACE) -> dict[str, Any]:
    start = int(at * 1e9)
    out: dict[str, Any] = {
        "traceId": trace, "spanId": f"{n:016x}", "name": f"op-{n}", "kind": 2 if n == 1 else 3,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + ms * 1_000_000),
    }
    if n > 1:
        out["parentSpanId"] = f"{1:016x}"
    if failed:
        out["status"] = {"code": 2, "message": "upstream reset"}
    return out


def span_docs(line: bytes, offset: int = 0) -> list[dict[str, Any]]:
    """The span documents the consumer makes of ``line`` (Jaeger's service documents left out, as dispatch does)."""
    headers = {H_TYPE: "trace", H_COMPONENT: "pay-gw", H_NAMESPACE: "prod", H_FILE_ID: "fingerprint::f1",
               H_OFFSET: str(offset)}
    result = LineParser().parse(line, headers)
    assert isinstance(result, Many)
    return [p.doc for p in result.parts if isinstance(p, Parsed) and p.log_type == "trace"]


FAILING = {
    "name": "pay-span-failures",
    "match": {"types": ["trace"], "components": ["pay-gw"], "where": 'event.outcome=="failure"'},
    "condition": {"count": 2, "within": "1m"},
}


def test_span_documents_match_by_type_component_and_outcome() -> None:
    rule, _ = compiled(FAILING)
    docs = span_docs(otlp_line([span(1, failed=True), span(2, failed=False)]))
    assert [rule.matches(d) for d in docs] == [True, False]
    other = span_docs(otlp_line([span(1, failed=True)], service="cart"))
    assert not rule.matches(other[0])


def test_every_span_of_one_line_counts_and_a_redelivered_line_does_not() -> None:
    """All spans of a line share its (file, offset): the redelivery check must not take the second
    span of a line for a redelivery of the first."""
    engine = AlertEngine(rule_file(FAILING), clock=lambda: T0 + 1)
    engine.settings = engine.settings.model_copy(update={"max_event_age": None})
    line = otlp_line([span(1, failed=True), span(2, failed=True), span(3, failed=False)])
    for doc in span_docs(line, offset=0):
        engine.observe(doc)
    firing = engine.firing()
    assert firing == [("pay-span-failures", ())]
    state = engine.states["pay-span-failures"].get(())
    assert state is not None and state.window is not None and state.window.counts(T0 + 1) == (2, 2)
    for doc in span_docs(line, offset=0):  # Kafka redelivers the record after a rebalance
        engine.observe(doc)
    assert state.window.counts(T0 + 1) == (2, 2)


def test_the_notification_names_the_trace_and_the_command_that_shows_it() -> None:
    engine = AlertEngine(rule_file(FAILING), clock=lambda: T0 + 1)
    rule = engine.rules[0]
    state = engine.states[rule.name]
    matches = [m for d in span_docs(otlp_line([span(1, failed=True), span(2, failed=True)])) for m in
               evaluate(rule, state, d, T0 + 1)]
    assert [m.reason for m in matches] == ["new"]
    n = engine.notification(rule, matches[0])
    assert n.annotations["trace_id"] == TRACE
    assert n.annotations["trace"] == f"logpipe trace {TRACE}"
    # a span has no message: its sample line says what failed, how long it took, and where
    assert n.samples[-1] == f"op-2 20ms failure trace {TRACE}"
    assert to_alert(n)["annotations"]["trace_id"] == TRACE  # Alertmanager
    assert to_body(n)["annotations"]["trace"] == f"logpipe trace {TRACE}"  # webhook
    assert f"trace: logpipe trace {TRACE}" in body(n)  # email
    assert f"**trace**: `logpipe trace {TRACE}`" in to_markdown(n)  # WeCom


def test_a_log_line_without_a_trace_id_gets_no_trace_annotation() -> None:
    engine = AlertEngine(rule_file({"name": "panic", "match": {"keywords": ["panic"]}}), clock=lambda: T0)
    rule = engine.rules[0]
    from tests.consumer.alerts.docs import ecs

    ms = evaluate(rule, engine.states[rule.name], ecs("panic: x", at=T0), T0)
    n = engine.notification(rule, ms[0])
    assert "trace_id" not in n.annotations and "trace" not in n.annotations
    ms = evaluate(rule, engine.states[rule.name], ecs("panic: y", at=T0 + 400, trace={"id": TRACE}), T0 + 400)
    assert engine.notification(rule, ms[0]).annotations["trace"] == f"logpipe trace {TRACE}"


def test_a_latency_rule_on_spans_reads_their_duration() -> None:
    rule, st = compiled({
        "name": "pay-slow-spans", "match": {"types": ["trace"], "where": 'span.kind=="server"'},
        "group_by": ["service.name", "span.name"],
        "condition": {"p95": "500ms", "within": "1m", "min_count": 5},
    })
    fired = []
    for i in range(5):
        line = otlp_line([span(1, failed=False, ms=900, trace=f"{i + 1:032x}"), span(2, failed=False, ms=5)])
        for d in span_docs(line, offset=i):
            fired += evaluate(rule, st, d, T0 + i)
    assert [(m.reason, dict(m.group)) for m in fired] == [("new", {"service_name": "pay-gw", "span_name": "op-1"})]
    assert fired[0].value is not None and abs(fired[0].value - 0.9) <= 0.009
    assert fired[0].doc is not None and fired[0].doc["trace"]["id"] == f"{5:032x}"
