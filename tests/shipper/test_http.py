"""The shipper's /healthz, /readyz and /metrics: plain-text bodies, readiness from the agent."""

from __future__ import annotations

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST

from shipper import telemetry
from shipper.http import HttpServer


async def test_health_readiness_and_metrics() -> None:
    state = {"ready": (False, "registry not loaded")}
    server = HttpServer("127.0.0.1", 0, lambda: state["ready"])
    port = await server.start()
    assert port > 0 and server.port == port
    telemetry.BatchAcked("test-http", 3, 1).emit()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as r:
                assert (r.status, await r.text()) == (200, "ok\n")
            async with http.get(base + "/readyz") as r:
                assert (r.status, await r.text()) == (503, "registry not loaded\n")
            state["ready"] = (True, "ready")
            async with http.get(base + "/readyz") as r:
                assert (r.status, await r.text()) == (200, "ready\n")
            async with http.get(base + "/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"] == CONTENT_TYPE_LATEST
                text = await r.text()
        assert 'logpipe_shipper_batches_acked_total{sink="test-http"} 1.0' in text
    finally:
        await server.stop()
    await server.stop()  # idempotent


async def test_healthz_tells_what_is_stalled() -> None:
    health = {"now": (False, "stalled: read (75s)")}
    server = HttpServer("127.0.0.1", 0, lambda: (True, "ready"), lambda: health["now"])
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert (r.status, await r.text()) == (503, "stalled: read (75s)\n")
            health["now"] = (True, "ok")
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert (r.status, await r.text()) == (200, "ok\n")
    finally:
        await server.stop()
