"""Alertmanager smoke test: an alert posted to API v2 is listed back with its labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

pytestmark = pytest.mark.integration


async def test_posted_alert_is_listed(alertmanager_url: str, unique_name: str) -> None:
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": unique_name, "severity": "critical", "component": "checkout"},
        "annotations": {"summary": "5 errors in 1m"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
    }
    async with aiohttp.ClientSession(base_url=alertmanager_url) as http:
        async with http.post("/api/v2/alerts", json=[alert]) as resp:
            assert resp.status == 200, await resp.text()
        async with http.get("/api/v2/alerts", params={"filter": f'alertname="{unique_name}"'}) as resp:
            assert resp.status == 200
            listed = await resp.json()
    assert len(listed) == 1
    assert listed[0]["labels"] == alert["labels"]
    assert listed[0]["annotations"] == alert["annotations"]
    assert listed[0]["status"]["state"] in ("active", "unprocessed")
