"""Alert notifications to, and firing alerts read back from, the real Alertmanager run with its own
``--web.config.file`` (TLS and basic auth with a bcrypt hash)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from consumer.alerts.engine import AlertEngine
from consumer.alerts.restore import fetch_alerts
from logpipe.core.http_auth import HttpClientAuth
from logpipe.dev.services.alertmanager_secure import SecuredAlertmanager
from tests.consumer.alerts.docs import ecs, rule_file

pytestmark = pytest.mark.integration


def channel(am: SecuredAlertmanager, **over: Any) -> dict[str, Any]:
    c = {"type": "alertmanager", "url": am.url, "username": am.username,
         "password_file": str(am.password_file), "ca_file": str(am.ca_file)}
    c.update(over)
    return c


def rules(am: SecuredAlertmanager, name: str, **over: Any) -> Any:
    spec = {"name": name, "severity": "critical", "match": {"components": ["pay-gw"], "keywords": ["panic"]},
            "condition": {"count": 1, "within": "30s"}, "annotations": {"summary": "{{count}} panics"}}
    return rule_file(spec, channels={"alertmanager": channel(am, **over)},
                     engine={"tick_interval": "100ms", "restore_from_alertmanager": False})


def auth(am: SecuredAlertmanager) -> HttpClientAuth:
    return HttpClientAuth(username=am.username, password_file=str(am.password_file), ca_file=str(am.ca_file))


async def wait_named(am: SecuredAlertmanager, name: str, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [a for a in await fetch_alerts(am.url, auth=auth(am)) if a["labels"].get("alertname") == name]
        if found:
            return found
        await asyncio.sleep(0.1)
    return []


async def test_the_engine_notifies_over_tls_with_basic_auth(secure_alertmanager: SecuredAlertmanager,
                                                            unique_name: str) -> None:
    engine = AlertEngine(rules(secure_alertmanager, unique_name))
    await engine.start()
    try:
        engine.observe(ecs("panic: card declined"))
        (alert,) = await wait_named(secure_alertmanager, unique_name)
    finally:
        await engine.stop()
    assert alert["annotations"]["summary"] == "1 panics"


async def test_alertmanager_refuses_requests_without_the_password(
    secure_alertmanager: SecuredAlertmanager, tmp_path: Path
) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("wrong")
    bad = HttpClientAuth(username="logpipe", password_file=str(wrong), ca_file=str(secure_alertmanager.ca_file))
    with pytest.raises(aiohttp.ClientResponseError) as err:
        await fetch_alerts(secure_alertmanager.url, auth=bad)
    assert err.value.status == 401
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await fetch_alerts(secure_alertmanager.url, auth=HttpClientAuth(username="logpipe",
                                                                         password_file=str(wrong)))


def test_alerts_list_reads_a_secured_alertmanager(secure_alertmanager: SecuredAlertmanager, unique_name: str) -> None:
    am = secure_alertmanager
    asyncio.run(_fire(am, unique_name))
    base = [sys.executable, "-m", "logpipe.cli.main", "alerts", "list", "--alertmanager-url", am.url, "--json"]
    env = {**os.environ, "LOGPIPE_ALERTMANAGER_CA_FILE": str(am.ca_file)}
    ok = subprocess.run([*base, "--alertmanager-user", am.username, "--alertmanager-password-file",
                         str(am.password_file)], capture_output=True, text=True, timeout=60, env=env)
    assert ok.returncode == 0, ok.stderr
    names = [orjson.loads(line)["labels"]["alertname"] for line in ok.stdout.splitlines()]
    assert unique_name in names
    by_env = subprocess.run(base, capture_output=True, text=True, timeout=60, env={
        **env, "LOGPIPE_ALERTMANAGER_USERNAME": am.username,
        "LOGPIPE_ALERTMANAGER_PASSWORD": am.password_file.read_text().strip()})
    assert by_env.returncode == 0, by_env.stderr
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2
    assert "answered 401" in refused.stderr and "fix:" in refused.stderr and "Traceback" not in refused.stderr


async def _fire(am: SecuredAlertmanager, name: str) -> None:
    engine = AlertEngine(rules(am, name))
    await engine.start()
    try:
        engine.observe(ecs("panic: card declined"))
        assert await wait_named(am, name)
    finally:
        await engine.stop()
