"""Composable index templates for the daily indices ``<prefix>-<type>-YYYY.MM.DD``, installed at start.

Two component templates (settings, mappings) and one index template per prefix; putting them is
idempotent, so every replica does it on start. Only core field types and APIs are used (the local
distribution has no ILM, data streams, ingest pipelines or ``flattened``): known ECS fields get
explicit keyword/date/long/ip types, ``message`` is text with a keyword subfield, and dynamic
templates make every unknown string a bounded keyword, every ``extra.*`` leaf a keyword, and dates
and numbers inside strings stay strings — so no line can explode or fight over the mapping. Fields
beyond ``index.mapping.total_fields.limit`` are kept in ``_source`` but not indexed (instead of
rejecting the document). When the cluster has ILM, a delete-after-retention policy is attached.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError

from consumer.config import IndexConfig
from consumer.jaeger_templates import install_jaeger_templates, remove_jaeger_templates
from consumer.telemetry import TemplatesInstalled

KEYWORD = {"type": "keyword", "ignore_above": 1024}
LONG = {"type": "long"}
DATE = {"type": "date"}


def _kw(*names: str) -> dict[str, Any]:
    return {n: dict(KEYWORD) for n in names}


def mappings() -> dict[str, Any]:
    """The mappings component: explicit ECS fields plus dynamic templates for the rest."""
    return {
        "dynamic": True,
        "date_detection": False,
        "numeric_detection": False,
        "dynamic_templates": [
            {
                "extra_leaves": {
                    "path_match": "extra.*",
                    "match_mapping_type": ["string", "long", "double", "boolean"],
                    "mapping": dict(KEYWORD),
                }
            },
            {
                "labels_leaves": {
                    "path_match": "labels.*",
                    "match_mapping_type": ["string", "long", "double", "boolean"],
                    "mapping": dict(KEYWORD),
                }
            },
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": dict(KEYWORD)}},
        ],
        "properties": {
            "@timestamp": DATE,
            "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 2048}}},
            "event": {
                "properties": {
                    "ingested": DATE,
                    "created": DATE,
                    "duration": LONG,
                    **_kw("kind", "category", "outcome", "dataset", "original"),
                }
            },
            "service": {"properties": _kw("name", "version", "environment")},
            "kubernetes": {
                "properties": {
                    "namespace": dict(KEYWORD),
                    "pod": {"properties": _kw("name", "uid")},
                    "node": {"properties": _kw("name")},
                    "container": {"properties": _kw("name")},
                }
            },
            "http": {
                "properties": {
                    "request": {"properties": {"method": dict(KEYWORD), "bytes": LONG}},
                    "response": {
                        "properties": {"status_code": LONG, "body": {"properties": {"bytes": LONG}}}
                    },
                }
            },
            "url": {"properties": _kw("path", "query", "domain", "original", "full")},
            "client": {"properties": {"ip": {"type": "ip"}}},
            "user_agent": {"properties": _kw("original")},
            "trace": {"properties": _kw("id")},
            "span": {"properties": {**_kw("id", "name", "kind", "type"), "duration": {"properties": {"us": LONG}}}},
            "parent": {"properties": _kw("id")},
            "transaction": {"properties": _kw("id", "name")},
            "log": {
                "properties": {
                    "level": dict(KEYWORD),
                    "offset": LONG,
                    "file": {"properties": _kw("path")},
                }
            },
            "error": {"properties": {"message": {"type": "text"}, **_kw("type")}},
            # original_base64: the bytes of a line that was not UTF-8 (parsers/encoding.py); stored, not searched.
            "logpipe": {
                "properties": {**_kw("file_id", "type", "flags", "stream"), "original_base64": {"type": "binary"}}
            },
            "extra": {"type": "object", "dynamic": True},
            "labels": {"type": "object", "dynamic": True},
        },
    }


def settings(cfg: IndexConfig, ilm_policy: str | None) -> dict[str, Any]:
    """The settings component: shards, replicas, refresh, field limits and (with ILM) the policy."""
    s: dict[str, Any] = {
        "number_of_shards": cfg.shards,
        "number_of_replicas": cfg.replicas,
        "refresh_interval": cfg.refresh_interval,
        "mapping": {
            "total_fields": {"limit": cfg.total_fields_limit, "ignore_dynamic_beyond_limit": True},
            "depth": {"limit": 8},
        },
    }
    if ilm_policy:
        s["lifecycle"] = {"name": ilm_policy}
    return {"index": s}


def template_names(prefix: str) -> tuple[str, str, str]:
    """(settings component, mappings component, index template) names for ``prefix``."""
    return (f"{prefix}-settings", f"{prefix}-mappings", f"{prefix}-daily")


def index_pattern(prefix: str) -> str:
    return f"{prefix}-*"


async def ilm_available(es: AsyncElasticsearch) -> bool:
    """Whether the cluster has index lifecycle management (x-pack); False on core-only builds."""
    try:
        resp = await es.perform_request("GET", "/_ilm/status", headers={"accept": "application/json"})
    except Exception:
        return False
    return isinstance(resp.body, dict) and "operation_mode" in resp.body


async def install_ilm_policy(es: AsyncElasticsearch, cfg: IndexConfig) -> str:
    """Put a delete-after-``retention_days`` lifecycle policy; returns its name."""
    name = f"{cfg.prefix}-retention"
    body = {"policy": {"phases": {"hot": {"actions": {}}, "delete": {
        "min_age": f"{cfg.retention_days}d", "actions": {"delete": {}}}}}}
    await es.perform_request(
        "PUT", f"/_ilm/policy/{name}", body=body,
        headers={"accept": "application/json", "content-type": "application/json"},
    )
    return name


async def install_templates(es: AsyncElasticsearch, cfg: IndexConfig) -> bool:
    """Put the component and index templates for ``cfg.prefix``, and Jaeger's
    (``consumer/jaeger_templates.py``), idempotently; True if ILM manages retention."""
    ilm = await ilm_available(es)
    policy = await install_ilm_policy(es, cfg) if ilm else None
    s_name, m_name, t_name = template_names(cfg.prefix)
    await es.cluster.put_component_template(name=s_name, template={"settings": settings(cfg, policy)})
    await es.cluster.put_component_template(name=m_name, template={"mappings": mappings()})
    await es.indices.put_index_template(
        name=t_name,
        index_patterns=[index_pattern(cfg.prefix)],
        composed_of=[s_name, m_name],
        priority=cfg.template_priority,
        meta={"managed_by": "logpipe consume", "description": "daily log indices <prefix>-<type>-YYYY.MM.DD"},
    )
    jaeger = await install_jaeger_templates(es, cfg, policy, mappings()["properties"])
    TemplatesInstalled(prefix=cfg.prefix, names=(s_name, m_name, t_name, *jaeger), ilm=ilm).emit()
    return ilm


async def remove_templates(es: AsyncElasticsearch, prefix: str) -> None:
    """Delete the templates of ``prefix`` (tests and teardown); missing ones are fine. Index
    templates of other stages built on our components (``<prefix>-tracedeps``) go first: a component
    still in use cannot be deleted."""
    await remove_jaeger_templates(es, prefix)
    s_name, m_name, t_name = template_names(prefix)
    try:
        found = await es.indices.get_index_template(name=f"{prefix}-*")
        users = [
            t["name"] for t in found.body.get("index_templates", [])
            if t["name"] != t_name and {s_name, m_name} & set(t["index_template"].get("composed_of", []))
        ]
    except NotFoundError:
        users = []
    for name in users:
        try:
            await es.indices.delete_index_template(name=name)
        except NotFoundError:
            pass
    for call, name in (
        (es.indices.delete_index_template, t_name),
        (es.cluster.delete_component_template, s_name),
        (es.cluster.delete_component_template, m_name),
    ):
        try:
            await call(name=name)
        except NotFoundError:
            pass
