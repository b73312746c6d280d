"""A generic JSON webhook: one POST per notification.

Body (stable, versioned)::

    {"version": "1", "status": "firing", "reason": "new", "rule": "pay-5xx",
     "labels": {...}, "annotations": {...}, "startsAt": "...Z", "endsAt": null,
     "generatorURL": "...", "why": "3 matching lines within 30s (threshold 3)", "samples": ["..."]}
"""

from __future__ import annotations

from typing import Any

from consumer.alerts.channels.base import Notification
from consumer.alerts.channels.http import HttpChannel
from consumer.alerts.rules import WebhookChannel
from consumer.alerts.templates import iso


def to_body(n: Notification) -> dict[str, Any]:
    """The webhook's JSON body for ``n``."""
    return {
        "version": "1",
        "status": n.status,
        "reason": n.reason,
        "rule": n.rule,
        "labels": n.labels,
        "annotations": n.annotations,
        "startsAt": iso(n.starts_at),
        "endsAt": iso(n.ends_at) if n.status == "resolved" and n.ends_at is not None else None,
        "generatorURL": n.generator_url,
        "why": n.why,
        "samples": list(n.samples),
    }


class WebhookSender(HttpChannel):
    """POSTs :func:`to_body` to the configured URL with the configured headers."""

    config: WebhookChannel

    async def deliver(self, batch: list[Notification]) -> None:
        for n in batch:
            await self.post_json(self.config.url, to_body(n), self.config.headers)
