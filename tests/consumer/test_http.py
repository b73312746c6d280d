"""The consumer's /healthz, /readyz and /metrics: JSON bodies, readiness details from the service."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST

from consumer import telemetry
from consumer.http import HealthServer


async def test_health_readiness_and_metrics() -> None:
    state: dict[str, tuple[bool, dict[str, Any]]] = {"ready": (False, {"kafka": False, "partitions": 0})}
    server = HealthServer("127.0.0.1", 0, lambda: state["ready"])
    port = await server.start()
    assert port > 0 and server.port == port
    telemetry.IndexDeleted("logpipe-test-http-2026.01.01", 7).emit()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as r:
                assert (r.status, await r.json()) == (200, {"status": "ok"})
            async with http.get(base + "/readyz") as r:
                assert (r.status, await r.json()) == (503, {"ready": False, "kafka": False, "partitions": 0})
            state["ready"] = (True, {"kafka": True})
            async with http.get(base + "/readyz") as r:
                assert (r.status, await r.json()) == (200, {"ready": True, "kafka": True})
            async with http.get(base + "/metrics") as r:
                assert r.headers["Content-Type"] == CONTENT_TYPE_LATEST
                text = await r.text()
        assert "logpipe_consumer_indices_deleted_total" in text
    finally:
        await server.close()
