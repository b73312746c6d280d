"""The shipper's HTTP endpoint: ``/healthz``, ``/readyz`` (plain text) and Prometheus ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from logpipe.core.health_server import HealthServer


class HttpServer(HealthServer):
    """Serves health and metrics; ``ready()`` decides ``/readyz`` (registry loaded and sink connected)."""

    def __init__(self, host: str, port: int, ready: Callable[[], tuple[bool, str]]) -> None:
        super().__init__(host, port)
        self._ready = ready

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, _: web.Request) -> web.Response:
        ok, why = self._ready()
        return web.Response(status=200 if ok else 503, text=f"{why}\n")
