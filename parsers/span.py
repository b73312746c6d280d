"""APM spans (type ``trace``): every span of a line, in Jaeger's model with ECS fields beside it.

The shape is detected per line (no configuration): OTLP/JSON export requests
(``parsers/spans/otlp.py``), Zipkin v2 lists or spans (``zipkin.py``), Jaeger UI downloads and
per-span JSON (``jaeger.py``), and the older single-span shapes (``generic.py``). A line with one
span and nothing new to say about its service is a :class:`Parsed`; otherwise a :class:`Many`:
one document per span (an invalid span is an :class:`Unparseable` part with its reason, the
others are kept) plus a service/operation document the first time a pair is seen today.
Documents: ``parsers/spans/document.py``; ids from the span's identity, so a span written twice is
stored once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from logpipe.core.envelope import H_COMPONENT
from logpipe.core.fields import Unit
from parsers.document import DEFAULT_WINDOW, Draft, TimeWindow
from parsers.encoding import INVALID_UTF8, ORIGINAL_FIELD
from parsers.result import Many, Parsed, Unparseable
from parsers.spans import jaeger, otlp, zipkin
from parsers.spans.document import ServiceDocs, span_document, span_index
from parsers.spans.generic import read_single
from parsers.spans.model import SpanError, SpanRecord

MAX_SPANS_PER_LINE = 100_000
"""More spans than this in one line: the rest become one dead letter (a bound on one record's work)."""


def detect(obj: Any) -> Iterable[SpanRecord | SpanError] | None:
    """The reader for a decoded line, as an iterator of spans; None for the single-span shapes."""
    if otlp.is_otlp(obj):
        return otlp.iter_otlp(obj)
    if jaeger.is_jaeger_download(obj):
        return jaeger.iter_download(obj)
    if isinstance(obj, list):
        if zipkin.is_zipkin(obj):
            return zipkin.iter_zipkin(obj)
        return (SpanError("a list of spans, but the first is not a Zipkin v2 span (traceId, id)"),)
    if jaeger.is_jaeger_span(obj) and isinstance(obj.get("process"), dict):
        return (_one(jaeger.span, obj),)
    if zipkin.is_zipkin(obj):
        return zipkin.iter_zipkin(obj)
    return None


def _one(read: Any, obj: Any) -> SpanRecord | SpanError:
    try:
        return read(obj)  # type: ignore[no-any-return]
    except SpanError as exc:
        return exc


def loads_spans(value: bytes) -> tuple[Any, bool]:
    """The decoded line, and whether it was not UTF-8 (then decoded with U+FFFD, ``encoding.py``)."""
    try:
        return orjson.loads(value), False
    except orjson.JSONDecodeError as exc:
        try:
            value.decode()
        except UnicodeDecodeError:
            try:
                return orjson.loads(value.decode("utf-8", "replace")), True
            except orjson.JSONDecodeError:
                raise exc from None
        raise


def _flag_invalid_utf8(parts: list[Parsed | Unparseable], value: bytes) -> None:
    """Every span document of the line is flagged; the original bytes are kept once, in the first
    (not N times: a line of 10 000 spans would otherwise hold its bytes 10 000 times)."""
    first = True
    for part in parts:
        if isinstance(part, Parsed) and part.log_type == "trace":
            lp = part.doc["logpipe"]
            lp["flags"] = [*lp.get("flags", ()), INVALID_UTF8]
            if first:
                lp[ORIGINAL_FIELD] = base64.b64encode(value).decode("ascii")
                first = False


class SpanParser:
    """Turns span lines into documents for ``<prefix>-jaeger-span-*`` (one instance per partition)."""

    def __init__(
        self,
        index_prefix: str = "logpipe",
        duration_unit: Unit = "us",
        window: TimeWindow = DEFAULT_WINDOW,
        service_cache: int = 10_000,
    ) -> None:
        self.prefix = index_prefix
        self.duration_unit: Unit = duration_unit
        self.window = window
        self.services = ServiceDocs(service_cache)

    def parse(self, value: bytes, headers: Mapping[str, str]) -> Parsed | Many | Unparseable:
        try:
            obj, replaced = loads_spans(value)
        except orjson.JSONDecodeError as exc:
            return Unparseable(f"invalid JSON at position {exc.pos}: {exc.msg}")
        spans = detect(obj)
        if spans is None:
            if not isinstance(obj, dict):
                return Unparseable(f"expected a JSON object or list of spans, got {type(obj).__name__}")
            try:
                spans = (read_single(obj, headers.get(H_COMPONENT) or "", self.duration_unit),)
            except SpanError as exc:
                return Unparseable(str(exc))
        parts = list(self._documents(spans, headers))
        if replaced:
            _flag_invalid_utf8(parts, value)
        if len(parts) == 1 and isinstance(parts[0], Parsed | Unparseable):
            return parts[0]
        if not parts:
            return Unparseable("no spans in the line")
        return Many(tuple(parts))

    def _documents(
        self, spans: Iterable[SpanRecord | SpanError], headers: Mapping[str, str]
    ) -> Iterator[Parsed | Unparseable]:
        count = 0
        for rec in spans:
            count += 1
            if count > MAX_SPANS_PER_LINE:
                yield Unparseable(f"more than {MAX_SPANS_PER_LINE} spans in one line: the rest are not stored")
                return
            if isinstance(rec, SpanError):
                yield Unparseable(f"span {count}: {rec}")
                continue
            draft = Draft(headers, "trace", self.window)
            doc, day = span_document(rec, draft)
            if not rec.jaeger_ids:  # ids Jaeger cannot read: for logpipe's tools only
                yield Parsed(doc, "trace", doc_id=rec.identity)
                continue
            yield Parsed(doc, "trace", doc_id=rec.identity, index=span_index(self.prefix, day))
            service = self.services.new(self.prefix, day, rec.service, rec.name)
            if service is not None:
                yield service
