"""Firing state after a restart or rebalance, re-derived from Alertmanager (no local state file).

Alertmanager already holds every alert this engine fired and has not resolved (their ``endsAt``
lies ``alert_ttl`` ahead, re-posted every ``reassert``). At start the engine reads them back and
marks their groups firing *as already notified*: a condition that still holds does not notify
again within ``realert`` (no storm), and a group that does not hold again within the grace is
forgotten quietly and expires in Alertmanager at its ``endsAt`` (which sends the resolved
notification) — never lost silently, and never resolved by a replica that does not own it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp

from consumer.alerts.matcher import CompiledRule
from consumer.alerts.rules import AbsentCondition, CountCondition, LatencyCondition, RatioCondition
from consumer.alerts.state import GroupKey, RuleState
from logpipe.core.http_auth import ALERTMANAGER_PASSWORD_ENV, HttpClientAuth, auth_header, client_ssl


async def fetch_alerts(url: str, timeout: float = 5.0, auth: HttpClientAuth | None = None) -> list[dict[str, Any]]:
    """Every alert Alertmanager holds (active, silenced, inhibited), from ``GET /api/v2/alerts``.

    ``auth``: basic auth and TLS trust of an Alertmanager run with ``--web.config.file``.
    """
    endpoint = url.rstrip("/") + "/api/v2/alerts"
    auth = auth or HttpClientAuth()
    headers = auth_header(auth, "channels.alertmanager.password", ALERTMANAGER_PASSWORD_ENV)
    params = {"active": "true", "silenced": "true", "inhibited": "true"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.get(endpoint, params=params, headers=headers, ssl=client_ssl(auth)) as resp,
    ):
        resp.raise_for_status()
        data = await resp.json()
    return [a for a in data if isinstance(a, dict)] if isinstance(data, list) else []


def _epoch(text: Any, default: float) -> float:
    if not isinstance(text, str):
        return default
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def grace_of(rule: CompiledRule) -> float:
    """How long a restored group may wait for its condition to hold again: the window to refill."""
    c = rule.condition
    if isinstance(c, CountCondition | RatioCondition | LatencyCondition):
        return max(c.within, rule.resolve)
    if isinstance(c, AbsentCondition):
        return 0.0
    return rule.resolve


def restore_firing(
    rules: Sequence[CompiledRule],
    states: Mapping[str, RuleState],
    alerts: Sequence[Mapping[str, Any]],
    now: float,
    generator_url: Mapping[str, str],
    owns: Callable[[GroupKey], bool] | None = None,
    labels_of: Callable[[CompiledRule, GroupKey], Mapping[str, str]] | None = None,
) -> dict[str, int]:
    """Mark the groups of ``alerts`` that this engine fired as firing; the count restored per rule.

    An alert is ours when its ``alertname`` is one of our rules, its ``generatorURL`` is that
    rule's (another system's alert of the same name is left alone) and its labels are exactly
    those this engine would post for the group (``labels_of``): after a rule's severity or labels
    changed, the old alert is not adopted — it expires while the new identity fires on its own.
    Resolved alerts are skipped.
    """
    by_name = {r.name: r for r in rules}
    restored: dict[str, int] = {}
    for alert in alerts:
        labels = alert.get("labels")
        if not isinstance(labels, Mapping):
            continue
        rule = by_name.get(str(labels.get("alertname", "")))
        if rule is None or alert.get("generatorURL") != generator_url.get(rule.name):
            continue
        status = alert.get("status")
        if isinstance(status, Mapping) and status.get("state") == "resolved":
            continue
        if _epoch(alert.get("endsAt"), now + 1) <= now:
            continue
        key = tuple((label, str(labels.get(label, ""))) for label, _ in rule.group_fields)
        if owns is not None and not owns(key):
            continue
        if labels_of is not None and dict(labels_of(rule, key)) != dict(labels):
            continue
        if (g := states[rule.name].get(key)) is not None and g.firing:
            continue  # already known here
        cond = rule.condition
        span = cond.within if isinstance(cond, CountCondition | RatioCondition) else None
        last_seen = now - cond.absent if isinstance(cond, AbsentCondition) else None
        annotations = alert.get("annotations")
        states[rule.name].restore_firing(
            key,
            started_at=_epoch(alert.get("startsAt"), now),
            now=now,
            grace=grace_of(rule),
            span=span,
            annotations=dict(annotations) if isinstance(annotations, Mapping) else None,
            last_seen=last_seen,
        )
        restored[rule.name] = restored.get(rule.name, 0) + 1
    return restored
