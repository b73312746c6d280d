"""Alert rules on spans, end to end: the OpenTelemetry SDK writes spans into pod files, ``logpipe ship``
and ``logpipe consume --rules`` run as processes over the real Kafka and Elasticsearch, and the
real Alertmanager receives the alerts.

* A latency rule (p95 of the Component's spans over a 6 s window) fires within 5 s of the burst
  of slow spans that puts the window over its threshold, names a slow trace, and resolves once the
  slow spans have left the window.
* A span failure rule fires from the failed spans of ONE OTLP line (every span of a line counts)
  with the trace id and the ``logpipe trace ID`` command in Alertmanager's annotations.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import AsyncElasticsearch
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.consumer.alerts.channels.test_alertmanager import am_alerts, resolve_all
from tests.end_to_end import Pipeline
from tests.integration.span_producers import BufferedExporter, otel_tracer_provider
from tests.integration.test_traces_end_to_end import pipeline, wait_spans

pytestmark = pytest.mark.integration

__all__ = ["pipeline"]  # the fixture, shared with the trace end-to-end test


async def wait_active(
    url: str, name: str, want: int, p: Pipeline, timeout: float
) -> tuple[list[dict[str, Any]], float]:
    """Poll Alertmanager until ``want`` alerts named ``name`` are active; (alerts, when) or fail."""
    deadline = time.monotonic() + timeout
    while True:
        alerts = await am_alerts(url, name)
        if len(alerts) == want:
            return alerts, time.time()
        p.check_alive()
        assert time.monotonic() < deadline, f"{len(alerts)} active alerts {name!r} after {timeout}s, want {want}"
        await asyncio.sleep(0.1)


def write_spans(path: Path, service: str, durations_ms: list[int], *, failed: int = 0) -> list[str]:
    """One OTLP/JSON line from the SDK: a server span per duration (each its own trace; the first
    ``failed`` of them with an error status), with explicit start and end times. Their trace ids."""
    batch = BufferedExporter(path)
    provider = otel_tracer_provider(path, service, batch)
    tracer = provider.get_tracer("shop.pay", "1.0")
    now = time.time_ns()
    traces = []
    for i, ms in enumerate(durations_ms):
        start = now - ms * 1_000_000
        span = tracer.start_span("POST /pay", kind=SpanKind.SERVER, start_time=start)
        if i < failed:
            span.set_status(Status(StatusCode.ERROR, "card declined"))
        span.end(end_time=now)
        traces.append(format(span.get_span_context().trace_id, "032x"))
    batch.flush_line()
    provider.shutdown()
    return traces


def write_failing_trace(path: Path, service: str) -> str:
    """One trace in ONE line: a server span and two failed client calls under it."""
    batch = BufferedExporter(path)
    provider = otel_tracer_provider(path, service, batch)
    tracer = provider.get_tracer("shop.cart", "1.0")
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as root:
        for call in ("reserve stock", "charge card"):
            with tracer.start_as_current_span(call, kind=SpanKind.CLIENT) as child:
                child.set_status(Status(StatusCode.ERROR, f"{call} failed"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    batch.flush_line()
    provider.shutdown()
    return trace_id


async def test_latency_and_span_failure_rules_reach_alertmanager_with_the_trace(
    pipeline: Pipeline, es_url: str, alertmanager_url: str, unique_name: str, tmp_path: Path
) -> None:
    sim = pipeline.sim
    pay, cart = f"pay-{unique_name[-6:]}", f"cart-{unique_name[-6:]}"
    pay_pod, cart_pod = sim.add_pod(pay), sim.add_pod(cart)
    slow_rule, fail_rule = f"{unique_name}-slow", f"{unique_name}-span-failure"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({
        "channels": {"am": {"type": "alertmanager", "url": alertmanager_url}},
        "engine": {"reassert": "2s", "alert_ttl": "30s", "tick_interval": "200ms"},
        "rules": [
            {"name": slow_rule, "match": {"types": ["trace"], "components": [pay]},
             "condition": {"p95": "500ms", "within": "6s", "min_count": 20}, "resolve": "2s",
             "group_by": ["service.name"]},
            {"name": fail_rule, "match": {"types": ["trace"], "components": [cart],
                                          "where": 'event.outcome=="failure"'},
             "condition": {"count": 2, "within": "1m"}},
        ],
    }))
    consumer = pipeline.consumer_config()
    consumer["alerts"] = {"rules": str(rules), "alertmanager_url": alertmanager_url}
    pipeline._spawn("consume", consumer)
    pipeline.start_shipper()
    es = AsyncElasticsearch(es_url)
    spans = f"{unique_name}-jaeger-span-*"
    try:
        # fast traffic: 40 spans of 20-60 ms; p95 far under 500 ms, nothing fires
        write_spans(pay_pod.trace_log, pay, [20 + i for i in range(40)])
        await wait_spans(es, spans, 40, pipeline)
        await asyncio.sleep(1.0)  # several ticks
        assert await am_alerts(alertmanager_url, slow_rule) == []

        # a burst of 25 slow spans in one line: whatever of the fast ones is still in the window,
        # p95 is now ~900 ms (25 of <= 65 durations are slow, and 25 >= min_count on their own)
        slow_traces = write_spans(pay_pod.trace_log, pay, [900] * 25)
        crossed = time.time()
        [alert], fired = await wait_active(alertmanager_url, slow_rule, 1, pipeline, timeout=30)
        assert fired - crossed <= 5.0, f"fired {fired - crossed:.2f}s after the window crossed its threshold"
        assert alert["labels"]["service_name"] == pay and alert["labels"]["component"] == pay
        notes = alert["annotations"]
        assert notes["summary"].startswith(f"{slow_rule} on {pay}: p95 ")
        assert "(threshold 500ms, minimum 20)" in notes["summary"]
        assert notes["trace_id"] in slow_traces  # the exemplar is a slow request's trace
        assert notes["trace"] == f"logpipe trace {notes['trace_id']}"

        # span failures: two failed spans of one line
        failing = write_failing_trace(cart_pod.trace_log, cart)
        [failure], _ = await wait_active(alertmanager_url, fail_rule, 1, pipeline, timeout=30)
        assert failure["annotations"]["trace_id"] == failing
        assert failure["annotations"]["trace"] == f"logpipe trace {failing}"
        assert f"trace {failing}" in failure["annotations"]["samples"]
        assert "2 matching lines within 1m" in failure["annotations"]["summary"]

        # no more spans: the slow ones leave the 6 s window (its 0.6 s buckets), 2 s later: resolved
        _, resolved = await wait_active(alertmanager_url, slow_rule, 0, pipeline, timeout=40)
        assert resolved - fired >= 6.0 - 0.6, f"resolved {resolved - fired:.1f}s after firing: before the window"
    finally:
        await es.close()
        for name in (slow_rule, fail_rule):
            await resolve_all(alertmanager_url, name)  # a failed test must not leave them firing
