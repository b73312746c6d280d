"""Story helpers for alert tests: ECS documents and compiled rules from YAML-shaped dicts."""

from __future__ import annotations

import time
from typing import Any

from consumer.alerts.matcher import CompiledRule, compile_rule
from consumer.alerts.rules import RuleFile, validate_rule_file
from consumer.alerts.state import RuleState
from consumer.alerts.templates import iso


def ecs(
    message: str = "panic: nil pointer",
    component: str = "pay-gw",
    path: str = "/pay",
    status: int | None = 502,
    namespace: str = "prod",
    log_type: str = "access",
    at: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A nested ECS document as the consumer's parser builds it, stamped ``at`` (default: now)."""
    doc: dict[str, Any] = {
        "@timestamp": iso(time.time() if at is None else at),
        "message": message,
        "service": {"name": component},
        "url": {"path": path},
        "kubernetes": {"namespace": namespace, "pod": {"name": f"{component}-0"}},
        "logpipe": {"type": log_type},
    }
    if status is not None:
        doc["http"] = {"response": {"status_code": status}}
    doc.update(extra)
    return doc


def rule_file(*rules: dict[str, Any], **top: Any) -> RuleFile:
    """A validated rule file with an alertmanager channel and ``rules``."""
    data: dict[str, Any] = {"channels": {"alertmanager": {"type": "alertmanager"}}, "rules": list(rules)}
    data.update(top)
    return validate_rule_file(data, "<test>")


def compiled(rule: dict[str, Any], **engine: Any) -> tuple[CompiledRule, RuleState]:
    """One compiled rule and a fresh state for it."""
    rf = rule_file(rule, engine=engine) if engine else rule_file(rule)
    cr = compile_rule(rf.rules[0], rf.engine)
    return cr, RuleState(rf.engine.max_groups)
