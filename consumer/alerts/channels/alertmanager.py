"""Alertmanager API v2: ``POST /api/v2/alerts``, so its grouping, silences and inhibition apply.

Each notification becomes one alert: labels (``alertname``, ``severity``, ``component``, the
``group_by`` labels, the rule's labels), annotations, ``startsAt``, ``endsAt`` and ``generatorURL``.
A firing alert's ``endsAt`` lies ``alert_ttl`` ahead and the engine re-posts it every ``reassert``;
a resolved one carries the resolve time, which Alertmanager turns into a *resolved* notification.
"""

from __future__ import annotations

from typing import Any, ClassVar

from consumer.alerts.channels.base import Notification
from consumer.alerts.channels.http import HttpChannel
from consumer.alerts.rules import AlertmanagerChannel
from consumer.alerts.templates import iso
from logpipe.core.http_auth import ALERTMANAGER_PASSWORD_ENV, auth_header, client_ssl


def to_alert(n: Notification) -> dict[str, Any]:
    """The API v2 ``postableAlert`` for ``n``."""
    alert: dict[str, Any] = {
        "labels": n.labels,
        "annotations": n.annotations,
        "startsAt": iso(n.starts_at),
        "generatorURL": n.generator_url,
    }
    if n.ends_at is not None:
        alert["endsAt"] = iso(n.ends_at)
    return alert


class AlertmanagerSender(HttpChannel):
    """Posts batches of alerts to one Alertmanager (an HA pair takes one channel per instance)."""

    max_batch: ClassVar[int] = 100
    receives_reassert: ClassVar[bool] = True
    config: AlertmanagerChannel

    def __init__(self, name: str, config: AlertmanagerChannel) -> None:
        super().__init__(name, config)
        self.url = config.url.rstrip("/") + "/api/v2/alerts"
        self._auth = config
        self._ssl = client_ssl(config)

    async def deliver(self, batch: list[Notification]) -> None:
        # The header is built per request: a rotated password file is used at once.
        headers = auth_header(self._auth, "channels.alertmanager.password", ALERTMANAGER_PASSWORD_ENV)
        await self.post_json(self.url, [to_alert(n) for n in batch], headers=headers, ssl=self._ssl)
