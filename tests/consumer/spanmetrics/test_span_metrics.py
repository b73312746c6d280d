"""Span metrics: the connector's dimensions and buckets, the Prometheus spelling, the caps, and counting
only what Elasticsearch accepted (the consume loop on in-memory parts)."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.config import load_consumer_config
from consumer.spanmetrics.config import DEFAULT_BUCKETS
from consumer.spanmetrics.exposition import render
from consumer.spanmetrics.store import OVERFLOW, SpanMetrics
from logpipe.core.config_base import ConfigError
from logpipe.core.envelope import LineRecord
from tests.consumer.memory import LoopStory, config

BOUNDS_MS = [round(b * 1000, 6) for b in DEFAULT_BUCKETS]


def span_doc(service: str, name: str, ms: float, kind: str | None = "server", outcome: str = "success",
             status: str | None = None) -> dict[str, Any]:
    span: dict[str, Any] = {"id": "00f067aa0ba902b7", "name": name}
    if kind:
        span["kind"] = kind
    tags = [{"key": "otel.status_code", "type": "string", "value": status}] if status else []
    return {"service": {"name": service}, "span": span, "tags": tags,
            "event": {"duration": int(ms * 1_000_000), "outcome": outcome}}


def scrape(*stores: SpanMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The ``/metrics`` text of ``stores`` parsed back by Prometheus's own parser: sample name -> (labels, value)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families("".join(render(s) for s in stores)):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_dimensions_and_values_are_the_connectors() -> None:
    m = SpanMetrics(100, 10, BOUNDS_MS)
    m.observe(span_doc("pay", "GET /pay", 3))
    m.observe(span_doc("pay", "GET /pay", 5))
    m.observe(span_doc("pay", "GET /pay", 700, outcome="failure", status="ERROR"))
    m.observe(span_doc("pay", "charge", 1, kind="client", status="OK"))
    m.observe(span_doc("pay", "work", 1, kind=None))

    got = {(s.key, s.calls) for s in m.series()}

    assert got == {
        (("GET /pay", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"), 2),
        (("GET /pay", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR"), 1),
        (("charge", "SPAN_KIND_CLIENT", "STATUS_CODE_OK"), 1),
        (("work", "SPAN_KIND_UNSPECIFIED", "STATUS_CODE_UNSET"), 1),
    }


def test_prometheus_names_labels_and_cumulative_buckets() -> None:
    m = SpanMetrics(100, 10, BOUNDS_MS)
    for ms in (1.0, 2.0, 2.5, 10.0, 12.0, 20_000.0):  # 2.0 and 10.0 are on a bound: in that bucket (le)
        m.observe(span_doc("pay", "GET /pay", ms))

    samples = scrape(m)

    labels = {"service_name": "pay", "span_name": "GET /pay", "span_kind": "SPAN_KIND_SERVER",
              "status_code": "STATUS_CODE_UNSET"}
    assert samples["traces_span_metrics_calls_total"] == [(labels, 6.0)]
    buckets = {s[0]["le"]: s[1] for s in samples["traces_span_metrics_duration_milliseconds_bucket"]}
    assert list(buckets)[:6] == ["2", "4", "6", "8", "10", "50"]  # as the Collector's exporter spells them
    assert (buckets["2"], buckets["4"], buckets["10"], buckets["50"], buckets["15000"], buckets["+Inf"]) == (
        2, 3, 4, 5, 5, 6
    )
    assert samples["traces_span_metrics_duration_milliseconds_count"] == [(labels, 6.0)]
    [(_, total)] = samples["traces_span_metrics_duration_milliseconds_sum"]
    assert total == pytest.approx(20_027.5)


def test_a_flood_of_span_names_stays_within_the_cap_in_series_and_memory() -> None:
    cap = 50
    m = SpanMetrics(cap, 10, BOUNDS_MS)
    docs = [span_doc("pay", f"GET /pay/{i}", 3) for i in range(100_000)]  # built first: not the store's memory
    for d in docs[:cap]:
        m.observe(d)
    m.observe(docs[cap])  # the overflow series exists from here on
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for d in docs[cap + 1 :]:
            m.observe(d)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert m.series_count == cap + 1
    assert grown < 4096, f"the store grew {grown} bytes over 99 949 spans of new names"
    series = {s.key: s for s in m.series()}
    assert series[OVERFLOW].calls == 100_000 - cap
    assert sum(s.calls for s in series.values()) == 100_000
    overflow = [lbl for lbl, _ in scrape(m)["traces_span_metrics_calls_total"] if "otel_metric_overflow" in lbl]
    assert overflow == [{"service_name": "pay", "otel_metric_overflow": "true"}]


def test_services_past_their_cap_share_one_overflow_series_without_a_service() -> None:
    m = SpanMetrics(10, 3, BOUNDS_MS)
    for i in range(1000):
        m.observe(span_doc(f"svc-{i}", "op", 1))

    calls = {tuple(sorted(lbl.items())): v for lbl, v in scrape(m)["traces_span_metrics_calls_total"]}

    assert m.series_count == 4
    assert calls[(("otel_metric_overflow", "true"),)] == 997
    assert sum(calls.values()) == 1000


def test_the_total_cap_sends_new_series_of_every_service_to_its_overflow() -> None:
    m = SpanMetrics(100, 10, BOUNDS_MS, max_total=5)
    for i in range(50):
        m.observe(span_doc(f"svc-{i % 3}", f"op-{i}", 1))

    calls = {tuple(sorted(lbl.items())): v for lbl, v in scrape(m)["traces_span_metrics_calls_total"]}

    assert m.series_count == 5 + 3  # the first 5 series, then one overflow series per service
    assert {k: v for k, v in calls.items() if ("otel_metric_overflow", "true") in k} == {
        (("otel_metric_overflow", "true"), ("service_name", f"svc-{i}")): n for i, n in ((0, 15), (1, 15), (2, 15))
    }
    assert sum(calls.values()) == 50


def test_the_caps_and_buckets_are_validated_naming_the_key(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("span_metrics:\n  max_series_per_service: 0\n")
    with pytest.raises(ConfigError) as exc:
        load_consumer_config(f)
    assert "span_metrics.max_series_per_service" in str(exc.value)

    f.write_text("span_metrics:\n  buckets: [10ms, 5ms]\n")
    with pytest.raises(ConfigError) as exc:
        load_consumer_config(f)
    assert "span_metrics.buckets" in str(exc.value) and "increasing" in str(exc.value)

    f.write_text("span_metrics:\n  buckets: [5ms, 50ms, 1s]\n")
    assert load_consumer_config(f).span_metrics.buckets == (0.005, 0.05, 1.0)


def otlp_line(span_id: str, name: str, ms: int, error: bool = False) -> bytes:
    start = 1_795_744_800_000_000_000
    return orjson.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": span_id, "name": name, "kind": 2,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + ms * 1_000_000),
            "status": {"code": 2 if error else 1},
        }]}],
    }]})


async def test_the_loop_counts_each_span_once_when_elasticsearch_accepted_it() -> None:
    metrics = SpanMetrics(100, 10, BOUNDS_MS)
    env = LoopStory(config(**{"bulk.max_actions": 1}), span_metrics=metrics)
    meta = env.meta("trace")
    lines = [otlp_line("00000000000000a1", "GET /cart", 30), otlp_line("00000000000000a2", "GET /cart", 5, True),
             otlp_line("00000000000000a3", "GET /cart", 7)]
    records = [LineRecord(meta, i * 1000, line, 1_795_744_805_000) for i, line in enumerate(lines)]
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    env.bulk.item_status = {f"{trace}-00000000000000a2": [429], f"{trace}-00000000000000a3": [400]}
    env.produce(("logpipe-trace", 0), records)

    async with env.running():
        await env.until(lambda: len(env.dead.letters) == 1 and len(env.bulk.docs) == 2)
        await env.run_for(1.0)

    calls = {s.key[2]: s.calls for s in metrics.series()}
    assert calls == {"STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 1}  # the 429 counted once, the 400 not at all
