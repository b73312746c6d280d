"""The span metrics on ``/metrics``, named and labelled as the spanmetrics connector + Prometheus exporter write them.

The connector's default names are ``traces.span.metrics.calls`` (a monotonic sum) and
``traces.span.metrics.duration`` (a histogram, unit ``ms``); the Prometheus exporter spells them
``traces_span_metrics_calls_total`` and ``traces_span_metrics_duration_milliseconds_bucket`` /
``_sum`` / ``_count``, and the dimensions ``service_name``, ``span_name``, ``span_kind``,
``status_code``. An overflow series carries ``otel_metric_overflow="true"`` and no other dimension
but ``service_name`` (the connector keeps the resource's service on it; one ``/metrics`` serves
many services, so it stays a label here).

One collector is registered in the default registry at import; each consumer adds its
:class:`SpanMetrics` (a process normally has one; the series of several are summed).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from consumer.spanmetrics.store import Series, SpanMetrics

CALLS = "traces_span_metrics_calls"
DURATION = "traces_span_metrics_duration_milliseconds"


def _labels(s: Series) -> dict[str, str]:
    labels: dict[str, str] = {} if s.service is None else {"service_name": s.service}
    if s.overflow:
        labels["otel_metric_overflow"] = "true"
    else:
        labels["span_name"], labels["span_kind"], labels["status_code"] = s.key
    return labels


def _le(bound: float) -> str:
    """``2``, ``1400``, ``0.5``: the shortest form, as the Collector's Prometheus exporter (Go) writes it."""
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def families(stores: list[SpanMetrics]) -> list[Metric]:
    """The two metric families of ``stores`` (series of the same labels summed)."""
    merged: dict[tuple[tuple[str, str], ...], tuple[tuple[float, ...], list[float]]] = {}
    for store in stores:
        for s in store.series():
            labels = tuple(sorted(_labels(s).items()))
            got = merged.get(labels)
            if got is None:
                merged[labels] = (store.bounds_ms, [s.calls, s.sum_ms, *s.buckets])
            elif got[0] == store.bounds_ms:  # other bounds cannot be summed: the first store's wins
                for i, v in enumerate((s.calls, s.sum_ms, *s.buckets)):
                    got[1][i] += v
    calls = Metric(CALLS, "Spans indexed, per service, span name, kind and status (spanmetrics connector names)",
                   "counter")
    duration = Metric(DURATION, "Duration of the indexed spans in milliseconds (spanmetrics connector names)",
                      "histogram")
    for labels, (bounds, row) in merged.items():
        base = dict(labels)
        calls.samples.append(Sample(CALLS + "_total", base, row[0]))
        cumulative = 0.0
        for bound, n in zip((*bounds, float("inf")), row[2:], strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else _le(bound)
            duration.samples.append(Sample(DURATION + "_bucket", {**base, "le": le}, cumulative))
        duration.samples.append(Sample(DURATION + "_sum", base, row[1]))
        duration.samples.append(Sample(DURATION + "_count", base, row[0]))
    return [calls, duration]


class SpanMetricsCollector(Collector):
    """Collects the span metrics of every live :class:`SpanMetrics` added to it."""

    def __init__(self) -> None:
        self._stores: weakref.WeakSet[SpanMetrics] = weakref.WeakSet()

    def add(self, store: SpanMetrics) -> None:
        self._stores.add(store)

    def discard(self, store: SpanMetrics) -> None:
        self._stores.discard(store)

    def describe(self) -> list[Metric]:
        return []  # no fixed series to check for duplicates at registration

    def collect(self) -> Iterator[Metric]:
        stores = list(self._stores)
        if stores:
            yield from families(stores)


COLLECTOR = SpanMetricsCollector()
REGISTRY.register(COLLECTOR)
