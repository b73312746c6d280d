"""The channel for a configuration entry, chosen by its ``type``."""

from __future__ import annotations

from consumer.alerts.channels.alertmanager import AlertmanagerSender
from consumer.alerts.channels.base import Channel
from consumer.alerts.channels.email import EmailSender
from consumer.alerts.channels.webhook import WebhookSender
from consumer.alerts.channels.wecom import WeComSender
from consumer.alerts.rules import AlertmanagerChannel, ChannelBase, EmailChannel, WebhookChannel, WeComChannel


def build_channel(name: str, config: ChannelBase) -> Channel:
    """A :class:`Channel` for ``config`` (one of the models in :mod:`consumer.alerts.rules`)."""
    if isinstance(config, AlertmanagerChannel):
        return AlertmanagerSender(name, config)
    if isinstance(config, WeComChannel):
        return WeComSender(name, config)
    if isinstance(config, WebhookChannel):
        return WebhookSender(name, config)
    if isinstance(config, EmailChannel):
        return EmailSender(name, config)
    raise TypeError(f"no channel for {type(config).__name__}")
