"""The span metrics as Prometheus text, under the names the spanmetrics connector and its exporter give them.

The connector's default names are ``traces.span.metrics.calls`` (a monotonic sum) and
``traces.span.metrics.duration`` (a histogram, unit ``ms``); the Prometheus exporter spells them
``traces_span_metrics_calls_total`` and ``traces_span_metrics_duration_milliseconds_bucket`` /
``_sum`` / ``_count``, and the dimensions ``service_name``, ``span_name``, ``span_kind``,
``status_code``. An overflow series carries ``otel_metric_overflow="true"`` and no other dimension
but ``service_name`` (the connector keeps the resource's service on it; one ``/metrics`` serves
many services, so it stays a label here).

Written here rather than through ``prometheus_client``'s collectors: a consumer may hold
``span_metrics.max_series`` (10 000) series of 19 samples each, and the client's generic
writer took 1.1 s of CPU (on the event loop) for 6 000 series; this one caches each series' label
text, so a scrape formats numbers only (``bench/span_metrics_bench.py``).
"""

from __future__ import annotations

from consumer.spanmetrics.store import OVERFLOW, Row, SeriesKey, SpanMetrics

CALLS = "traces_span_metrics_calls_total"
DURATION = "traces_span_metrics_duration_milliseconds"
_HEAD = (
    f"# HELP {CALLS} Spans indexed, per service, span name, kind and status (spanmetrics connector names)\n"
    f"# TYPE {CALLS} counter\n"
)
_HIST_HEAD = (
    f"# HELP {DURATION} Duration of the indexed spans in milliseconds (spanmetrics connector names)\n"
    f"# TYPE {DURATION} histogram\n"
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(service: str | None, key: SeriesKey) -> str:
    """``service_name="pay",span_name="GET /pay",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_OK"``."""
    parts = [] if service is None else [f'service_name="{_escape(service)}"']
    if service is None or key == OVERFLOW:
        parts.append('otel_metric_overflow="true"')
    else:
        name, kind, status = key
        parts += [f'span_name="{_escape(name)}"', f'span_kind="{kind}"', f'status_code="{status}"']
    return ",".join(parts)


def le_text(bound: float) -> str:
    """``2``, ``1400``, ``0.5``: the shortest form, as the Collector's Prometheus exporter (Go) writes it."""
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def render(store: SpanMetrics) -> str:
    """Both families in the Prometheus text format (0.0.4), every series, overflow ones included."""
    rows: list[Row] = []
    for service, series in store.services.items():
        for key, row in series.items():
            if row.text is None:
                row.text = label_text(service, key)
            rows.append(row)
    if not rows:
        return ""
    les = [f',le="{le_text(b)}"}} ' for b in store.bounds_ms] + [',le="+Inf"} ']
    out = [_HEAD]
    out += [f"{CALLS}{{{r.text}}} {r.calls}\n" for r in rows]
    out.append(_HIST_HEAD)
    bucket = DURATION + "_bucket{"
    for r in rows:
        cumulative = 0
        for le, n in zip(les, r.counts, strict=True):
            cumulative += n
            out.append(f"{bucket}{r.text}{le}{cumulative}\n")
        out.append(f"{DURATION}_sum{{{r.text}}} {r.sum_ms!r}\n")
        out.append(f"{DURATION}_count{{{r.text}}} {r.calls}\n")
    return "".join(out)
