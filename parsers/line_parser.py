"""The one entry point of the consumer: a Kafka record's value and headers -> a parse result."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from logpipe.core.envelope import H_FILE_ID, H_FORMAT, H_OFFSET, H_TYPE
from logpipe.core.fields import FieldMappingConfig, Unit
from parsers.access import parse_access
from parsers.app import parse_app
from parsers.cri import Reassembler
from parsers.document import DEFAULT_WINDOW, Draft, TimeWindow
from parsers.extra import ExtraLimits
from parsers.fieldmap import FieldMap
from parsers.result import Parsed, ParseResult, Unparseable
from parsers.span import SpanParser


class LineParser:
    """Parses records of every log type; holds the CRI fragments waiting for their end.

    ``max_partial_bytes`` bounds one reassembled CRI line, ``max_buffered_bytes`` all fragments held
    (over every file); ``extra_limits`` bounds ``extra``/``labels``; ``span_duration_unit`` is the
    unit of a span's bare ``duration`` key (Zipkin and Jaeger write microseconds); ``index_prefix``
    names the span and service indices (``<prefix>-jaeger-span-YYYY-MM-DD``); ``time_window``
    says how far from the read time an event's own time is trusted (see :class:`TimeWindow`).

    Not thread-safe: one instance per consumer task. ``parse`` never raises, whatever the bytes and
    headers: what cannot become a document is :class:`Unparseable` with the reason.
    """

    def __init__(
        self,
        mapping: FieldMappingConfig | None = None,
        *,
        max_partial_bytes: int = 1 << 20,
        max_buffered_bytes: int = 64 << 20,
        extra_limits: ExtraLimits | None = None,
        span_duration_unit: Unit = "us",
        index_prefix: str = "logpipe",
        time_window: TimeWindow = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = extra_limits or ExtraLimits()
        self.fieldmap = FieldMap(mapping, self.limits)
        self.span_duration_unit: Unit = span_duration_unit
        self.window = time_window
        self.spans = SpanParser(index_prefix, span_duration_unit, time_window)
        self.cri = Reassembler(self.fieldmap, max_partial_bytes, clock, max_buffered_bytes, time_window)

    def parse(self, value: bytes, headers: Mapping[str, str]) -> ParseResult:
        """One record; dispatches on ``headers["lp.type"]`` (access | app | stdout | trace)."""
        try:
            log_type = headers.get(H_TYPE)
            if log_type == "trace":  # one line may hold many spans: a draft per span
                return self.spans.parse(value, headers)
            draft = Draft(headers, log_type or "", self.window)
            if log_type == "access":
                return parse_access(value, draft, self.fieldmap, headers.get(H_FORMAT))
            if log_type == "stdout":
                return self.cri.parse(value, headers, draft)
            if log_type == "app":
                return parse_app(value, draft, self.fieldmap)
            if log_type is None:
                return Unparseable(f"no {H_TYPE} header: the record was not written by the shipper")
            return Unparseable(f"unknown log type {log_type[:32]!r} in header {H_TYPE}")
        except Exception as exc:  # the contract: a bad record never stops the consumer
            where = f"{headers.get(H_FILE_ID, '?')}@{headers.get(H_OFFSET, '?')}"
            return Unparseable(f"parser error on {where}: {type(exc).__name__}: {exc}"[:1000])

    def expire(self, older_than_s: float) -> list[Parsed]:
        """CRI lines whose final fragment has not come for ``older_than_s`` seconds, flagged
        ``partial_incomplete``; each ``absorbed`` counts all of its (earlier) fragment records."""
        return self.cri.expire(older_than_s)

    def clear(self) -> None:
        """Drop the buffered CRI fragments (after a rebalance their records are read again)."""
        self.cri.clear()

    @property
    def pending_fragments(self) -> int:
        """How many (file, stream) lines are waiting for their final fragment."""
        return len(self.cri.pending)
