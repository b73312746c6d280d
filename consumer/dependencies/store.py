"""Where a trace's calls are kept, and how Jaeger's dependency documents are rebuilt from them.

Two steps, both idempotent, so a replay or a redelivery never counts a call twice:

1. :meth:`DependencyStore.write_traces` — per flushed trace, one document ``_id = trace id`` in
   ``<prefix>-tracedeps-<day>`` holding every link seen for that trace so far (the stored ones
   merged with the new ones, read back with a realtime ``_mget``) and the calls the linker
   (``consumer/dependencies/linker.py``) derives from all of them, per (parent, child, bucket).
   A replayed link merges into the set it is already in; a late span is linked against the spans
   stored before it; a call that a fuller trace no longer implies disappears with the rewrite.
2. :meth:`DependencyStore.rollup` — per (link partition, time bucket) touched, the calls of the
   partition's traces in that bucket are summed by Elasticsearch (nested aggregation) and written
   as one Jaeger document ``_id = <bucket>/<partition>`` in ``<prefix>-jaeger-dependencies-<day>``,
   ``timestamp`` = the bucket's start. Only the partition's owner writes it; Jaeger's
   ``/api/dependencies`` sums the documents of a window by (parent, child).

A trace is looked up in the index of its earliest known span's day and the day before (a late
span of a trace that began before midnight).

With summaries on, step 1 also writes the trace's summary (``summary.py``) to
``<prefix>-traces-<day>`` (the day of its ``tracedeps`` document), ``_id`` = trace id, in the same
bulk: from the same merged spans, read back with the same ``_mget``; not rewritten when a replay
changes nothing, and left as it is once ``horizon`` has passed since it was first written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from elasticsearch import AsyncElasticsearch

from consumer.dependencies.join import TraceFlush
from consumer.dependencies.link import BadLink, SpanLink, decode_link
from consumer.dependencies.linker import trace_edges
from consumer.dependencies.summary import (
    accepts,
    iso_second,
    merge_links,
    summarize,
    summary_document,
    unchanged,
)

Bucket = tuple[int, int]
"""(link partition, bucket start in epoch seconds)."""


class StoreError(RuntimeError):
    """Elasticsearch refused part of a write; the stage retries the whole step (it is idempotent)."""


def _day(epoch_s: float, sep: str) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime(f"%Y{sep}%m{sep}%d")


def _iso(epoch_s: float) -> str:
    return iso_second(int(epoch_s)) + "Z"


def _epoch_of(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


@dataclass(frozen=True, slots=True)
class WriteResult:
    traces: int
    calls: int
    buckets: set[Bucket]
    summaries: int = 0
    """Trace summaries written (new or changed)."""
    summaries_final: int = 0
    """Traces whose summary took no more spans: first written longer than the horizon ago."""


@dataclass(frozen=True, slots=True)
class _Stored:
    index: str
    links: list[SpanLink]
    buckets: list[int]
    partition: int


class DependencyStore:
    """Writes trace documents and Jaeger dependency documents for one ``prefix``."""

    def __init__(
        self, es: AsyncElasticsearch, prefix: str, bucket_s: int, now: Any = None,
        summary_horizon: float | None = None,
    ) -> None:
        """``summary_horizon``: seconds a trace summary keeps taking spans; None writes no summaries."""
        self.es = es
        self.prefix = prefix
        self.bucket_s = bucket_s
        self.summary_horizon = summary_horizon
        self._now = now or (lambda: datetime.now(UTC).timestamp())

    def traces_index(self, epoch_s: float) -> str:
        return f"{self.prefix}-tracedeps-{_day(epoch_s, '.')}"

    def summary_index_of(self, traces_index: str) -> str:
        """``<prefix>-traces-<day>`` beside the ``<prefix>-tracedeps-<day>`` document of the trace."""
        return f"{self.prefix}-traces-{traces_index[len(self.prefix) + len('-tracedeps-'):]}"

    def dependencies_index(self, epoch_s: float) -> str:
        return f"{self.prefix}-jaeger-dependencies-{_day(epoch_s, '-')}"

    def bucket_of(self, start_us: int) -> int:
        secs = start_us // 1_000_000 if start_us > 0 else int(self._now())
        return secs - secs % self.bucket_s

    # --- step 1: trace documents ---------------------------------------------------------

    async def write_traces(self, flushes: Sequence[TraceFlush]) -> WriteResult:
        """Merge ``flushes`` into their stored traces, relink, write; the buckets whose sums changed."""
        if not flushes:
            return WriteResult(0, 0, set())
        merged: dict[str, TraceFlush] = {}
        for f in flushes:  # one trace flushed twice in a batch (evicted, then late): one document
            prev = merged.get(f.trace_id)
            joined = f.links if prev is None else tuple(dict.fromkeys((*prev.links, *f.links)))
            merged[f.trace_id] = TraceFlush(f.trace_id, f.partition, joined, ())
        stored, summaries = await self._load(merged.values())
        lines: list[bytes] = []
        buckets: set[Bucket] = set()
        calls = written_summaries = final = 0
        now = self._now()
        for trace_id, flush in merged.items():
            old = stored.get(trace_id)
            links = merge_links(old.links if old else (), flush.links)  # stored first: stable order
            per_bucket: dict[tuple[str, str, int], list[int]] = {}
            for edge in trace_edges(links):
                counts = per_bucket.setdefault((edge.parent, edge.child, self.bucket_of(edge.start_us)), [0, 0])
                counts[0] += 1
                counts[1] += int(edge.error)
                calls += 1
            new_buckets = {b for (_, _, b) in per_bucket}
            buckets.update((flush.partition, b) for b in new_buckets)
            if old is not None:
                buckets.update((old.partition, b) for b in old.buckets)  # calls may have left a bucket, or a partition
            starts = [link.start_us for link in links if link.start_us > 0]
            start_s = min(starts) / 1_000_000 if starts else now
            index = old.index if old is not None else self.traces_index(start_s)
            doc = {
                "trace_id": trace_id,
                "partition": flush.partition,
                "updated": _iso(now),
                "start": _iso(start_s),
                "buckets": [_iso(b) for b in sorted(new_buckets)],
                "spans": [link.wire() for link in links],
                "edges": [
                    {"parent": p, "child": c, "bucket": _iso(b), "calls": n, "errors": e}
                    for (p, c, b), (n, e) in per_bucket.items()
                ],
            }
            lines.append(orjson.dumps({"index": {"_index": index, "_id": trace_id}}))
            lines.append(orjson.dumps(doc))
            if self.summary_horizon is None:
                continue
            summary = summaries.get(trace_id)
            if not accepts(summary, now, self.summary_horizon):
                final += 1
                continue
            content = summarize(trace_id, links)
            if unchanged(summary, content):
                continue
            lines.append(orjson.dumps({"index": {"_index": self.summary_index_of(index), "_id": trace_id}}))
            lines.append(orjson.dumps(summary_document(content, summary, _iso(now))))
            written_summaries += 1
        # wait_for: the rollup that follows must see these documents.
        await self._bulk(lines, refresh="wait_for")
        return WriteResult(len(merged), calls, buckets, written_summaries, final)

    async def _load(self, flushes: Iterable[TraceFlush]) -> tuple[dict[str, _Stored], dict[str, dict[str, Any]]]:
        """Stored traces and their summaries by id — realtime, so unrefreshed writes count."""
        docs: list[dict[str, Any]] = []
        for f in flushes:
            starts = [link.start_us for link in f.links if link.start_us > 0]
            start_s = min(starts) / 1_000_000 if starts else self._now()
            for day in (start_s, start_s - 86_400):
                index = self.traces_index(day)
                docs.append({"_index": index, "_id": f.trace_id, "_source": ["spans", "buckets", "partition"]})
                if self.summary_horizon is not None:
                    docs.append({"_index": self.summary_index_of(index), "_id": f.trace_id})
        if not docs:
            return {}, {}
        resp = await self.es.mget(docs=docs)
        out: dict[str, _Stored] = {}
        summaries: dict[str, dict[str, Any]] = {}
        for hit in resp.body.get("docs", []):
            if not hit.get("found"):
                if "error" in hit and hit["error"].get("type") != "index_not_found_exception":
                    raise StoreError(f"mget {hit.get('_index')}: {hit['error'].get('reason')}")
                continue
            src = hit["_source"]
            if not hit["_index"].startswith(f"{self.prefix}-tracedeps-"):
                summaries.setdefault(hit["_id"], src)
                continue
            links: list[SpanLink] = []
            for obj in src.get("spans") or ():
                try:
                    links.append(decode_link(orjson.dumps(obj)))
                except BadLink:
                    continue
            buckets = [_epoch_of(b) for b in src.get("buckets") or ()]
            out.setdefault(hit["_id"], _Stored(hit["_index"], links, buckets, int(src.get("partition", 0))))
        return out, summaries

    # --- step 2: Jaeger's documents ------------------------------------------------------

    async def rollup(self, buckets: Iterable[Bucket]) -> int:
        """Rewrite the Jaeger documents of ``buckets`` from the stored calls; returns how many."""
        lines: list[bytes] = []
        for partition, bucket in sorted(set(buckets)):
            deps = await self._sum(partition, bucket)
            doc = {
                "timestamp": _iso(bucket),
                "partition": partition,
                "dependencies": [
                    {"parent": p, "child": c, "callCount": n, "errorCount": e, "source": "logpipe"}
                    for (p, c), (n, e) in sorted(deps.items())
                ],
            }
            index = self.dependencies_index(bucket)
            lines.append(orjson.dumps({"index": {"_index": index, "_id": f"{_iso(bucket)}/{partition}"}}))
            lines.append(orjson.dumps(doc))
        await self._bulk(lines, refresh=None)
        return len(lines) // 2

    async def _sum(self, partition: int, bucket: int) -> dict[tuple[str, str], tuple[int, int]]:
        when = _iso(bucket)
        out: dict[tuple[str, str], tuple[int, int]] = {}
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 1000,
                "sources": [{"p": {"terms": {"field": "edges.parent"}}}, {"c": {"terms": {"field": "edges.child"}}}],
            }
            if after is not None:
                composite["after"] = after
            resp = await self.es.search(
                index=[self.traces_index(bucket), self.traces_index(bucket + 86_400)],
                ignore_unavailable=True,
                size=0,
                query={"bool": {"filter": [{"term": {"partition": partition}}, {"term": {"buckets": when}}]}},
                aggs={"e": {"nested": {"path": "edges"}, "aggs": {"b": {
                    "filter": {"term": {"edges.bucket": when}},
                    "aggs": {"pairs": {"composite": composite, "aggs": {
                        "calls": {"sum": {"field": "edges.calls"}},
                        "errors": {"sum": {"field": "edges.errors"}},
                    }}},
                }}}},
            )
            agg = resp.body.get("aggregations", {}).get("e", {}).get("b", {}).get("pairs", {})
            for b in agg.get("buckets", []):
                out[(b["key"]["p"], b["key"]["c"])] = (int(b["calls"]["value"]), int(b["errors"]["value"]))
            after = agg.get("after_key")
            if not agg.get("buckets") or after is None:
                return out

    async def _bulk(self, lines: list[bytes], refresh: str | None) -> None:
        if not lines:
            return
        body = b"\n".join(lines) + b"\n"
        kwargs: dict[str, Any] = {"refresh": refresh} if refresh else {}
        resp = await self.es.bulk(operations=body, **kwargs)  # type: ignore[arg-type]
        if resp.body.get("errors"):
            failed = [next(iter(i.values())) for i in resp.body["items"] if next(iter(i.values())).get("error")]
            first = failed[0]
            raise StoreError(f"{len(failed)} items refused, e.g. {first.get('_index')}: {first.get('error')}"[:500])

