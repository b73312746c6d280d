"""Alertmanager channel against the REAL Alertmanager: post, read back, resolve, restart without a storm."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from consumer.alerts.channels.alertmanager import to_alert
from consumer.alerts.channels.base import Notification
from consumer.alerts.engine import AlertEngine
from consumer.alerts.rules import RuleFile
from consumer.alerts.templates import iso
from tests.consumer.alerts.conftest import Recorder
from tests.consumer.alerts.docs import ecs, rule_file


async def am_alerts(url: str, alertname: str) -> list[dict[str, Any]]:
    """Active alerts named ``alertname`` in Alertmanager."""
    async with (
        aiohttp.ClientSession() as s,
        s.get(url + "/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}) as resp,
    ):
        resp.raise_for_status()
        return await resp.json()


async def wait_alerts(url: str, alertname: str, want: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        alerts = await am_alerts(url, alertname)
        if len(alerts) == want or time.monotonic() > deadline:
            return alerts
        await asyncio.sleep(0.05)


async def resolve_all(url: str, alertname: str) -> None:
    """Clean up: end every alert of ``alertname`` now."""
    alerts = await am_alerts(url, alertname)
    for a in alerts:
        a["endsAt"] = iso(time.time())
    body = [{k: a[k] for k in ("labels", "annotations", "startsAt", "endsAt", "generatorURL")} for a in alerts]
    if body:
        async with aiohttp.ClientSession() as s, s.post(url + "/api/v2/alerts", json=body) as resp:
            resp.raise_for_status()


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pay_rules(am_url: str, alertname: str, hook: str | None = None, **rule: Any) -> RuleFile:
    channels: dict[str, Any] = {"alertmanager": {"type": "alertmanager", "url": am_url}}
    if hook:
        channels["hook"] = {"type": "webhook", "url": hook}
    spec = {
        "name": alertname,
        "severity": "critical",
        "match": {"components": ["pay-gw"], "keywords": ["panic"], "where": "status>=500"},
        "condition": {"count": 2, "within": "30s"},
        "group_by": ["service.name", "url.path"],
        "realert": "5m",
        "labels": {"team": "pay"},
        "annotations": {"summary": "{{count}} errors on {{url.path}} in {{service.name}}"},
        **rule,
    }
    return rule_file(spec, channels=channels, engine={"tick_interval": "100ms"})


def test_postable_alert_shape() -> None:
    n = Notification(
        rule="r",
        status="resolved",
        reason="resolved",
        labels={"alertname": "r"},
        annotations={"summary": "s"},
        starts_at=1_800_000_000.0,
        ends_at=1_800_000_060.5,
        generator_url="http://g/r",
        at=1_800_000_060.5,
    )
    assert to_alert(n) == {
        "labels": {"alertname": "r"},
        "annotations": {"summary": "s"},
        "startsAt": "2027-01-15T08:00:00.000Z",
        "endsAt": "2027-01-15T08:01:00.500Z",
        "generatorURL": "http://g/r",
    }


@pytest.mark.integration
async def test_firing_alert_is_visible_in_alertmanager_with_labels_and_annotations(
    alertmanager_url: str, unique_name: str
) -> None:
    engine = AlertEngine(pay_rules(alertmanager_url, unique_name))
    await engine.start()
    try:
        engine.observe(ecs("panic: upstream reset", path="/pay/confirm", status=502))
        engine.observe(ecs("panic: upstream reset again", path="/pay/confirm", status=503))
        (alert,) = await wait_alerts(alertmanager_url, unique_name, 1)
    finally:
        await engine.stop()
        await resolve_all(alertmanager_url, unique_name)
    assert alert["labels"] == {
        "alertname": unique_name,
        "severity": "critical",
        "component": "pay-gw",
        "service_name": "pay-gw",
        "url_path": "/pay/confirm",
        "team": "pay",
    }
    ann = alert["annotations"]
    assert ann["summary"] == "2 errors on /pay/confirm in pay-gw"
    assert ann["samples"] == "panic: upstream reset\npanic: upstream reset again"
    assert ann["search"].startswith("logpipe search panic --component pay-gw --namespace prod --from ")
    assert alert["generatorURL"] == f"http://logpipe.invalid/alerts/{unique_name}"
    assert alert["status"]["state"] == "active"
    assert 250 < epoch(alert["endsAt"]) - time.time() <= 300  # alert_ttl ahead, re-asserted while firing


@pytest.mark.integration
async def test_resolve_sets_ends_at_and_alertmanager_resolves_it(alertmanager_url: str, unique_name: str) -> None:
    rf = pay_rules(alertmanager_url, unique_name, condition={"count": 1, "within": "1s"}, resolve="200ms")
    engine = AlertEngine(rf)
    await engine.start()
    try:
        engine.observe(ecs("panic: x", status=500))
        assert len(await wait_alerts(alertmanager_url, unique_name, 1)) == 1
        # the window (1 s) drains, the condition stays clear for 200 ms, the tick sends resolved
        assert await wait_alerts(alertmanager_url, unique_name, 0, timeout=10) == []
        assert engine.firing() == []
    finally:
        await engine.stop()
        await resolve_all(alertmanager_url, unique_name)


@pytest.mark.integration
async def test_restart_restores_firing_alerts_without_a_storm(
    alertmanager_url: str, unique_name: str, recorder: Recorder
) -> None:
    rf = pay_rules(alertmanager_url, unique_name, hook=recorder.url + "/hook")
    first = AlertEngine(rf)
    await first.start()
    try:
        for _ in range(3):
            first.observe(ecs("panic: db down", path="/pay", status=500))
        (before,) = await wait_alerts(alertmanager_url, unique_name, 1)
        await recorder.wait_for(1)
    finally:
        await first.stop()

    second = AlertEngine(rf)  # the consumer restarted: empty windows
    await second.start()
    try:
        assert second.firing() == [(unique_name, (("service_name", "pay-gw"), ("url_path", "/pay")))]
        await asyncio.sleep(0.01)
        for _ in range(5):  # the errors go on after the restart
            second.observe(ecs("panic: db still down", path="/pay", status=500))
        await asyncio.sleep(0.5)
        for w in second.workers.values():
            await w.idle()
        (after,) = await wait_alerts(alertmanager_url, unique_name, 1)
    finally:
        await second.stop()
        await resolve_all(alertmanager_url, unique_name)
    assert len(recorder.requests) == 1  # the webhook was not notified again within realert
    assert after["startsAt"] == before["startsAt"]  # the same alert, not a new one
    assert epoch(after["endsAt"]) > epoch(before["endsAt"])  # re-asserted by the new process


@pytest.mark.integration
async def test_restored_alert_that_does_not_recur_is_left_to_expire_not_lost(
    alertmanager_url: str, unique_name: str
) -> None:
    rf = pay_rules(alertmanager_url, unique_name, condition={"count": 1, "within": "1s"}, resolve="100ms")
    first = AlertEngine(rf)
    await first.start()
    first.observe(ecs("panic: x", status=500))
    assert len(await wait_alerts(alertmanager_url, unique_name, 1)) == 1
    await first.stop()  # stopped while firing: Alertmanager keeps the alert until its endsAt

    second = AlertEngine(rf)
    await second.start()
    try:
        assert len(second.firing()) == 1
        await asyncio.sleep(1.5)  # grace (the 1 s window) passes without a match
        assert second.firing() == []  # forgotten here, quietly (it may belong to another replica)
        (alert,) = await am_alerts(alertmanager_url, unique_name)
        assert alert["status"]["state"] == "active"  # still visible: resolves at its endsAt, not lost
    finally:
        await second.stop()
        await resolve_all(alertmanager_url, unique_name)
