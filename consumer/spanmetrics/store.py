"""Calls and duration histograms of indexed spans, per service and (span name, kind, status), in bounded memory.

The dimensions and their values are the OpenTelemetry spanmetrics connector's: ``service.name``,
``span.name``, ``span.kind`` (``SPAN_KIND_SERVER``...) and ``status.code`` (``STATUS_CODE_ERROR``...),
durations in milliseconds into explicit buckets (``le`` semantics: a span of exactly 10 ms is in
the 10 ms bucket, as the connector's ``sort.SearchFloat64s`` puts it).

Memory is capped like the connector's ``aggregation_cardinality_limit``, per service: once a service
holds ``max_series`` series, the spans of a new series are counted in that service's overflow
series (all other dimensions dropped, ``otel.metric.overflow=true``); past ``max_services`` services,
in one overflow series without a service; and once ``max_total`` series exist in all, any new
series of any service goes to its service's overflow series. So the number of series — the memory
and the size of a scrape — is at most ``max_total + max_services + 1`` whatever names the spans
carry; names are cut at
``MAX_LABEL`` characters (Jaeger's ``operationName`` mapping indexes no more: ``ignore_above: 256``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_LABEL = 256
KINDS = {
    "server": "SPAN_KIND_SERVER",
    "client": "SPAN_KIND_CLIENT",
    "internal": "SPAN_KIND_INTERNAL",
    "producer": "SPAN_KIND_PRODUCER",
    "consumer": "SPAN_KIND_CONSUMER",
}
UNSPECIFIED = "SPAN_KIND_UNSPECIFIED"
STATUS_ERROR, STATUS_OK, STATUS_UNSET = "STATUS_CODE_ERROR", "STATUS_CODE_OK", "STATUS_CODE_UNSET"

SeriesKey = tuple[str, str, str]
"""(span name, span kind, status code); ``OVERFLOW`` for the overflow series."""
OVERFLOW: SeriesKey = ("", "", "")


@dataclass(frozen=True, slots=True)
class Series:
    """One series as exported: its labels' values (``service`` None: the services' overflow)."""

    service: str | None
    key: SeriesKey
    calls: int
    sum_ms: float
    buckets: Sequence[int]
    """Non-cumulative counts per bound, the last one above every bound (``+Inf``)."""

    @property
    def overflow(self) -> bool:
        return self.key == OVERFLOW or self.service is None


def status_code(doc: Mapping[str, Any]) -> str:
    """``STATUS_CODE_ERROR`` for a failed span, ``_OK`` when the span set OK (OTLP), else ``_UNSET``."""
    event = doc.get("event")
    if isinstance(event, Mapping) and event.get("outcome") == "failure":
        return STATUS_ERROR
    for tag in doc.get("tags") or ():
        if tag.get("key") == "otel.status_code":
            value = tag.get("value")
            return STATUS_OK if value == "OK" else STATUS_ERROR if value == "ERROR" else STATUS_UNSET
    return STATUS_UNSET


class Row:
    """The counters of one series (and its label text, cached by the exposition)."""

    __slots__ = ("calls", "counts", "sum_ms", "text")

    def __init__(self, buckets: int) -> None:
        self.calls = 0
        self.sum_ms = 0.0
        self.counts = [0] * buckets
        self.text: str | None = None


class SpanMetrics:
    """The counters; :meth:`observe` is called once per span Elasticsearch accepted."""

    def __init__(
        self, max_series: int, max_services: int, bounds_ms: Sequence[float], max_total: int | None = None
    ) -> None:
        self.max_series = max_series
        self.max_services = max_services
        self.max_total = max_total if max_total is not None else max_series * max_services
        self._total = 0  # series other than overflow ones
        self.bounds_ms = tuple(bounds_ms)
        # service -> series key -> row; None: the services' overflow
        self.services: dict[str | None, dict[SeriesKey, Row]] = {}

    def observe(self, doc: Mapping[str, Any]) -> None:
        """Count one indexed span document (``parsers/spans/document.py``'s ECS fields)."""
        try:
            service: str | None = doc["service"]["name"]
            span = doc["span"]
            duration_ns = doc["event"]["duration"]
        except (KeyError, TypeError):
            return  # not a span document
        if not isinstance(service, str) or len(service) > MAX_LABEL:
            service = str(service or "")[:MAX_LABEL]
        series = self.services.get(service)
        if series is None:
            if len(self.services) - (None in self.services) >= self.max_services:
                service = None
                series = self.services.setdefault(None, {})
            else:
                series = self.services[service] = {}
        if service is None:
            key = OVERFLOW
        else:
            name = span.get("name")
            if not isinstance(name, str) or len(name) > MAX_LABEL:
                name = str(name or "")[:MAX_LABEL]
            key = (name, KINDS.get(span.get("kind"), UNSPECIFIED), status_code(doc))  # type: ignore[arg-type]
        row = series.get(key)
        if row is None:
            if key != OVERFLOW:
                if len(series) >= self.max_series or self._total >= self.max_total:
                    key = OVERFLOW
                    row = series.get(key)
                else:
                    self._total += 1
            if row is None:
                row = series[key] = Row(len(self.bounds_ms) + 1)
        ms = duration_ns / 1e6 if isinstance(duration_ns, int | float) and duration_ns > 0 else 0.0
        row.calls += 1
        row.sum_ms += ms
        row.counts[bisect_left(self.bounds_ms, ms)] += 1

    def observe_all(self, docs: Iterable[Mapping[str, Any] | None]) -> None:
        for doc in docs:
            if doc is not None:
                self.observe(doc)

    @property
    def series_count(self) -> int:
        return sum(len(s) for s in self.services.values())

    def series(self) -> Iterator[Series]:
        """Every series, overflow ones included (a snapshot: the counts as of now)."""
        for service, rows in self.services.items():
            for key, row in rows.items():
                yield Series(service, key, row.calls, row.sum_ms, tuple(row.counts))
