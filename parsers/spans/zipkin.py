"""Zipkin v2 JSON: a list of spans per line (the body of ``POST /api/v2/spans``), or one span.

Mapped to Jaeger's model as Jaeger's own Zipkin receiver does: ``localEndpoint.serviceName`` is the
process, ``kind`` a ``span.kind`` tag, ``remoteEndpoint`` ``peer.*`` tags, annotations become logs
(``event`` = the annotation), an ``error`` tag marks the span failed. A ``shared: true`` server span
carries its client's span id: it is a span of its own, stored beside the client half (its ``_id``
says ``shared``), and Jaeger's query tells the two apart when it reads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def is_zipkin_span(value: Any) -> bool:
    """Whether a decoded object looks like one Zipkin v2 span (``traceId`` + ``id``)."""
    return isinstance(value, dict) and "traceId" in value and "id" in value and "spanId" not in value


def is_zipkin(line: Any) -> bool:
    """A list of Zipkin spans, or one with its ``localEndpoint`` (one without takes the lenient
    single-span path, ``generic.py``, where the Component stands in for the service)."""
    if isinstance(line, list):
        return bool(line) and is_zipkin_span(line[0])
    return is_zipkin_span(line) and isinstance(line.get("localEndpoint"), dict)


def _micros(value: Any, what: str, span: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise SpanError(f"span {span}: {what} is not a count of microseconds: {str(value)[:40]!r}")


def _endpoint_tags(ep: Any, prefix: str) -> list[Tag]:
    if not isinstance(ep, dict):
        return []
    out: list[Tag] = []
    for key, name in (("ipv4", "ipv4"), ("ipv6", "ipv6")):
        if isinstance(ep.get(key), str):
            out.append((f"{prefix}.{name}" if prefix else "ip", "string", ep[key]))
    if isinstance(ep.get("port"), int) and prefix:
        out.append((f"{prefix}.port", "int64", ep["port"]))
    return out


def iter_zipkin(line: Any) -> Iterator[SpanRecord | SpanError]:
    """Every span of a Zipkin list (or the one span), in order; an invalid one is its error."""
    for raw in line if isinstance(line, list) else (line,):
        try:
            yield _span(raw)
        except SpanError as exc:
            yield exc


def _span(raw: Any) -> SpanRecord:
    if not isinstance(raw, dict):
        raise SpanError("a Zipkin span is not an object")
    tid = trace_id(raw.get("traceId"))
    sid = span_id(raw.get("id"))
    start = _micros(raw.get("timestamp"), "timestamp", sid)
    duration = _micros(raw.get("duration", 0), "duration", sid)
    local = obj(raw.get("localEndpoint"))
    service = text(local.get("serviceName"))
    kind = text(raw.get("kind")).lower() or None
    tags: list[Tag] = []
    error, message = False, None
    for k, v in obj(raw.get("tags")).items():
        if k == "error":
            error = True
            said = str(v)
            message = said if said and said.lower() != "true" else None
            tags.append(("error", "bool", True))
            if message:
                tags.append(("error.message", "string", message))
        else:
            tags.append(tag(str(k), v if isinstance(v, str) else str(v)))
    if kind in ("client", "server", "producer", "consumer"):
        tags.append(("span.kind", "string", kind))
    remote = raw.get("remoteEndpoint")
    if isinstance(remote, dict) and isinstance(remote.get("serviceName"), str):
        tags.append(("peer.service", "string", remote["serviceName"]))
    tags.extend(_endpoint_tags(remote, "peer"))
    logs = []
    for ann in raw.get("annotations") or ():
        if isinstance(ann, dict) and isinstance(ann.get("value"), str):
            ts = _micros(ann.get("timestamp", start), "an annotation's timestamp", sid)
            logs.append((ts, [("event", "string", ann["value"])]))
    shared = raw.get("shared") is True
    return check(
        SpanRecord(
            trace_id=tid,
            span_id=sid,
            name=str(raw.get("name") or ""),
            start_us=start,
            duration_us=duration,
            service=service,
            parent_id=optional_span_id(raw.get("parentId")),
            kind=kind if kind in ("client", "server", "producer", "consumer") else None,
            tags=tags,
            process_tags=_endpoint_tags(local, ""),
            logs=logs,
            error=error,
            error_message=message,
            flags=3 if raw.get("debug") is True else 1,
            shared=shared and kind == "server",
        )
    )
