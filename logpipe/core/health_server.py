"""The HTTP endpoint of logpipe's long-running processes: ``/healthz``, ``/readyz`` and Prometheus
``/metrics`` on a small aiohttp server.

A process subclasses :class:`HealthServer` and answers ``/healthz`` and ``/readyz`` in its own format
(the shipper in plain text, the consumer in JSON); binding, ``port`` 0 and ``/metrics`` are shared.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class HealthServer:
    """Serves health, readiness and metrics; ``port`` holds the bound port once started (0 picks a free one)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Bind and serve; returns the bound port (the chosen one when ``port`` is 0)."""
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # aiohttp keeps the asyncio server here; it knows the real port
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthz(self, request: web.Request) -> web.Response:
        """The process runs."""
        raise NotImplementedError

    async def readyz(self, request: web.Request) -> web.Response:
        """The process can do its job: 200, else 503."""
        raise NotImplementedError

    async def metrics(self, _: web.Request) -> web.Response:
        """Every metric of the default Prometheus registry, in the text format."""
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
