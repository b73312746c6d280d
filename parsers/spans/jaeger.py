"""Jaeger JSON: a trace as the Jaeger UI downloads it (``{"data":[{"traceID","spans","processes"}]}``),
and Jaeger's per-span JSON (a span with its ``process`` inline, as Jaeger's Elasticsearch model and
``jaeger-query``'s ``/api/traces`` spans look). Already Jaeger's model: read, checked, kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from parsers.spans.model import SpanError, SpanRecord, Tag, check, obj, span_id, tag, text, trace_id

_TYPES = {"string", "bool", "int64", "float64", "binary"}
# Jaeger writes ids without their leading zeros in places (legacy): any length up to the width.
_TRACE_LENGTHS = tuple(range(1, 33))
_SPAN_LENGTHS = tuple(range(1, 17))


def is_jaeger_download(line: Any) -> bool:
    """``{"data":[{"traceID":…,"spans":[…]}]}``."""
    if not isinstance(line, dict) or not isinstance(line.get("data"), list) or not line["data"]:
        return False
    first = line["data"][0]
    return isinstance(first, dict) and isinstance(first.get("spans"), list)


def is_jaeger_span(line: Any) -> bool:
    """One span in Jaeger's JSON: ``traceID`` + ``spanID`` + ``operationName``."""
    return isinstance(line, dict) and "traceID" in line and "spanID" in line and "operationName" in line


def _kv(items: Any) -> list[Tag]:
    out: list[Tag] = []
    for kv in items if isinstance(items, list) else ():
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            continue
        typ, value = str(kv.get("type") or "").lower(), kv.get("value")
        if typ in _TYPES and isinstance(value, str | bool | int | float):
            out.append((kv["key"], typ, value))
        elif value is not None:
            out.append(tag(kv["key"], value))
    return out


def _micros(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise SpanError(f"{what} is not a count of microseconds: {str(value)[:40]!r}")


def iter_download(download: dict[str, Any]) -> Iterator[SpanRecord | SpanError]:
    """Every span of every trace in a UI download; processes resolved by ``processID``."""
    for trace in download["data"]:
        if not isinstance(trace, dict):
            yield SpanError("a data entry is not a trace object")
            continue
        processes = obj(trace.get("processes"))
        for raw in trace.get("spans") or ():
            try:
                process = raw.get("process") if isinstance(raw, dict) else None
                if process is None and isinstance(raw, dict):
                    process = processes.get(text(raw.get("processID")))
                yield span(raw, process)
            except SpanError as exc:
                yield exc


def span(raw: Any, process: Any = None) -> SpanRecord:
    """One Jaeger JSON span (``process`` from the trace's processes when not inline)."""
    if not isinstance(raw, dict):
        raise SpanError("a span is not an object")
    tid = trace_id(raw.get("traceID"), _TRACE_LENGTHS)
    sid = span_id(raw.get("spanID"), _SPAN_LENGTHS)
    process = process if isinstance(process, dict) else raw.get("process")
    process = process if isinstance(process, dict) else {}
    parent, follows = None, []
    for ref in raw.get("references") or ():
        if not isinstance(ref, dict):
            continue
        ref_tid = trace_id(ref.get("traceID", raw.get("traceID")), _TRACE_LENGTHS)
        ref_sid = span_id(ref.get("spanID"), _SPAN_LENGTHS)
        if ref.get("refType", "CHILD_OF") == "CHILD_OF" and parent is None and ref_tid == tid:
            parent = ref_sid
        else:
            follows.append((ref_tid, ref_sid))
    if parent is None and raw.get("parentSpanID") not in (None, "", "0"):
        parent = span_id(raw["parentSpanID"], _SPAN_LENGTHS)
    tags = _kv(raw.get("tags"))
    kind = next((str(v) for k, _, v in tags if k == "span.kind"), None)
    error = any(k == "error" and v in (True, "true") for k, _, v in tags)
    message = next((str(v) for k, _, v in tags if k in ("otel.status_description", "error.message")), None)
    logs = []
    for entry in raw.get("logs") or ():
        if isinstance(entry, dict):
            logs.append((_micros(entry.get("timestamp"), "a log's timestamp"), _kv(entry.get("fields"))))
    flags = raw.get("flags")
    return check(
        SpanRecord(
            trace_id=tid,
            span_id=sid,
            name=str(raw.get("operationName") or ""),
            start_us=_micros(raw.get("startTime"), "startTime"),
            duration_us=_micros(raw.get("duration", 0), "duration"),
            service=str(process.get("serviceName") or ""),
            parent_id=parent,
            kind=kind,
            tags=tags,
            process_tags=_kv(process.get("tags")),
            logs=logs,
            follows=follows,
            error=error,
            error_message=message if error else None,
            flags=flags if isinstance(flags, int) and not isinstance(flags, bool) and flags >= 0 else 1,
        )
    )
