"""The ``span_metrics`` section of consumer.yaml: caps and buckets of the span metrics on ``/metrics``."""

from __future__ import annotations

from itertools import pairwise

from pydantic import Field, field_validator

from logpipe.core.config_base import StrictModel
from logpipe.core.durations import Duration

# The spanmetrics connector's default explicit buckets (connector/spanmetricsconnector/config.go), in seconds.
DEFAULT_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0)


class SpanMetricsConfig(StrictModel):
    """Calls and duration histograms per service, span name, kind and status of every indexed span,
    exported on ``/metrics`` as ``traces_span_metrics_calls_total`` and
    ``traces_span_metrics_duration_milliseconds`` (the OpenTelemetry spanmetrics connector's names)."""

    enabled: bool = True
    """Count the spans Elasticsearch accepted and export their metrics."""
    max_series_per_service: int = Field(default=1000, gt=0, le=100_000)
    """Series (span name x kind x status) kept per service; the spans of any further series are
    counted in the service's one overflow series ``otel_metric_overflow="true"`` (the connector's
    ``aggregation_cardinality_limit``), so a flood of distinct span names cannot grow memory."""
    max_services: int = Field(default=200, gt=0, le=100_000)
    """Services kept; the spans of any further service go to one overflow series without a
    ``service_name`` label."""
    max_series: int = Field(default=10_000, gt=0, le=1_000_000)
    """Series kept in all services together (each is 19 samples on ``/metrics``: 10 000 make a scrape
    of ~30 MB); past it, a new series goes to its service's overflow series."""
    buckets: tuple[Duration, ...] = DEFAULT_BUCKETS
    """Upper bounds of the duration histogram (written ``2ms``, ``1s``...; exported in milliseconds)."""

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(b <= 0 for b in v) or any(a >= b for a, b in pairwise(v)):
            raise ValueError("must be positive durations in increasing order — fix: e.g. [5ms, 50ms, 500ms, 5s]")
        return v
