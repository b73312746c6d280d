"""The link record: what the dependency stage needs to know about one span, and nothing more.

Spans of one trace arrive on different partitions of the span topic (the record key is the
Component), so at different consumer replicas. Each replica therefore produces, per span it
indexes, one compact link record to the links topic, keyed by the trace id: all links of a trace
then meet in one partition, owned by one replica's dependency stage (``consumer/dependencies/stage.py``).

Wire format: a JSON object with short keys (``t`` trace id, ``s`` span id, ``r`` referenced parent
span ids, ``v`` service, ``k`` kind, ``e`` error, ``ts`` start in microseconds, ``p`` peer service),
and, for the trace summary (``consumer/dependencies/summary.py``), ``o`` operation name, ``d`` duration
in microseconds and ``h`` HTTP status; about 150 bytes a span. A record without ``o``/``d``/``h`` (written
before they existed) is still read: its span counts in the summary with an unknown name, duration and status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

import orjson

KINDS = frozenset({"client", "server", "producer", "consumer", "internal"})


@dataclass(frozen=True, slots=True)
class SpanLink:
    """One span as the dependency linker sees it."""

    trace_id: str
    span_id: str
    refs: tuple[str, ...] = ()
    """Span ids this span references in its own trace (its parent first; Jaeger's ``references``)."""
    service: str = ""
    """The span's service (``""``: unknown — such a span makes no dependency of its own)."""
    kind: str = ""
    """``client``, ``server``, ``producer``, ``consumer``, ``internal`` or ``""``."""
    error: bool = False
    start_us: int = 0
    """Start, microseconds since the epoch (the dependency's time bucket)."""
    peer: str = ""
    """The peer-service tag's value (a call to an uninstrumented service), else ``""``."""
    operation: str = ""
    """The span's name (Jaeger's ``operationName``), ``""`` unknown."""
    duration_us: int = 0
    status: int = 0
    """The span's HTTP response status, 0 when it has none."""

    @property
    def identity(self) -> tuple[str, str, str, int]:
        """What makes two records the same span (the shared halves of a Zipkin RPC differ in kind):
        a record read again with more fields (a newer writer) replaces the one stored, never adds a span."""
        return (self.span_id, self.kind, self.service, self.start_us)

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    def encode(self) -> bytes:
        return orjson.dumps(self.wire())

    def wire(self) -> dict[str, Any]:
        """The record as the JSON object :meth:`encode` writes (the store embeds it as it is)."""
        obj: dict[str, Any] = {"t": self.trace_id, "s": self.span_id, "ts": self.start_us}
        if self.refs:
            obj["r"] = list(self.refs)
        if self.service:
            obj["v"] = self.service
        if self.kind:
            obj["k"] = self.kind
        if self.error:
            obj["e"] = 1
        if self.peer:
            obj["p"] = self.peer
        if self.operation:
            obj["o"] = self.operation
        if self.duration_us:
            obj["d"] = self.duration_us
        if self.status:
            obj["h"] = self.status
        return obj


class BadLink(ValueError):
    """A links-topic record that is not a link record (it is skipped and counted, never retried)."""


def decode_link(value: bytes) -> SpanLink:
    """The :class:`SpanLink` in ``value``; raises :class:`BadLink` naming what is wrong."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadLink(f"invalid JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise BadLink("expected a JSON object")
    trace_id, span_id, start = obj.get("t"), obj.get("s"), obj.get("ts", 0)
    if not isinstance(trace_id, str) or not trace_id or not isinstance(span_id, str) or not span_id:
        raise BadLink("no trace id (t) or span id (s)")
    refs = obj.get("r") or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise BadLink("refs (r) must be a list of span ids")
    if not isinstance(start, int) or isinstance(start, bool):
        raise BadLink("start (ts) must be an integer")
    kind = obj.get("k", "")
    duration, status = obj.get("d", 0), obj.get("h", 0)
    if not _is_int(duration) or duration < 0 or not _is_int(status):
        raise BadLink("duration (d) and status (h) must be non-negative integers")
    return SpanLink(
        trace_id=trace_id,
        span_id=span_id,
        refs=tuple(refs),
        service=str(obj.get("v") or ""),
        kind=kind if kind in KINDS else "",
        error=bool(obj.get("e")),
        start_us=start,
        peer=str(obj.get("p") or ""),
        operation=str(obj.get("o") or ""),
        duration_us=duration,
        status=status,
    )


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _http_status(doc: dict[str, Any]) -> int:
    status = _dig(doc, "http", "response", "status_code")  # the parsers' ECS field (span documents)
    return status if _is_int(status) and 0 < status <= 999 else 0


def _ecs_duration_us(doc: dict[str, Any]) -> int:
    ns = _dig(doc, "event", "duration")
    return ns // 1000 if _is_int(ns) and ns > 0 else 0


def _dig(doc: dict[str, Any], *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def link_from_document(doc: dict[str, Any], peer_tag: str = "") -> SpanLink | None:
    """The link of an indexed span document, or None if it is not a span.

    Reads both shapes a span document has had: Jaeger's Elasticsearch model (``traceID``,
    ``spanID``, ``references``, ``process.serviceName``, ``tags`` as ``{key, value}``, ``startTime``
    in microseconds) and the ECS one (``trace.id``, ``span.id``, ``parent.id``, ``service.name``,
    ``span.kind``, ``event.outcome``, ``labels``).
    """
    if isinstance(doc.get("traceID"), str) and isinstance(doc.get("spanID"), str):
        return _from_jaeger(doc, peer_tag)
    trace_id, span_id = _dig(doc, "trace", "id"), _dig(doc, "span", "id")
    if not isinstance(trace_id, str) or not isinstance(span_id, str):
        return None
    parent = _dig(doc, "parent", "id")
    labels = doc.get("labels") if isinstance(doc.get("labels"), dict) else {}
    start_us = 0
    ts = doc.get("@timestamp")
    if isinstance(ts, str):
        try:
            start_us = int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1_000_000)
        except ValueError:
            start_us = 0
    kind = _dig(doc, "span", "kind")
    peer = labels.get(peer_tag.replace(".", "_")) if peer_tag and labels else None
    return SpanLink(
        trace_id=trace_id,
        span_id=span_id,
        refs=(parent,) if isinstance(parent, str) and parent else (),
        service=str(_dig(doc, "service", "name") or ""),
        kind=kind if kind in KINDS else "",
        error=_dig(doc, "event", "outcome") == "failure",
        start_us=start_us,
        peer=peer if isinstance(peer, str) else "",
        operation=str(_dig(doc, "span", "name") or ""),
        duration_us=_ecs_duration_us(doc),
        status=_http_status(doc),
    )


def _from_jaeger(doc: dict[str, Any], peer_tag: str) -> SpanLink:
    trace_id: str = doc["traceID"]
    refs: list[str] = []
    for ref in doc.get("references") or ():
        if isinstance(ref, dict) and isinstance(ref.get("spanID"), str):
            if ref.get("traceID") in (None, trace_id):  # spark joins within one trace only
                refs.append(ref["spanID"])
    parent = doc.get("parentSpanID")
    if isinstance(parent, str) and parent.strip("0") and parent not in refs:
        refs.insert(0, parent)
    tags: dict[str, Any] = {}
    for tag in doc.get("tags") or ():
        if isinstance(tag, dict) and isinstance(tag.get("key"), str):
            tags[tag["key"]] = tag.get("value")
    for key, value in (doc.get("tag") or {}).items() if isinstance(doc.get("tag"), dict) else ():
        tags.setdefault(key.replace("@", "."), value)  # Jaeger's tags_as_fields shape
    kind = str(tags.get("span.kind") or "")
    err = tags.get("error")
    start, duration = doc.get("startTime"), doc.get("duration")
    peer = tags.get(peer_tag) if peer_tag else None
    return SpanLink(
        trace_id=trace_id,
        span_id=doc["spanID"],
        refs=tuple(refs),
        service=str(_dig(doc, "process", "serviceName") or ""),
        kind=kind if kind in KINDS else "",
        error=err is True or (isinstance(err, str) and err.lower() == "true"),
        start_us=start if _is_int(start) else 0,
        peer=str(peer) if peer not in (None, "") else "",
        operation=str(doc.get("operationName") or ""),
        duration_us=duration if _is_int(duration) and duration > 0 else _ecs_duration_us(doc),
        status=_http_status(doc) or _tag_status(tags),
    )


def _tag_status(tags: dict[str, Any]) -> int:
    for key in ("http.response.status_code", "http.status_code"):
        v = tags.get(key)
        if isinstance(v, str) and v.isdigit() and len(v) <= 3:
            v = int(v)
        if _is_int(v) and 0 < v <= 999:
            return int(v)
    return 0
