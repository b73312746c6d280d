"""A span as ONE document that both Jaeger and logpipe's own tools read.

Jaeger's Elasticsearch span model (``traceID``, ``spanID``, ``operationName``, ``references``,
``startTime``/``duration`` in microseconds, ``startTimeMillis``, ``flags``, nested ``tags``,
``logs`` and ``process``) with the ECS fields our tools use beside it (``@timestamp``, ``trace.id``,
``span.*``, ``parent.id``, ``event.duration`` in ns, ``event.outcome``, ``service.name``,
``error.message``, ``http.*``, ``kubernetes.*``, ``log.*``, ``logpipe.*``). Jaeger's reader ignores
keys it does not know and ours ignore Jaeger's, so one write serves both (docs/TRACES.md says why
that beats a second document). It goes to ``<prefix>-jaeger-span-YYYY-MM-DD`` (Jaeger's day
layout), named by the span's identity (``SpanRecord.identity``).

Services: Jaeger lists services and operations from ``<prefix>-jaeger-service-YYYY-MM-DD``
documents ``{serviceName, operationName}``, ``_id`` = FNV-1a 64 of service + operation in hex (the id
Jaeger's own writer gives them), so every writer of a day's pair writes the same document.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from parsers.document import Draft
from parsers.result import Parsed
from parsers.spans.model import SpanRecord, Tag
from parsers.timestamps import from_epoch_ns

_FNV_OFFSET, _FNV_PRIME, _MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1
_HTTP_METHOD = ("http.request.method", "http.method")
_HTTP_STATUS = ("http.response.status_code", "http.status_code")


def fnv1a_64(data: bytes) -> int:
    """FNV-1a, 64 bit (Go's ``hash/fnv.New64a``)."""
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def service_doc_id(service: str, operation: str) -> str:
    """The ``_id`` Jaeger gives a service/operation document: FNV-1a 64 of both, in hex."""
    return format(fnv1a_64(service.encode() + operation.encode()), "x")


def span_index(prefix: str, day: str) -> str:
    return f"{prefix}-jaeger-span-{day}"


def service_index(prefix: str, day: str) -> str:
    return f"{prefix}-jaeger-service-{day}"


def _kv(tags: list[Tag]) -> list[dict[str, Any]]:
    return [{"key": k, "type": t, "value": v} for k, t, v in tags]


def _http(doc: dict[str, Any], tags: list[Tag]) -> None:
    method = status = None
    for k, _, v in tags:
        if k in _HTTP_METHOD and isinstance(v, str):
            method = v
        elif k in _HTTP_STATUS:
            if isinstance(v, str) and v.isdigit() and len(v) <= 3:
                v = int(v)
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 999:
                status = v
    if method is not None or status is not None:
        http: dict[str, Any] = {}
        if method is not None:
            http["request"] = {"method": method}
        if status is not None:
            http["response"] = {"status_code": status}
        doc["http"] = http


def _jaeger_fields(doc: dict[str, Any], rec: SpanRecord) -> None:
    """Jaeger's Elasticsearch span model (``dbmodel.Span``)."""
    doc["traceID"] = rec.trace_id
    doc["spanID"] = rec.span_id
    doc["operationName"] = rec.name
    refs = []
    if rec.parent_id:
        refs.append({"refType": "CHILD_OF", "traceID": rec.trace_id, "spanID": rec.parent_id})
    refs.extend({"refType": "FOLLOWS_FROM", "traceID": t, "spanID": s} for t, s in rec.follows)
    doc["references"] = refs
    doc["flags"] = rec.flags
    doc["startTime"] = rec.start_us
    doc["startTimeMillis"] = rec.start_us // 1000
    doc["duration"] = rec.duration_us
    doc["tags"] = _kv(rec.tags)
    doc["logs"] = [{"timestamp": ts, "fields": _kv(fields)} for ts, fields in rec.logs]
    kv = rec.process_kv
    doc["process"] = {"serviceName": rec.service, "tags": kv if kv is not None else _kv(rec.process_tags)}


def span_document(rec: SpanRecord, draft: Draft) -> tuple[dict[str, Any], str]:
    """The document of ``rec`` (built in ``draft``) and its UTC day ``YYYY-MM-DD``."""
    doc = draft.doc
    start_dt = from_epoch_ns(rec.start_us * 1000) if rec.start_us > 0 else None
    if start_dt is None or not draft.event_time(start_dt):
        draft.fallback_time()
    if rec.start_us <= 0:  # a single-span line without a time: the read time stands in
        rec.start_us = (draft.read_ts_ms or int(time.time() * 1000)) * 1000
    if rec.jaeger_ids:
        _jaeger_fields(doc, rec)
    # ECS beside it
    doc["trace"] = {"id": rec.trace_id}
    span: dict[str, Any] = {"id": rec.span_id, "name": rec.name}
    if rec.kind:
        span["kind"] = rec.kind
    doc["span"] = span
    if rec.parent_id:
        doc["parent"] = {"id": rec.parent_id}
    draft.put(("event", "duration"), rec.duration_ns if rec.duration_ns is not None else rec.duration_us * 1000)
    draft.put(("event", "outcome"), "failure" if rec.error else "success")
    doc["service"] = {"name": rec.service}
    if rec.error_message:
        doc["error"] = {"message": rec.error_message[:8191]}
    _http(doc, rec.tags)
    return draft.finish(), str(doc["@timestamp"])[:10]


class ServiceDocs:
    """The service/operation documents not yet written today by this parser (bounded memory).

    Ids are deterministic, so forgetting one (a full cache, a new replica) only costs a rewrite.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def new(self, prefix: str, day: str, service: str, operation: str) -> Parsed | None:
        """The service document for ``(day, service, operation)`` the first time it is seen."""
        key = (day, service, operation)
        if key in self._seen:
            self._seen.move_to_end(key)
            return None
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        doc = {"serviceName": service, "operationName": operation}
        return Parsed(doc, "trace-service", doc_id=service_doc_id(service, operation), index=service_index(prefix, day))
