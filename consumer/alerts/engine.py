"""The alert engine inside the consumer: rules evaluated on every document, notifications sent behind.

The consumer's contract::

    engine = AlertEngine.from_file(path, alertmanager_url)   # ConfigError naming rule, key and fix
    await engine.start()
    engine.observe(doc)        # every parsed ECS doc; never blocks, never raises
    await engine.stop()

``observe`` evaluates the compiled rules synchronously (microseconds: predicates compiled once, no
I/O) and hands each resulting notification to every routed channel's bounded queue
(:meth:`ChannelWorker.offer`); a background task per channel delivers with rate limit and retries.
A background tick (``engine.tick_interval``) detects absence, resolves cleared conditions and
re-asserts firing alerts to Alertmanager. Times are the wall clock at evaluation; documents whose
``@timestamp`` is older than ``engine.max_event_age`` (a backlog being replayed) are not evaluated,
nor is a document whose source identity was evaluated recently (a Kafka redelivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from consumer.alerts.channels.base import ChannelWorker, Notification
from consumer.alerts.channels.factory import build_channel
from consumer.alerts.dedupe import RecentIds, identity
from consumer.alerts.evaluate import Match, evaluate, tick
from consumer.alerts.matcher import CompiledRule, GroupKey, compile_rule
from consumer.alerts.restore import fetch_alerts, restore_firing
from consumer.alerts.rules import AlertmanagerChannel, RuleFile, load_rule_file
from consumer.alerts.state import RuleState
from consumer.alerts.telemetry import (
    AlertDecided,
    DocSkipped,
    FiringRestored,
    GroupsEvicted,
    ObserveFailed,
    set_group_gauges,
)
from consumer.alerts.templates import render_annotations

log = logging.getLogger("logpipe.consumer.alerts")

_COMPONENT_LABELS = ("service_name", "component")


def _event_time(doc: Mapping[str, Any]) -> float | None:
    ts = doc.get("@timestamp")
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return None


def component_of(key: GroupKey) -> str | None:
    """The Component a group key names (its ``service_name`` or ``component`` label), if any."""
    for label, value in key:
        if label in _COMPONENT_LABELS:
            return value
    return None


class AlertEngine:
    """Evaluates alert rules on the live stream and routes notifications to channels.

    Not thread-safe: call every method from the consumer's event loop.
    """

    def __init__(self, rule_file: RuleFile, *, clock: Callable[[], float] = time.time) -> None:
        self.rule_file = rule_file
        self.settings = rule_file.engine
        self._clock = clock
        self.rules: list[CompiledRule] = [compile_rule(r, self.settings) for r in rule_file.rules if r.enabled]
        self.states: dict[str, RuleState] = {r.name: RuleState(self.settings.max_groups) for r in self.rules}
        self.workers: dict[str, ChannelWorker] = {
            name: ChannelWorker(build_channel(name, cfg)) for name, cfg in rule_file.channels.items()
        }
        self._routes: dict[str, list[ChannelWorker]] = {
            r.name: [self.workers[c] for c in (r.rule.channels or list(self.workers))] for r in self.rules
        }
        self._generator: dict[str, str] = {
            r.name: self.settings.generator_url.replace("{rule}", quote(r.name, safe="")) for r in self.rules
        }
        self._evicted: dict[str, int] = {r.name: 0 for r in self.rules}
        self._recent = RecentIds(self.settings.dedupe_window) if self.settings.dedupe_window else None
        self._owns_component: Callable[[str], bool] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._restore_task: asyncio.Task[int] | None = None

    @classmethod
    def from_file(cls, path: str | Path, alertmanager_url: str | None = None) -> AlertEngine:
        """Load and validate a rule file; ``alertmanager_url`` overrides the ``alertmanager`` channel's url.

        Raises :class:`logpipe.core.config_base.ConfigError` naming the rule, the key and the fix.
        """
        return cls(load_rule_file(path, alertmanager_url))

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the channel workers, restore firing alerts from Alertmanager, start the tick."""
        for w in self.workers.values():
            await w.start()
        if self.settings.restore_from_alertmanager:
            await self.restore()
        self._tick_task = asyncio.create_task(self._tick_loop(), name="alert-tick")

    async def stop(self, flush_timeout: float = 5.0) -> None:
        """Stop ticking and deliver queued notifications for up to ``flush_timeout`` seconds.

        Firing alerts stay firing in Alertmanager until their ``endsAt``; the next start restores them.
        """
        tasks: list[asyncio.Task[Any]] = [t for t in (self._tick_task, self._restore_task) if t is not None]
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tick_task = self._restore_task = None
        await asyncio.gather(*(w.stop(flush_timeout) for w in self.workers.values()))

    async def restore(self) -> int:
        """Read our firing alerts back from each Alertmanager channel; how many groups were restored."""
        total = 0
        for w in self.workers.values():
            cfg = w.config
            if not isinstance(cfg, AlertmanagerChannel):
                continue
            try:
                alerts = await fetch_alerts(cfg.url, timeout=min(cfg.timeout, 5.0), auth=cfg)
            except Exception as exc:  # Alertmanager down: start anyway, firing alerts re-fire as new
                log.warning("cannot restore firing alerts", extra={"fields": {"channel": w.name, "error": repr(exc)}})
                continue
            counts = restore_firing(
                self.rules, self.states, alerts, self._clock(), self._generator, self._owns_key, self.labels
            )
            for rule, n in counts.items():
                FiringRestored(rule=rule, count=n).emit()
                total += n
        return total

    def set_owner(self, owns_component: Callable[[str], bool] | None) -> None:
        """Tell the engine which Components this replica receives (call after each Kafka rebalance).

        With N consumer replicas a Component's records land in one partition, owned by one replica:
        groups of Components not owned are neither fired nor resolved here, and firing alerts of
        newly owned Components are read back from Alertmanager. ``None``: this replica sees all.
        """
        self._owns_component = owns_component
        if not self.settings.restore_from_alertmanager or owns_component is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not started yet: start() restores
        if self._restore_task is None or self._restore_task.done():
            self._restore_task = asyncio.create_task(self.restore(), name="alert-restore")

    def _owns_key(self, key: GroupKey) -> bool:
        if self._owns_component is None:
            return True
        component = component_of(key)
        return component is None or self._owns_component(component)

    # --------------------------------------------------------------------------------- evaluation

    def observe(self, doc: Mapping[str, Any]) -> None:
        """Evaluate every rule on ``doc`` and queue the resulting notifications; never blocks or raises."""
        try:
            now = self._clock()
            max_age = self.settings.max_event_age
            if max_age is not None:
                ts = _event_time(doc)
                if ts is not None and now - ts > max_age:
                    DocSkipped(reason="stale").emit()
                    return
            if self._recent is not None:
                key = identity(doc)
                if key is not None and self._recent.seen(key):
                    DocSkipped(reason="duplicate").emit()
                    return
            for rule in self.rules:
                matches = evaluate(rule, self.states[rule.name], doc, now)
                if matches:
                    self._dispatch(rule, matches)
        except Exception as exc:  # a rule bug must never stop indexing
            ObserveFailed(error=repr(exc)).emit()

    def tick_now(self) -> int:
        """Run the time-driven checks once (the tick task calls this); notifications queued."""
        now = self._clock()
        owns = self._owns_key if self._owns_component is not None else None
        queued = 0
        for rule in self.rules:
            state = self.states[rule.name]
            matches = tick(rule, state, now, owns)
            if matches:
                queued += self._dispatch(rule, matches)
            if state.evicted != self._evicted[rule.name]:
                GroupsEvicted(
                    rule=rule.name, count=state.evicted - self._evicted[rule.name], firing=state.evicted_firing
                ).emit()
                self._evicted[rule.name] = state.evicted
            set_group_gauges(rule.name, len(state), len(state.firing()))
        return queued

    async def _tick_loop(self) -> None:
        interval = self.settings.tick_interval
        while True:
            await asyncio.sleep(interval)
            try:
                self.tick_now()
            except Exception as exc:
                ObserveFailed(error=f"tick: {exc!r}").emit()

    def firing(self) -> list[tuple[str, GroupKey]]:
        """(rule, group) of every group firing now."""
        return [(name, g.key) for name, st in self.states.items() for g in st.firing()]

    # ---------------------------------------------------------------------------------- dispatch

    def labels(self, rule: CompiledRule, key: GroupKey) -> dict[str, str]:
        """The alert's identity: alertname, severity, component, the group labels, the rule's labels.

        Derived from the group only (never from one document), so firing, re-asserted and resolved
        posts of a group carry the same label set — Alertmanager's identity of an alert.
        """
        labels = {"alertname": rule.name, "severity": rule.rule.severity}
        component = component_of(key)
        if component is None and len(rule.rule.match.components) == 1:
            component = rule.rule.match.components[0]
        if component:
            labels["component"] = component
        labels.update((k, v) for k, v in key if v)
        labels.update(rule.rule.labels)
        return labels

    def notification(self, rule: CompiledRule, m: Match) -> Notification:
        """Render ``m`` (labels, annotations, times) for the channels."""
        resolved = m.status == "resolved"
        return Notification(
            rule=rule.name,
            status=m.status,
            reason=m.reason,
            labels=self.labels(rule, m.group),
            annotations=render_annotations(rule.rule, m),
            starts_at=m.started_at,
            ends_at=m.at if resolved else m.at + self.settings.alert_ttl,
            generator_url=self._generator[rule.name],
            at=m.at,
            why=m.why,
            samples=m.samples,
        )

    def _dispatch(self, rule: CompiledRule, matches: list[Match]) -> int:
        queued = 0
        for m in matches:
            AlertDecided(rule=rule.name, reason=m.reason, group=repr(dict(m.group)), why=m.why).emit()
            n = self.notification(rule, m)
            for w in self._routes[rule.name]:
                if m.reason == "reassert" and not w.channel.receives_reassert:
                    continue
                queued += w.offer(n)
        return queued
