"""The shipper's HTTP endpoint: ``/healthz``, ``/readyz`` (plain text) and Prometheus ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from logpipe.core.health_server import HealthServer

Probe = Callable[[], tuple[bool, str]]


def _always_ok() -> tuple[bool, str]:
    return True, "ok"


class HttpServer(HealthServer):
    """Serves health and metrics: ``healthy()`` decides ``/healthz`` (the agent makes progress: its
    supervisor's heartbeats), ``ready()`` decides ``/readyz`` (it can deliver and checkpoint now)."""

    def __init__(self, host: str, port: int, ready: Probe, healthy: Probe = _always_ok) -> None:
        super().__init__(host, port)
        self._ready = ready
        self._healthy = healthy

    async def healthz(self, _: web.Request) -> web.Response:
        ok, why = self._healthy()
        return web.Response(status=200 if ok else 503, text=f"{why}\n")

    async def readyz(self, _: web.Request) -> web.Response:
        ok, why = self._ready()
        return web.Response(status=200 if ok else 503, text=f"{why}\n")
