"""Alert rules on spans, end to end: the OpenTelemetry SDK writes spans into pod files, ``logpipe ship``
and ``logpipe consume --rules`` run as processes over the real Kafka and Elasticsearch, and the
real Alertmanager receives the alerts.

* A latency rule (p95 of the Component's spans over a 6 s window) fires within 5 s of the burst
  of slow spans that puts the window over its threshold, names a slow trace, and resolves once the
  slow spans have left the window.
* A span failure rule fires from the failed spans of ONE OTLP line (every span of a line counts)
  with the trace id and the ``logpipe trace ID`` command in Alertmanager's annotations.
* The same latency condition on access lines written by a real nginx (Debian's), whose
  ``$request_time`` grows when it proxies to a slow backend.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from tests.nginx_server import Nginx
from tests.test_end_to_end import wait_count

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
    es = AsyncElasticsearch(es_url, request_timeout=30)
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
        # not before the slow ones (evaluated after `crossed`) left the window
        assert resolved - crossed >= 6.0 - 0.6, f"resolved {resolved - crossed:.1f}s after the burst"
    finally:
        await es.close()
        for name in (slow_rule, fail_rule):
            await resolve_all(alertmanager_url, name)  # a failed test must not leave them firing


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.9)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def slow_backend() -> Iterator[int]:
    """An HTTP server on loopback that answers after 0.9 s: nginx's upstream for ``/slow``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


class ProxyingNginx(Nginx):
    """The tests' nginx with ``location /slow`` proxied to ``backend``: its ``$request_time`` is real."""

    def __init__(self, workdir: Path, json_log: Path, backend: int) -> None:
        super().__init__(workdir, json_log)
        self.backend = backend

    def config(self) -> str:
        slow = f"location /slow {{ proxy_pass http://127.0.0.1:{self.backend}; }}\n    location / {{"
        return super().config().replace("location / {", slow, 1)


async def test_a_latency_rule_on_real_nginx_access_lines_fires_and_resolves(
    pipeline: Pipeline, es_url: str, alertmanager_url: str, unique_name: str, tmp_path: Path, slow_backend: int
) -> None:
    web = f"web-{unique_name[-6:]}"
    pod = pipeline.sim.add_pod(web)
    nginx = ProxyingNginx(tmp_path / "nginx", pod.access_log, slow_backend)
    rule = f"{unique_name}-slow-web"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({
        "channels": {"am": {"type": "alertmanager", "url": alertmanager_url}},
        "engine": {"reassert": "2s", "alert_ttl": "30s", "tick_interval": "200ms"},
        "rules": [{"name": rule, "match": {"types": ["access"], "components": [web]},
                   "condition": {"p90": "500ms", "within": "6s", "min_count": 20}, "resolve": "2s",
                   "group_by": ["service.name"]}],
    }))
    consumer = pipeline.consumer_config()
    consumer["alerts"] = {"rules": str(rules), "alertmanager_url": alertmanager_url}
    nginx.start()
    pipeline._spawn("consume", consumer)
    pipeline.start_shipper()
    es = AsyncElasticsearch(es_url, request_timeout=30)
    try:
        for i in range(30):  # fast requests, answered by nginx itself
            assert nginx.get(f"/api/orders?id={i}".encode()) == 200
        await wait_count(es, f"{pipeline.name}-access-*", 30, pipeline)
        await asyncio.sleep(1.0)
        assert await am_alerts(alertmanager_url, rule) == []

        # 25 requests through the slow upstream at once: whatever of the fast ones is still in the
        # window, p90 is now a slow one (25 of <= 55; and 25 >= min_count on their own)
        with ThreadPoolExecutor(25) as pool:  # all at once: they finish within ~0.1 s of each other
            assert list(pool.map(nginx.get, [f"/slow/{i}".encode() for i in range(25)])) == [200] * 25
        crossed = time.time()  # the last slow request was answered (and logged) by now
        # The rules see a line before it is indexed: once the slow lines are searchable the alert
        # is at most a delivery away. (The 5 s bound from the write itself is the span test's; here
        # the shipper and the consumer of a loaded machine may take longer than that to read them.)
        await wait_count(es, f"{pipeline.name}-access-*", 55, pipeline)
        [alert], _ = await wait_active(alertmanager_url, rule, 1, pipeline, timeout=5)
        assert alert["labels"]["service_name"] == web
        summary = alert["annotations"]["summary"]
        # nginx's own $request_time of the proxied requests: >= 0.9 s (more on a loaded machine)
        measured = re.match(rf"{re.escape(rule)} on {web}: p90 ([0-9.]+)(ms|s) over \d+ within 6s", summary)
        assert measured is not None, summary
        assert float(measured[1]) * (0.001 if measured[2] == "ms" else 1) >= 0.9 * 0.99, summary
        assert "(threshold 500ms, minimum 20)" in summary
        assert "/slow/" in alert["annotations"]["samples"]  # the slow requests are the samples

        _, resolved = await wait_active(alertmanager_url, rule, 0, pipeline, timeout=40)
        assert resolved - crossed >= 6.0 - 0.6, f"resolved {resolved - crossed:.1f}s after the burst"
    finally:
        nginx.stop()
        await es.close()
        await resolve_all(alertmanager_url, rule)
