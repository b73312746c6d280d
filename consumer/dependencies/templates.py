"""Index templates of the dependency stage's three indices (installed before the stage writes).

* ``<prefix>-tracedeps-YYYY.MM.DD`` — one document per trace: its span links (not indexed) and
  its calls per (parent, child, time bucket) as nested objects. Named like the log indices so the
  consumer's retention (ILM, or deletion by day) covers it; the shared settings component is reused.
* ``<prefix>-traces-YYYY.MM.DD`` — one trace summary per trace (``summary.py``), what
  ``logpipe trace find`` searches; named and composed like ``tracedeps`` so retention covers it.
* ``<prefix>-jaeger-dependencies-YYYY-MM-DD`` — Jaeger's dependency documents
  (``{"timestamp", "dependencies": [{"parent", "child", "callCount"}]}``), which Jaeger's query
  service reads for ``/api/dependencies``; Jaeger creates no template for them itself.

All three outrank the ``<prefix>-*`` log template (priority ``template_priority + 20``).
"""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch

from consumer.config import IndexConfig
from consumer.index_templates import template_names

PRIORITY_ABOVE_LOGS = 20


def traces_index_pattern(prefix: str) -> str:
    return f"{prefix}-tracedeps-*"


def summaries_index_pattern(prefix: str) -> str:
    return f"{prefix}-traces-*"


def dependencies_index_pattern(prefix: str) -> str:
    return f"{prefix}-jaeger-dependencies-*"


def _trace_mappings() -> dict[str, Any]:
    kw = {"type": "keyword"}
    return {
        "dynamic": "strict",
        "properties": {
            "trace_id": kw,
            "partition": {"type": "integer"},
            "updated": {"type": "date"},
            "start": {"type": "date"},
            "buckets": {"type": "date"},
            "spans": {"type": "object", "enabled": False},
            "edges": {
                "type": "nested",
                "properties": {
                    "parent": kw,
                    "child": kw,
                    "bucket": {"type": "date"},
                    "calls": {"type": "long"},
                    "errors": {"type": "long"},
                },
            },
        },
    }


def summary_mappings() -> dict[str, Any]:
    """The trace summary's fields (``summary.py``); ``logpipe trace find --where`` knows these names."""
    kw = {"type": "keyword"}
    return {
        "dynamic": "strict",
        "properties": {
            "trace_id": kw,
            "start": {"type": "date"},
            "start_us": {"type": "long"},
            "end": {"type": "date"},
            "duration_us": {"type": "long"},
            "root": {"properties": {
                "arrived": {"type": "boolean"}, "span_id": kw, "service": kw, "operation": kw,
                "status": {"type": "integer"}, "error": {"type": "boolean"},
            }},
            "services": kw,
            "operations": kw,
            "spans": {"type": "integer"},
            "errors": {"type": "integer"},
            "first_seen": {"type": "date"},
            "updated": {"type": "date"},
        },
    }


def _dependency_mappings() -> dict[str, Any]:
    kw = {"type": "keyword"}
    return {
        "properties": {
            "timestamp": {"type": "date"},
            "partition": {"type": "integer"},
            "dependencies": {
                "type": "object",
                "properties": {
                    "parent": kw, "child": kw, "callCount": {"type": "long"},
                    "errorCount": {"type": "long"}, "source": kw,
                },
            },
        }
    }


async def install_dependency_templates(es: AsyncElasticsearch, cfg: IndexConfig) -> None:
    """Put the three templates (idempotent). Needs the log templates' settings component when
    ``install_templates`` is on (``consumer/index_templates.py``)."""
    settings_component = template_names(cfg.prefix)[0]
    composed = [settings_component] if cfg.install_templates else []
    meta = {"managed_by": "logpipe consume"}
    await es.indices.put_index_template(
        name=f"{cfg.prefix}-tracedeps",
        index_patterns=[traces_index_pattern(cfg.prefix)],
        composed_of=composed,
        template={"mappings": _trace_mappings()},
        priority=cfg.template_priority + PRIORITY_ABOVE_LOGS,
        meta={**meta, "description": "per-trace service calls <prefix>-tracedeps-YYYY.MM.DD"},
    )
    await es.indices.put_index_template(
        name=f"{cfg.prefix}-traces",
        index_patterns=[summaries_index_pattern(cfg.prefix)],
        composed_of=composed,
        template={"mappings": summary_mappings()},
        priority=cfg.template_priority + PRIORITY_ABOVE_LOGS,
        meta={**meta, "description": "trace summaries <prefix>-traces-YYYY.MM.DD (logpipe trace find)"},
    )
    await es.indices.put_index_template(
        name=f"{cfg.prefix}-jaeger-dependencies",
        index_patterns=[dependencies_index_pattern(cfg.prefix)],
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": cfg.replicas},
            "mappings": _dependency_mappings(),
        },
        priority=cfg.template_priority + PRIORITY_ABOVE_LOGS,
        meta={**meta, "description": "Jaeger dependency links <prefix>-jaeger-dependencies-YYYY-MM-DD"},
    )


async def remove_dependency_templates(es: AsyncElasticsearch, prefix: str) -> None:
    """Delete the three templates of ``prefix`` (tests and teardown); missing ones are fine."""
    for name in (f"{prefix}-tracedeps", f"{prefix}-traces", f"{prefix}-jaeger-dependencies"):
        await es.options(ignore_status=404).indices.delete_index_template(name=name)
