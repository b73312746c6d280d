"""One span, whatever format it came in: the shape every reader produces and the store writes.

Ids are lowercase hex as Jaeger v2 writes and looks them up (``pcommon.TraceID.String()``): trace
ids always 32 digits (a Zipkin 64-bit id is padded with zeros, so it and its padded spelling name
one trace; Jaeger's ``/api/traces/{id}`` asks for the 32-digit form, or the form with all leading
zeros trimmed, never a 16-digit one), span ids 16. Times are microseconds (Jaeger's unit).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

TagValue = str | bool | int | float
Tag = tuple[str, str, TagValue]
"""``(key, type, value)`` with Jaeger's type names: string, bool, int64, float64, binary."""

KINDS = ("internal", "server", "client", "producer", "consumer")


class SpanError(ValueError):
    """Why one span of a line cannot be stored (the line's other spans still are)."""


@dataclass(slots=True)
class SpanRecord:
    """A span normalised to Jaeger's model (plus what the ECS fields need)."""

    trace_id: str
    span_id: str
    name: str
    start_us: int
    duration_us: int
    service: str
    parent_id: str | None = None
    kind: str | None = None
    tags: list[Tag] = field(default_factory=list)
    process_tags: list[Tag] = field(default_factory=list)
    logs: list[tuple[int, list[Tag]]] = field(default_factory=list)
    """Span events / Zipkin annotations / Jaeger logs: ``(timestamp_us, fields)``."""
    follows: list[tuple[str, str]] = field(default_factory=list)
    """Links (OTLP) / FOLLOWS_FROM references: ``(trace_id, span_id)``."""
    error: bool = False
    error_message: str | None = None
    flags: int = 1
    duration_ns: int | None = None
    """The duration at full precision when the format has it (OTLP); ``event.duration`` uses it."""
    jaeger_ids: bool = True
    """False for an older single-span line whose ids are not hex (``tr-1``): Jaeger cannot read it,
    so it is stored as an ECS document only, in ``<prefix>-trace-YYYY.MM.DD`` (``logpipe trace`` finds it)."""
    shared: bool = False
    """A Zipkin ``shared: true`` server half: same span id as its client half, stored beside it."""
    process_kv: list[dict[str, Any]] | None = None
    """``process_tags`` already as Jaeger's KeyValue documents, shared (never mutated) by the spans of
    one OTLP resource: built once per resource instead of once per span."""

    @property
    def identity(self) -> str:
        """The document ``_id``: the span's identity, so a span written twice is stored once."""
        base = f"{self.trace_id}-{self.span_id}"
        return base + "-shared" if self.shared else base


_HEX = frozenset("0123456789abcdefABCDEF")


def hex_id(value: Any, width: int, *, lengths: tuple[int, ...] = ()) -> str:
    """An id of ``width`` hex digits (32: trace, 16: span) from hex text of one of ``lengths``
    digits (default: exactly ``width``), base64 of ``width // 2`` bytes (protobuf's JSON mapping of
    ``bytes``), or an integer. :class:`SpanError` when it is none of these or all zeros."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 < value < 1 << (width * 4):
            return format(value, f"0{width}x")
        raise SpanError(f"id {value} is out of range for {width * 4} bits")
    if not isinstance(value, str) or not value:
        raise SpanError("missing id")
    if len(value) in (lengths or (width,)) and _HEX.issuperset(value):
        if not value.strip("0"):
            raise SpanError("id is all zeros")
        return value.lower().rjust(width, "0")
    try:
        raw = base64.b64decode(value, validate=True) if len(value) % 4 == 0 else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != width // 2:
        raise SpanError(
            f"id {value[:40]!r} is not {'/'.join(map(str, lengths or (width,)))} hex digits "
            f"(nor base64 of {width // 2} bytes)"
        )
    if not any(raw):
        raise SpanError("id is all zeros")
    return raw.hex()


def trace_id(value: Any, lengths: tuple[int, ...] = (32, 16)) -> str:
    """A trace id as Jaeger v2 stores it: 32 hex digits."""
    return hex_id(value, 32, lengths=lengths)


def span_id(value: Any, lengths: tuple[int, ...] = (16,)) -> str:
    """A span id: 16 hex digits."""
    return hex_id(value, 16, lengths=lengths)


def optional_span_id(value: Any, lengths: tuple[int, ...] = (16,)) -> str | None:
    """A parent id; None when absent, empty or all zeros (a root span)."""
    if value in (None, "", 0) or value == "AAAAAAAAAAA=" or (isinstance(value, str) and not value.strip("0")):
        return None
    return span_id(value, lengths)


def tag(key: str, value: Any) -> Tag:
    """A typed Jaeger tag from a plain value (lists and objects become JSON text)."""
    if isinstance(value, bool):
        return (key, "bool", value)
    if isinstance(value, int):
        return (key, "int64", value) if -(1 << 63) <= value < 1 << 63 else (key, "string", str(value))
    if isinstance(value, float):
        return (key, "float64", value)
    if isinstance(value, str):
        return (key, "string", value)
    return (key, "string", orjson.dumps(value, default=str).decode())


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (absent or malformed parts)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


def check(rec: SpanRecord) -> SpanRecord:
    """Reject what Jaeger could not show: no service, no name, a negative duration."""
    if not rec.service:
        raise SpanError(f"span {rec.span_id} has no service name")
    if rec.duration_us < 0:
        raise SpanError(f"span {rec.span_id} ends before it starts")
    if rec.start_us <= 0:
        raise SpanError(f"span {rec.span_id} has no start time")
    return rec
