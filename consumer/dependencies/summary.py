"""The trace summary: one document per trace that ``logpipe trace find`` searches (traces, not spans).

Built by the dependency stage from the same merged link records it links (``store.py``), so the
spans of a trace that reached different replicas meet here, and the summary is a pure function of
the set of its spans: a replay or a redelivery gives the same document (and is not even written
again), a late span gives the summary of the fuller set. Which spans the summary still takes is
decided by :func:`accepts` (the ``trace_summaries.horizon``).

The fields (``<prefix>-traces-YYYY.MM.DD``, template in ``templates.py``):

* ``trace_id``; ``start`` / ``start_us`` and ``end``; ``duration_us`` — the root span's duration, or
  first start -> last end when the root has not arrived (or its duration is unknown);
* ``root``: ``service``, ``operation``, ``status`` (HTTP), ``error``, ``span_id`` of the root span —
  and ``arrived``: false when no span without a parent is known; the earliest span whose parent is
  missing then stands in for it (so the table still says where the known part of the trace begins);
* ``services`` and ``operations`` (distinct, sorted; operations capped at :data:`MAX_OPERATIONS`);
* ``spans`` (count; a Zipkin shared client/server pair is two, as Jaeger stores it) and ``errors``;
* ``first_seen`` (when the summary was first written) and ``updated``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from consumer.dependencies.link import SpanLink

MAX_OPERATIONS = 100
"""Distinct operation names kept per trace (a trace naming a span per request id stays small)."""

CONTENT_KEYS = ("trace_id", "start", "start_us", "end", "duration_us", "root", "services", "operations",
                "spans", "errors")
"""The fields that depend on the spans (``first_seen`` and ``updated`` do not): equal ones are not rewritten."""


@lru_cache(maxsize=4096)
def iso_second(epoch_s: int) -> str:
    """``2026-12-02T00:10:00`` (UTC). Cached: a batch's traces and buckets share their seconds, and
    formatting a date costs more than the rest of a summary."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_us(epoch_us: int) -> str:
    """``2026-12-02T00:10:00.123456Z``: Elasticsearch's ``date`` keeps the milliseconds, ``start_us`` the rest."""
    seconds, micros = divmod(epoch_us, 1_000_000)
    return f"{iso_second(seconds)}.{micros:06d}Z"


def merge_links(stored: Iterable[SpanLink], new: Iterable[SpanLink]) -> list[SpanLink]:
    """One record per span (:attr:`SpanLink.identity`), stored order first; a newer record of a span
    replaces its stored one (a richer record from a newer writer), so nothing is counted twice."""
    out: dict[tuple[str, str, str, int], SpanLink] = {}
    for link in stored:
        out[link.identity] = link
    for link in new:
        out[link.identity] = link
    return list(out.values())


def _root(spans: list[SpanLink]) -> tuple[SpanLink, bool]:
    """The root span and True; or, with none, the earliest span whose parent is not in the trace and False."""
    roots = [s for s in spans if not s.refs]
    if roots:
        return min(roots, key=lambda s: (s.start_us, -s.duration_us, s.span_id)), True
    ids = {s.span_id for s in spans}
    tops = [s for s in spans if not any(r in ids for r in s.refs)] or spans
    return min(tops, key=lambda s: (s.start_us, -s.duration_us, s.span_id)), False


def summarize(trace_id: str, links: Iterable[SpanLink]) -> dict[str, Any]:
    """The summary's span-derived fields (:data:`CONTENT_KEYS`) for the spans ``links`` (duplicates allowed)."""
    spans = merge_links((), links)
    if not spans:
        raise ValueError("a trace summary needs at least one span")
    root, arrived = _root(spans)
    timed = [s for s in spans if s.start_us > 0] or spans
    first = min(s.start_us for s in timed)
    last = max(s.end_us for s in timed)
    if arrived and root.duration_us > 0:
        start, duration = root.start_us, root.duration_us
    else:
        start, duration = (root.start_us, last - root.start_us) if arrived else (first, last - first)
    duration = max(duration, 0)
    root_doc: dict[str, Any] = {
        "arrived": arrived,
        "span_id": root.span_id,
        "service": root.service,
        "operation": root.operation,
        "error": root.error,
    }
    if root.status:
        root_doc["status"] = root.status
    operations = sorted({s.operation for s in spans if s.operation})
    return {
        "trace_id": trace_id,
        "start": iso_us(start),
        "start_us": start,
        "end": iso_us(start + duration),
        "duration_us": duration,
        "root": root_doc,
        "services": sorted({s.service for s in spans if s.service}),
        "operations": operations[:MAX_OPERATIONS],
        "spans": len(spans),
        "errors": sum(s.error for s in spans),
    }


def accepts(stored: Mapping[str, Any] | None, now_s: float, horizon_s: float) -> bool:
    """Whether a summary may still change: none stored yet, or first written at most ``horizon_s`` ago.

    Measured from ``first_seen`` (the stage's wall clock when the summary was first written), not from
    span timestamps: a backlog replayed after an outage is summarised in full, while a span arriving
    past the horizon leaves the summary as it was (the dependency graph still takes it)."""
    if stored is None:
        return True
    first_seen = stored.get("first_seen")
    if not isinstance(first_seen, str):
        return True
    try:
        first = datetime.fromisoformat(first_seen.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return True
    return now_s - first <= horizon_s


def unchanged(stored: Mapping[str, Any] | None, content: Mapping[str, Any]) -> bool:
    """True when ``stored`` already says what ``content`` says (a replay: nothing to write)."""
    return stored is not None and all(stored.get(k) == content.get(k) for k in CONTENT_KEYS)


def summary_document(content: Mapping[str, Any], stored: Mapping[str, Any] | None, now_iso: str) -> dict[str, Any]:
    """The document to write: ``content`` with ``first_seen`` kept from ``stored`` and ``updated`` = now."""
    first_seen = stored.get("first_seen") if stored is not None else None
    return {**content, "first_seen": first_seen if isinstance(first_seen, str) else now_iso, "updated": now_iso}
