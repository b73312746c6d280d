"""APM spans (type ``trace``): one JSON object per line, normalised to ECS/OpenTelemetry names.

Accepted shapes, told apart by their keys:

* OpenTelemetry JSON: ``traceId``, ``spanId``, ``parentSpanId``, ``name``, ``kind`` (2 or
  ``SPAN_KIND_SERVER``), ``startTimeUnixNano``/``endTimeUnixNano``, ``attributes`` (the OTLP list of
  ``{key, value: {stringValue|intValue|...}}`` or a plain object), ``status: {code, message}``,
  ``resource.attributes`` (for ``service.name``);
* Zipkin v2: ``traceId``, ``id``, ``parentId``, ``name``, ``kind``, ``timestamp`` and ``duration`` in
  microseconds, ``localEndpoint.serviceName``, ``tags`` (``error`` tag = failure);
* Jaeger: ``traceID``, ``spanID``, ``references``, ``operationName``, ``startTime``, ``duration``
  (microseconds), ``tags`` (list of ``{key, value}``), ``process.serviceName``;
* generic: ``trace_id``, ``span_id``, ``parent_id``, ``operation``, ``start``, ``end`` or ``duration``
  (in ``duration_unit``, microseconds by default, as Zipkin and Jaeger write it).

Start times are epoch numbers (unit told by magnitude) or ISO 8601 strings. Output: ``trace.id``,
``span.id``, ``parent.id``, ``span.name``, ``span.kind`` (lower case), ``event.duration`` (ns),
``@timestamp`` (the start), ``event.outcome`` (``success``/``failure``), ``service.name`` (the span's
service, else the Component), ``labels`` (attributes/tags, flat: dots become ``_``, values strings,
bounded like ``extra``), ``error.message`` from the status message of a failed span, and
``http.request.method``/``http.response.status_code`` when the attributes carry them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from logpipe.core.fields import NS_PER_UNIT, Unit
from parsers.document import Draft
from parsers.encoding import loads
from parsers.extra import TRUNCATED, ExtraBuilder, ExtraLimits
from parsers.fieldmap import ns_of
from parsers.result import Parsed, Unparseable
from parsers.timestamps import from_epoch_ns, parse_time

_TRACE_KEYS = ("traceId", "trace_id", "traceID")
_SPAN_KEYS = ("spanId", "span_id", "spanID", "id")
_PARENT_KEYS = ("parentSpanId", "parent_span_id", "parent_id", "parentId", "parentSpanID")
_NAME_KEYS = ("name", "operationName", "operation", "span_name")
_START_KEYS = ("startTimeUnixNano", "start_time_unix_nano", "startTime", "timestamp", "start", "start_time")
_END_KEYS = ("endTimeUnixNano", "end_time_unix_nano", "endTime", "end", "end_time")
_KINDS = {0: None, 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_KIND_NAMES = {"internal", "server", "client", "producer", "consumer"}
_MAX_LONG = (1 << 63) - 1


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = obj.get(k)
        if v not in (None, ""):
            return v
    return None


def _span_id(value: Any) -> str | None:
    """A hex id; OTLP/protobuf-JSON base64 ids (``"AAECAw=="``) are turned into hex."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return format(value, "x")
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        return None
    if value.endswith("=") or (len(value) in (12, 24) and not _is_hex(value)):
        try:
            return base64.b64decode(value, validate=True).hex()
        except (binascii.Error, ValueError):
            return None
    return value.lower() if _is_hex(value) else value


def _is_hex(value: str) -> bool:
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


def _epoch_ns(value: Any) -> int | None:
    """Nanoseconds since the epoch from a number (unit by magnitude), digits, or ISO text."""
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and len(value) <= 20:
            value = int(value)
        else:
            parsed = parse_time(value)
            if parsed is None:
                return None
            return _dt_ns(parsed[0])
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    if value < 1e11:
        return round(value * 1_000_000_000)
    if value < 1e14:
        return round(value * 1_000_000)
    if value < 1e17:
        return round(value * 1_000)
    return int(value)


def _dt_ns(dt: Any) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _kind(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return _KINDS.get(value)
    if isinstance(value, str):
        k = value.lower().removeprefix("span_kind_")
        return k if k in _KIND_NAMES else None
    return None


def _otlp_value(value: Any) -> Any:
    """The plain value of an OTLP ``AnyValue`` (``{"stringValue": "x"}``), else the value itself."""
    if isinstance(value, dict) and len(value) == 1:
        ((k, v),) = value.items()
        if k == "arrayValue" and isinstance(v, dict):
            return [_otlp_value(x) for x in v.get("values") or ()]
        if k == "kvlistValue" and isinstance(v, dict):
            pairs = [kv for kv in v.get("values") or () if isinstance(kv, dict)]
            return {str(kv.get("key")): _otlp_value(kv.get("value")) for kv in pairs}
        if k.endswith("Value"):
            return v
    return value


def _attributes(value: Any) -> dict[str, Any]:
    """Attributes or tags as one dict: from a dict, an OTLP key/value list, or a Jaeger tag list."""
    if isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                out[item["key"]] = _otlp_value(item.get("value"))
    return out


def _resource_service(obj: dict[str, Any]) -> Any:
    resource = obj.get("resource")
    if isinstance(resource, dict):
        return _attributes(resource.get("attributes")).get("service.name")
    for holder in ("localEndpoint", "process"):
        h = obj.get(holder)
        if isinstance(h, dict) and h.get("serviceName"):
            return h["serviceName"]
    return _first(obj, ("serviceName", "service_name", "service"))


def _outcome(obj: dict[str, Any], attrs: dict[str, Any], kind: str | None) -> tuple[str, str | None]:
    """``(success|failure, error message)`` from the OTel status, an error flag/tag, or HTTP status."""
    status = obj.get("status")
    message = None
    if isinstance(status, dict):
        code = status.get("code")
        message = status.get("message") if isinstance(status.get("message"), str) else None
        if code in (2, "STATUS_CODE_ERROR", "ERROR", "error"):
            return "failure", message
        if code in (1, "STATUS_CODE_OK", "OK", "ok"):
            return "success", None
    err = obj.get("error", attrs.get("error"))
    if err is True or (isinstance(err, str) and err.lower() not in ("", "false", "0")):
        return "failure", err if isinstance(err, str) and err.lower() != "true" else message
    http_status = attrs.get("http.response.status_code", attrs.get("http.status_code"))
    try:
        code_num = int(http_status) if http_status is not None else 0
    except (TypeError, ValueError):
        code_num = 0
    if code_num >= 500 or (code_num >= 400 and kind == "client"):
        return "failure", message
    return "success", None


def _parent(obj: dict[str, Any]) -> Any:
    parent = _first(obj, _PARENT_KEYS)
    if parent is None and isinstance(obj.get("references"), list):  # Jaeger
        for ref in obj["references"]:
            if isinstance(ref, dict) and ref.get("refType") in ("CHILD_OF", None):
                return ref.get("spanID")
    return parent


def parse_span(value: bytes, draft: Draft, limits: ExtraLimits, duration_unit: Unit = "us") -> Parsed | Unparseable:
    """One span line as a document; a span without a trace or span id is :class:`Unparseable`."""
    try:
        obj, _ = loads(value, draft)  # bytes that are not UTF-8: replaced and flagged (encoding.py)
    except orjson.JSONDecodeError as exc:
        return Unparseable(f"invalid JSON at position {exc.pos}: {exc.msg}")
    if not isinstance(obj, dict):
        return Unparseable(f"expected a JSON object (one span), got {type(obj).__name__}")
    trace_id = _span_id(_first(obj, _TRACE_KEYS))
    span_id = _span_id(_first(obj, _SPAN_KEYS))
    if trace_id is None or span_id is None:
        return Unparseable("not a span: no trace id (traceId/trace_id) or no span id (spanId/span_id/id)")
    doc = draft.doc
    doc["trace"] = {"id": trace_id}
    span: dict[str, Any] = {"id": span_id}
    doc["span"] = span
    parent = _span_id(_parent(obj))
    if parent is not None and parent.strip("0"):
        doc["parent"] = {"id": parent}
    name = _first(obj, _NAME_KEYS)
    if isinstance(name, str):
        span["name"] = name
    attrs = _attributes(obj.get("attributes", obj.get("tags", obj.get("labels"))))
    kind = _kind(obj.get("kind", obj.get("spanKind", attrs.get("span.kind"))))
    if kind is not None:
        span["kind"] = kind

    start = _epoch_ns(_first(obj, _START_KEYS))
    end = _epoch_ns(_first(obj, _END_KEYS))
    duration: int | None = None
    if start is not None and end is not None and end >= start:
        duration = end - start
    else:
        for key, unit in (
            ("duration_ns", "ns"),
            ("durationNanos", "ns"),
            ("duration_us", "us"),
            ("duration_ms", "ms"),
            ("duration", duration_unit),
        ):
            raw = obj.get(key)
            if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
                ns = ns_of(raw, NS_PER_UNIT[unit])
                duration = ns if ns >= 0 else None
                break
    if duration is not None and duration <= _MAX_LONG:
        draft.put(("event", "duration"), duration)
    start_dt = from_epoch_ns(start) if start is not None else None
    if start_dt is None or not draft.event_time(start_dt):
        draft.fallback_time()

    outcome, error_message = _outcome(obj, attrs, kind)
    draft.put(("event", "outcome"), outcome)
    if error_message:
        draft.put(("error", "message"), error_message[:8191])
    service = _resource_service(obj)
    if isinstance(service, str) and service:
        doc["service"] = {"name": service}
    method = attrs.get("http.request.method", attrs.get("http.method"))
    if isinstance(method, str):
        draft.put(("http", "request", "method"), method)
    http_status = attrs.get("http.response.status_code", attrs.get("http.status_code"))
    if isinstance(http_status, str) and http_status.isdigit() and len(http_status) <= 3:
        http_status = int(http_status)
    if isinstance(http_status, int) and not isinstance(http_status, bool) and 0 <= http_status <= 999:
        draft.put(("http", "response", "status_code"), http_status)
    if attrs:
        labels = ExtraBuilder(ExtraLimits(limits.max_keys, 1, limits.max_value_chars, limits.max_key_chars))
        labels.add_all(attrs.items())
        if labels.obj:
            doc["labels"] = labels.obj
        if labels.truncated:
            draft.flag(TRUNCATED)
    return Parsed(draft.finish(), "trace")
