"""The alert engine's telemetry as named events: each one log record and one Prometheus metric.

Labels are bounded: ``rule`` and ``channel`` come from the rule file, ``reason``/``status`` from
fixed sets. Usage: ``NotificationFailed(channel="pay-robot", error="timeout").emit()``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from logpipe.core.events import Event, EventLog

log = logging.getLogger("logpipe.consumer.alerts")

_P = "logpipe_alerts_"

MATCHES = Counter(_P + "notifications_decided", "Notifications decided by the rules", ["rule", "reason"])
SENT = Counter(_P + "notifications_sent", "Notifications delivered by a channel", ["channel", "status"])
FAILURES = Counter(_P + "channel_failures", "Failed delivery attempts (each retry counts)", ["channel"])
DROPPED = Counter(
    _P + "notifications_dropped", "Notifications given up: queue_full or retries_exhausted", ["channel", "reason"]
)
DELIVERY_SECONDS = Histogram(
    _P + "delivery_seconds",
    "Time from decision to delivery by a channel",
    ["channel"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
GROUPS = Gauge(_P + "groups", "Groups held in memory", ["rule"])
FIRING = Gauge(_P + "firing", "Groups currently firing", ["rule"])
EVICTED = Counter(_P + "groups_evicted", "Groups evicted by the max_groups bound", ["rule"])
OBSERVE_ERRORS = Counter(_P + "observe_errors", "Documents whose evaluation raised (skipped)")
SKIPPED = Counter(_P + "docs_skipped", "Documents not evaluated, by reason", ["reason"])
RESTORED = Counter(_P + "restored", "Firing groups read back from Alertmanager at start", ["rule"])


_log = EventLog(log)


_last_logged: dict[tuple[str, ...], float] = {}


def _once_per_second(*key: str) -> bool:
    """True at most once per second per key: a storm is counted in full but logged sparsely."""
    now = time.monotonic()
    if now - _last_logged.get(key, 0.0) < 1.0:
        return False
    _last_logged[key] = now
    return True


@dataclass(frozen=True, slots=True)
class AlertDecided(Event):
    """A rule decided to notify (new, realert, reassert, resolved)."""

    rule: str
    reason: str
    group: str
    why: str

    def emit(self) -> None:
        MATCHES.labels(self.rule, self.reason).inc()
        level = logging.DEBUG if self.reason == "reassert" else logging.INFO
        _log(level, "AlertDecided", self.fields())


@dataclass(frozen=True, slots=True)
class NotificationSent(Event):
    """A channel delivered notifications."""

    channel: str
    status: str
    count: int
    seconds: float

    def emit(self) -> None:
        SENT.labels(self.channel, self.status).inc(self.count)
        DELIVERY_SECONDS.labels(self.channel).observe(self.seconds)
        _log(logging.DEBUG, "NotificationSent", self.fields())


@dataclass(frozen=True, slots=True)
class NotificationFailed(Event):
    """One delivery attempt failed; it is retried unless retries are exhausted."""

    channel: str
    error: str
    attempt: int

    def emit(self) -> None:
        FAILURES.labels(self.channel).inc()
        if _once_per_second("failed", self.channel):
            _log(logging.WARNING, "NotificationFailed", self.fields())


@dataclass(frozen=True, slots=True)
class NotificationDropped(Event):
    """Notifications given up: the channel's queue was full, or its retries were exhausted."""

    channel: str
    reason: str
    count: int

    def emit(self) -> None:
        DROPPED.labels(self.channel, self.reason).inc(self.count)
        if _once_per_second("dropped", self.channel, self.reason):
            _log(logging.ERROR, "NotificationDropped", self.fields())


@dataclass(frozen=True, slots=True)
class ObserveFailed(Event):
    """Evaluating a document raised; the document is skipped for alerting (it is still indexed)."""

    error: str

    def emit(self) -> None:
        OBSERVE_ERRORS.inc()
        if _once_per_second("observe"):
            _log(logging.ERROR, "ObserveFailed", self.fields())


@dataclass(frozen=True, slots=True)
class DocSkipped(Event):
    """A document was not evaluated (e.g. ``stale``: older than ``engine.max_event_age``)."""

    reason: str

    def emit(self) -> None:
        SKIPPED.labels(self.reason).inc()


@dataclass(frozen=True, slots=True)
class GroupsEvicted(Event):
    """The ``max_groups`` bound evicted groups of a rule."""

    rule: str
    count: int
    firing: int

    def emit(self) -> None:
        EVICTED.labels(self.rule).inc(self.count)
        _log(logging.WARNING, "GroupsEvicted", self.fields())


@dataclass(frozen=True, slots=True)
class FiringRestored(Event):
    """Firing alerts read back from Alertmanager at start (treated as already notified)."""

    rule: str
    count: int

    def emit(self) -> None:
        RESTORED.labels(self.rule).inc(self.count)
        _log(logging.INFO, "FiringRestored", self.fields())


def set_group_gauges(rule: str, groups: int, firing: int) -> None:
    """Publish a rule's group and firing counts."""
    GROUPS.labels(rule).set(groups)
    FIRING.labels(rule).set(firing)
