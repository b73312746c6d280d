"""OTLP/JSON: ``{"resourceSpans":[{"resource":…,"scopeSpans":[{"scope":…,"spans":[…]}]}]}`` per line.

As the OpenTelemetry specification writes it to files (the Collector's file exporter, the OTLP File
Exporter) and as protobuf's own JSON mapping writes an ``ExportTraceServiceRequest``: hex or base64
ids, integer or named enums (``2`` / ``SPAN_KIND_SERVER``), 64-bit integers as strings. The mapping
to Jaeger's model is the one the OpenTelemetry Collector's Jaeger translator uses: resource
attributes become process tags, the kind a ``span.kind`` tag, the status ``otel.status_code`` /
``otel.status_description`` (and ``error: true``), the scope ``otel.scope.name`` /
``otel.scope.version``, events become logs (``event`` = the event's name), links FOLLOWS_FROM
references.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from parsers.spans.model import (
    SpanError,
    SpanRecord,
    Tag,
    check,
    obj,
    optional_span_id,
    span_id,
    tag,
    text,
    trace_id,
)

_KINDS = {0: None, 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {
    0: None,
    1: "OK",
    2: "ERROR",
    "STATUS_CODE_UNSET": None,
    "STATUS_CODE_OK": "OK",
    "STATUS_CODE_ERROR": "ERROR",
}


def is_otlp(line: Any) -> bool:
    """Whether a decoded line is an OTLP trace export (``resourceSpans`` at the top)."""
    return isinstance(line, dict) and isinstance(line.get("resourceSpans"), list)


def any_value(value: Any) -> Any:
    """The plain value of an OTLP ``AnyValue`` (``{"intValue": "12"}`` -> 12)."""
    if not isinstance(value, dict) or len(value) != 1:
        return value if not isinstance(value, dict) else None
    ((k, v),) = value.items()
    if k == "stringValue":
        return v
    if k == "intValue":
        try:
            return int(v)
        except (TypeError, ValueError):
            return str(v)
    if k == "doubleValue":
        try:
            return float(v)  # protobuf JSON writes NaN/Infinity as strings
        except (TypeError, ValueError):
            return str(v)
    if k == "boolValue":
        return bool(v)
    if k == "arrayValue" and isinstance(v, dict):
        return [any_value(x) for x in v.get("values") or ()]
    if k == "kvlistValue" and isinstance(v, dict):
        return {str(kv.get("key")): any_value(kv.get("value")) for kv in v.get("values") or () if isinstance(kv, dict)}
    if k == "bytesValue":
        return v
    return None


def attributes(items: Any) -> list[tuple[str, Any]]:
    """An OTLP ``KeyValue`` list as ``(key, plain value)`` pairs (malformed entries skipped)."""
    if not isinstance(items, list):
        return []
    out: list[tuple[str, Any]] = []
    for kv in items:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            value = kv.get("value")
            if isinstance(value, dict) and set(value) == {"bytesValue"}:
                out.append((kv["key"], value["bytesValue"]))
            else:
                out.append((kv["key"], any_value(value)))
    return out


def _tags(pairs: list[tuple[str, Any]]) -> list[Tag]:
    return [tag(k, v) for k, v in pairs if v is not None]


def _nanos(value: Any, what: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value >= 0:
        return int(value)
    raise SpanError(f"{what} is not a count of nanoseconds: {str(value)[:40]!r}")


def _kind(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return _KINDS.get(value)
    if isinstance(value, str):
        k = value.lower().removeprefix("span_kind_")
        return None if k == "unspecified" else k if k in _KINDS.values() else None
    return None


def iter_otlp(request: dict[str, Any]) -> Iterator[SpanRecord | SpanError]:
    """Every span of an export request, in order; an invalid one is its :class:`SpanError`."""
    for rs in request.get("resourceSpans") or ():
        if not isinstance(rs, dict):
            yield SpanError("a resourceSpans entry is not an object")
            continue
        service, process_tags, process_kv = _process(obj(rs.get("resource")).get("attributes"))
        scopes = rs.get("scopeSpans", rs.get("instrumentationLibrarySpans")) or ()
        for ss in scopes:
            if not isinstance(ss, dict):
                yield SpanError("a scopeSpans entry is not an object")
                continue
            scope = ss.get("scope", ss.get("instrumentationLibrary"))
            scope_tags: list[Tag] = []
            if isinstance(scope, dict):
                if scope.get("name"):
                    scope_tags.append(("otel.scope.name", "string", str(scope["name"])))
                if scope.get("version"):
                    scope_tags.append(("otel.scope.version", "string", str(scope["version"])))
                scope_tags.extend(_tags([(f"otel.scope.{k}", v) for k, v in attributes(scope.get("attributes"))]))
            for raw in ss.get("spans") or ():
                try:
                    yield _span(raw, service, process_tags, scope_tags, process_kv)
                except SpanError as exc:
                    yield exc


_Process = tuple[str, list[Tag], list[dict[str, Any]]]
_PROCESSES: dict[bytes, _Process] = {}  # a resource's attributes (as JSON) -> its service and process tags
_MAX_PROCESSES = 1024


def _process(attrs: Any) -> _Process:
    """The service name, process tags and their Jaeger KeyValue documents of a resource. A process
    writes the same resource on every line: cached by the attributes' JSON (~1 µs) instead of
    reading 6-10 attributes per line."""
    key = orjson.dumps(attrs) if isinstance(attrs, list) else b""
    hit = _PROCESSES.get(key)
    if hit is not None:
        return hit
    res_attrs = attributes(attrs)
    service = next((v for k, v in res_attrs if k == "service.name" and isinstance(v, str)), "")
    tags = _tags([(k, v) for k, v in res_attrs if k != "service.name"])
    out = (service, tags, [{"key": k, "type": t, "value": v} for k, t, v in tags])
    if len(_PROCESSES) >= _MAX_PROCESSES:
        _PROCESSES.clear()
    _PROCESSES[key] = out
    return out


def _span(
    raw: Any, service: str, process_tags: list[Tag], scope_tags: list[Tag], process_kv: list[dict[str, Any]] | None
) -> SpanRecord:
    if not isinstance(raw, dict):
        raise SpanError("a span is not an object")
    tid = trace_id(raw.get("traceId"), (32,))
    sid = span_id(raw.get("spanId"))
    start_ns = _nanos(raw.get("startTimeUnixNano"), "startTimeUnixNano")
    end_ns = _nanos(raw.get("endTimeUnixNano"), "endTimeUnixNano")
    if end_ns < start_ns:
        raise SpanError(f"span {sid} ends before it starts")
    kind = _kind(raw.get("kind"))
    tags = _tags(attributes(raw.get("attributes")))
    tags.extend(scope_tags)
    if kind is not None:
        tags.append(("span.kind", "string", kind))
    status = obj(raw.get("status"))
    code = _STATUS.get(status.get("code"))
    message = text(status.get("message")) or None
    error = code == "ERROR"
    if code is not None:
        tags.append(("otel.status_code", "string", code))
    if error:
        tags.append(("error", "bool", True))
        if message:
            tags.append(("otel.status_description", "string", message))
    if isinstance(raw.get("traceState"), str) and raw["traceState"]:
        tags.append(("w3c.tracestate", "string", raw["traceState"]))
    logs = []
    for ev in raw.get("events") or ():
        if not isinstance(ev, dict):
            continue
        fields: list[Tag] = [("event", "string", str(ev.get("name") or ""))]
        fields.extend(_tags(attributes(ev.get("attributes"))))
        logs.append((_nanos(ev.get("timeUnixNano", start_ns), "an event's timeUnixNano") // 1000, fields))
    follows = []
    for link in raw.get("links") or ():
        if isinstance(link, dict):
            follows.append((trace_id(link.get("traceId"), (32,)), span_id(link.get("spanId"))))
    flags = raw.get("flags")
    return check(
        SpanRecord(
            trace_id=tid,
            span_id=sid,
            name=str(raw.get("name") or ""),
            start_us=start_ns // 1000,
            duration_us=end_ns // 1000 - start_ns // 1000,
            duration_ns=end_ns - start_ns,
            service=service,
            parent_id=optional_span_id(raw.get("parentSpanId")),
            kind=kind,
            tags=tags,
            process_tags=process_tags,  # shared by the resource's spans, as process_kv
            logs=logs,
            follows=follows,
            error=error,
            error_message=message if error else None,
            flags=(flags & 0xFF) or 1 if isinstance(flags, int) and not isinstance(flags, bool) else 1,
            process_kv=process_kv,
        )
    )
