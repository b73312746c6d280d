"""Index templates for Jaeger's indices, so the consumer's span documents are what Jaeger reads.

``<prefix>-jaeger-span-*`` gets Jaeger's span mapping (keyword ids, ``startTime``/``duration`` as
longs, ``startTimeMillis`` as an ``epoch_millis`` date, nested ``tags``/``process.tags``/``logs`` that
Jaeger's tag queries address) plus the ECS fields our tools use, typed as in the log indices;
``<prefix>-jaeger-service-*`` Jaeger's service/operation mapping. (``<prefix>-jaeger-dependencies-*``
belongs to the dependency stage, ``consumer/dependencies/``.) Jaeger itself runs with
``create_mappings: false``: logpipe's are the only templates. Each has a priority above the log
template (``<prefix>-*`` matches these names too) and the same settings (shards, replicas,
refresh, the ILM policy when there is one). Written from Jaeger's v8 mappings
(``internal/storage/v1/elasticsearch/mappings``), not copied.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError

from consumer.config import IndexConfig

KIND = {"type": "keyword", "ignore_above": 256}
KINDS = ("span", "service")
# The ECS fields a span document carries beside Jaeger's (parsers/spans/document.py).
_ECS = ("@timestamp", "event", "service", "kubernetes", "http", "trace", "span", "parent", "log", "error", "logpipe")


def _key_values() -> dict[str, Any]:
    """Jaeger's nested ``{key, type, value}`` list (tags, process tags, log fields)."""
    return {"type": "nested", "dynamic": False, "properties": {"key": KIND, "value": KIND, "type": KIND}}


def span_mappings(ecs: dict[str, Any]) -> dict[str, Any]:
    """Jaeger's span mapping plus ``ecs`` (the log indices' properties) for the ECS fields beside it."""
    return {
        "date_detection": False,
        "dynamic_templates": [
            {"span_tags_map": {"path_match": "tag.*", "mapping": dict(KIND)}},
            {"process_tags_map": {"path_match": "process.tag.*", "mapping": dict(KIND)}},
            {
                "strings_as_keyword": {
                    "match_mapping_type": "string",
                    "mapping": {"type": "keyword", "ignore_above": 1024},
                }
            },
        ],
        "properties": {
            "traceID": KIND,
            "parentSpanID": KIND,
            "spanID": KIND,
            "operationName": KIND,
            "startTime": {"type": "long"},
            "startTimeMillis": {"type": "date", "format": "epoch_millis"},
            "duration": {"type": "long"},
            "flags": {"type": "integer"},
            "logs": {
                "type": "nested",
                "dynamic": False,
                "properties": {"timestamp": {"type": "long"}, "fields": _key_values()},
            },
            "process": {"properties": {"serviceName": KIND, "tag": {"type": "object"}, "tags": _key_values()}},
            "references": {
                "type": "nested",
                "dynamic": False,
                "properties": {"refType": KIND, "traceID": KIND, "spanID": KIND},
            },
            "tag": {"type": "object"},
            "tags": _key_values(),
            **{name: ecs[name] for name in _ECS},
        },
    }


def service_mappings() -> dict[str, Any]:
    return {"properties": {"serviceName": KIND, "operationName": KIND}}


def template_name(prefix: str, kind: str) -> str:
    return f"{prefix}-jaeger-{kind}"


def index_patterns(prefix: str, kind: str) -> list[str]:
    return [f"{prefix}-jaeger-{kind}-*"]


def settings(cfg: IndexConfig, ilm_policy: str | None) -> dict[str, Any]:
    s: dict[str, Any] = {
        "number_of_shards": cfg.shards,
        "number_of_replicas": cfg.replicas,
        "refresh_interval": cfg.refresh_interval,
        "mapping": {"nested_fields": {"limit": 50}},
        "requests": {"cache": {"enable": True}},
    }
    if ilm_policy:
        s["lifecycle"] = {"name": ilm_policy}
    return {"index": s}


async def install_jaeger_templates(
    es: AsyncElasticsearch, cfg: IndexConfig, ilm_policy: str | None, ecs: dict[str, Any]
) -> list[str]:
    """Put the span and service templates for ``cfg.prefix`` (idempotent); returns their names."""
    bodies = {"span": span_mappings(ecs), "service": service_mappings()}
    names = []
    for kind in KINDS:
        name = template_name(cfg.prefix, kind)
        await es.indices.put_index_template(
            name=name,
            index_patterns=index_patterns(cfg.prefix, kind),
            template={"settings": settings(cfg, ilm_policy), "mappings": bodies[kind]},
            priority=cfg.template_priority + 1,  # above <prefix>-*, which matches these names too
            meta={"managed_by": "logpipe consume", "description": f"Jaeger's {kind} indices, read by Jaeger"},
        )
        names.append(name)
    return names


async def remove_jaeger_templates(es: AsyncElasticsearch, prefix: str) -> None:
    for kind in KINDS:
        try:
            await es.indices.delete_index_template(name=template_name(prefix, kind))
        except NotFoundError:
            pass
