"""The single-span shapes read before the batch formats: one JSON object per line, told apart by keys.

* OpenTelemetry JSON span with its ``resource`` inline (``traceId``, ``spanId``, ...);
* a Zipkin v2 or Jaeger span without the keys that mark the batch readers' shapes;
* generic: ``trace_id``, ``span_id``, ``parent_id``, ``operation``, ``start``, ``end`` or
  ``duration`` (in ``duration_unit``, microseconds by default).

Start times are epoch numbers (unit told by magnitude) or ISO 8601 strings; ``attributes``,
``tags`` or ``labels`` are an OTLP key/value list, a Jaeger tag list or a plain object. Lenient as
before: a span with no service takes the Component, one with no start time the read time (flagged).
"""

from __future__ import annotations

from typing import Any

from logpipe.core.fields import NS_PER_UNIT, Unit
from parsers.fieldmap import ns_of
from parsers.spans.model import SpanError, SpanRecord, optional_span_id, span_id, tag, trace_id
from parsers.spans.otlp import any_value
from parsers.timestamps import parse_time

_TRACE_KEYS = ("traceId", "trace_id", "traceID")
_SPAN_KEYS = ("spanId", "span_id", "spanID", "id")
_PARENT_KEYS = ("parentSpanId", "parent_span_id", "parent_id", "parentId", "parentSpanID")
_NAME_KEYS = ("name", "operationName", "operation", "span_name")
_START_KEYS = ("startTimeUnixNano", "start_time_unix_nano", "startTime", "timestamp", "start", "start_time")
_END_KEYS = ("endTimeUnixNano", "end_time_unix_nano", "endTime", "end", "end_time")
_KINDS = {0: None, 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_KIND_NAMES = {"internal", "server", "client", "producer", "consumer"}
_ANY_LENGTH = tuple(range(1, 33))


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = obj.get(k)
        if v not in (None, ""):
            return v
    return None


def _epoch_ns(value: Any) -> int | None:
    """Nanoseconds since the epoch from a number (unit by magnitude), digits, or ISO text."""
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and len(value) <= 20:
            value = int(value)
        else:
            parsed = parse_time(value)
            if parsed is None:
                return None
            dt = parsed[0]
            return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    if value < 1e11:
        return round(value * 1_000_000_000)
    if value < 1e14:
        return round(value * 1_000_000)
    if value < 1e17:
        return round(value * 1_000)
    return int(value)


def _kind(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return _KINDS.get(value)
    if isinstance(value, str):
        k = value.lower().removeprefix("span_kind_")
        return k if k in _KIND_NAMES else None
    return None


def _attributes(value: Any) -> dict[str, Any]:
    """Attributes or tags as one dict: from a dict, an OTLP key/value list, or a Jaeger tag list."""
    if isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                v = item.get("value")
                out[item["key"]] = any_value(v) if isinstance(v, dict) else v
    return out


def _service(obj: dict[str, Any]) -> Any:
    resource = obj.get("resource")
    if isinstance(resource, dict):
        return _attributes(resource.get("attributes")).get("service.name")
    for holder in ("localEndpoint", "process"):
        h = obj.get(holder)
        if isinstance(h, dict) and h.get("serviceName"):
            return h["serviceName"]
    return _first(obj, ("serviceName", "service_name", "service"))


def _outcome(obj: dict[str, Any], attrs: dict[str, Any], kind: str | None) -> tuple[bool, str | None]:
    """``(failed, error message)`` from the OTel status, an error flag/tag, or the HTTP status."""
    status = obj.get("status")
    message = None
    if isinstance(status, dict):
        code = status.get("code")
        message = status.get("message") if isinstance(status.get("message"), str) else None
        if code in (2, "STATUS_CODE_ERROR", "ERROR", "error"):
            return True, message
        if code in (1, "STATUS_CODE_OK", "OK", "ok"):
            return False, None
    err = obj.get("error", attrs.get("error"))
    if err is True or (isinstance(err, str) and err.lower() not in ("", "false", "0")):
        return True, err if isinstance(err, str) and err.lower() != "true" else message
    http_status = attrs.get("http.response.status_code", attrs.get("http.status_code"))
    try:
        code_num = int(http_status) if http_status is not None else 0
    except (TypeError, ValueError):
        code_num = 0
    return code_num >= 500 or (code_num >= 400 and kind == "client"), message


def _parent(obj: dict[str, Any]) -> Any:
    parent = _first(obj, _PARENT_KEYS)
    if parent is None and isinstance(obj.get("references"), list):  # Jaeger
        for ref in obj["references"]:
            if isinstance(ref, dict) and ref.get("refType") in ("CHILD_OF", None):
                return ref.get("spanID")
    return parent


def _duration_ns(obj: dict[str, Any], start: int | None, duration_unit: Unit) -> int:
    end = _epoch_ns(_first(obj, _END_KEYS))
    if start is not None and end is not None:
        if end < start:
            raise SpanError("the span ends before it starts")
        return end - start
    for key, unit in (
        ("duration_ns", "ns"),
        ("durationNanos", "ns"),
        ("duration_us", "us"),
        ("duration_ms", "ms"),
        ("duration", duration_unit),
    ):
        raw = obj.get(key)
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
            return max(ns_of(raw, NS_PER_UNIT[unit]), 0)
    return 0


def _opaque(value: Any, optional: bool = False) -> Any:
    """An id that is not hex, kept as the text it is (bounded) for logpipe's own tools."""
    if optional and value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise SpanError("not a span: the trace or span id is not a string of 1 to 128 characters")
    return value


def read_single(obj: dict[str, Any], component: str, duration_unit: Unit) -> SpanRecord:
    """The one span of a line in a single-span shape; :class:`SpanError` without its ids."""
    raw_trace, raw_span = _first(obj, _TRACE_KEYS), _first(obj, _SPAN_KEYS)
    if raw_trace is None or raw_span is None:
        raise SpanError("not a span: no trace id (traceId/trace_id) or no span id (spanId/span_id/id)")
    try:
        tid = trace_id(raw_trace, _ANY_LENGTH)
        sid = span_id(raw_span, _ANY_LENGTH[:16])
        parent = optional_span_id(_parent(obj), _ANY_LENGTH[:16])
        jaeger_ids = True
    except SpanError:
        tid, sid, parent = _opaque(raw_trace), _opaque(raw_span), _opaque(_parent(obj), optional=True)
        jaeger_ids = False
    attrs = _attributes(obj.get("attributes", obj.get("tags", obj.get("labels"))))
    kind = _kind(obj.get("kind", obj.get("spanKind", attrs.get("span.kind"))))
    start = _epoch_ns(_first(obj, _START_KEYS))
    duration = _duration_ns(obj, start, duration_unit)
    failed, message = _outcome(obj, attrs, kind)
    tags = [tag(str(k), v) for k, v in attrs.items() if v is not None and k != "span.kind"]
    if kind is not None:
        tags.append(("span.kind", "string", kind))
    if failed and not any(k == "error" for k, _, _ in tags):
        tags.append(("error", "bool", True))
    service = _service(obj)
    name = _first(obj, _NAME_KEYS)
    return SpanRecord(
        trace_id=tid,
        span_id=sid,
        name=name if isinstance(name, str) else "",
        start_us=start // 1000 if start is not None else 0,  # 0: the document takes the read time
        duration_us=duration // 1000,
        duration_ns=duration,
        service=service if isinstance(service, str) and service else component,
        parent_id=parent,
        kind=kind,
        tags=tags,
        error=failed,
        error_message=message if failed else None,
        jaeger_ids=jaeger_ids,
    )
