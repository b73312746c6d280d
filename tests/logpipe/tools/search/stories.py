"""Test stories for search: pods write lines, the consumer's parser and templates index them.

Lines are real log lines (JSON access and app lines, spans) parsed by the consumer's own
:class:`parsers.LineParser` with shipper headers, stamped with ``event.ingested`` and routed to the
daily index by the consumer's bulk helpers, under the templates of ``consumer.index_templates``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from elasticsearch import AsyncElasticsearch

from consumer.bulk import index_name, ingested_now, stamp_ingested
from consumer.config import IndexConfig
from consumer.index_templates import install_templates, remove_templates
from logpipe.core.envelope import document_id
from parsers import LineParser, Parsed


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass
class PodFile:
    """One log file of one pod: appending a line advances the byte offset, as on disk."""

    component: str
    pod: str
    log_type: str
    namespace: str = "shop"
    file_id: str = ""
    offset: int = 0

    def headers(self, offset: int) -> dict[str, str]:
        return {
            "lp.node": "node-1",
            "lp.namespace": self.namespace,
            "lp.pod": self.pod,
            "lp.pod_uid": f"uid-{self.pod}",
            "lp.container": self.component,
            "lp.component": self.component,
            "lp.type": self.log_type,
            "lp.path": f"/var/log/{self.pod}/{self.log_type}.log",
            "lp.offset": str(offset),
            "lp.file_id": self.file_id or f"fingerprint::{self.pod}-{self.log_type}",
            "lp.read_ts": str(int(datetime.now(UTC).timestamp() * 1000)),
        }


@dataclass
class Line:
    """A line ready to index: its parsed document, _id and daily index."""

    doc: dict[str, Any]
    doc_id: str
    index: str


@dataclass
class LogStore:
    """The indices of one test (unique prefix), with the consumer's templates installed."""

    es: AsyncElasticsearch
    prefix: str
    refresh_interval: str = "1s"
    parser: LineParser = field(default_factory=LineParser)

    async def install(self) -> None:
        await install_templates(self.es, IndexConfig(prefix=self.prefix, refresh_interval=self.refresh_interval))

    async def cleanup(self) -> None:
        await self.es.options(ignore_status=404).indices.delete(
            index=f"{self.prefix}-*", expand_wildcards="all"
        )
        await remove_templates(self.es, self.prefix)

    def pod_file(self, component: str, pod: str, log_type: str = "app", **kw: Any) -> PodFile:
        return PodFile(component, pod, log_type, **kw)

    def line(self, f: PodFile, raw: dict[str, Any] | str) -> Line:
        """Parse one line written to ``f`` (advancing its offset) into an indexable document."""
        value = raw.encode() if isinstance(raw, str) else orjson.dumps(raw)
        headers = f.headers(f.offset)
        f.offset += len(value) + 1
        result = self.parser.parse(value, headers)
        assert isinstance(result, Parsed), result
        doc = result.doc
        doc_id = document_id(headers["lp.file_id"], headers["lp.offset"])
        return Line(doc, doc_id, index_name(self.prefix, result.log_type, doc, datetime.now(UTC).timestamp()))

    def app(self, f: PodFile, at: datetime, msg: str, level: str = "INFO", **extra: Any) -> Line:
        return self.line(f, {"ts": iso(at), "level": level, "msg": msg, **extra})

    def access(
        self, f: PodFile, at: datetime, path: str, status: int, latency_ms: float = 5.0, **extra: Any
    ) -> Line:
        raw = {"ts": iso(at), "method": "GET", "path": path, "status": status, "latency": latency_ms, **extra}
        return self.line(f, raw)

    def span(
        self,
        f: PodFile,
        trace_id: str,
        span_id: str,
        parent_id: str | None,
        name: str,
        start: datetime,
        duration_us: int,
        service: str | None = None,
    ) -> Line:
        raw: dict[str, Any] = {
            "trace_id": trace_id,
            "span_id": span_id,
            "operation": name,
            "start": iso(start),
            "duration": duration_us,
        }
        if parent_id:
            raw["parent_id"] = parent_id
        if service:
            raw["service"] = service
        return self.line(f, raw)

    async def index(
        self, lines: Sequence[Line], *, refresh: bool | str = "wait_for", stamp: str | None = None
    ) -> None:
        """Bulk-index ``lines`` as the consumer does (``event.ingested`` stamped now, or ``stamp``)."""
        if not lines:
            return
        ops: list[dict[str, Any]] = []
        stamp = stamp or ingested_now()
        for ln in lines:
            stamp_ingested(ln.doc, stamp)
            ops += [{"index": {"_index": ln.index, "_id": ln.doc_id}}, ln.doc]
        resp = await self.es.bulk(operations=ops, refresh=refresh)
        assert not resp["errors"], [i for i in resp["items"] if "error" in i["index"]][:3]

    async def refresh(self, log_type: str = "*") -> None:
        """Make what was indexed searchable (only the indices of ``log_type`` when given)."""
        await self.es.indices.refresh(index=f"{self.prefix}-{log_type}-*", expand_wildcards="all",
                                      ignore_unavailable=True, allow_no_indices=True)

    @property
    def url(self) -> str:
        return str(self.es.transport.node_pool.get().base_url)


def minutes_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=n)
