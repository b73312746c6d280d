"""``/healthz`` (the process runs), ``/readyz`` (it can do its job) and Prometheus ``/metrics``, in JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from logpipe.core import health_server

ReadyProbe = Callable[[], tuple[bool, dict[str, Any]]]


def _always_ok() -> tuple[bool, dict[str, Any]]:
    return True, {}


class HealthServer(health_server.HealthServer):
    """The consumer's endpoint: ``/healthz`` answers ``{"status": "ok"|"failing", **detail}`` from
    ``healthy()`` (the consume loop's heartbeat and the supervisor), ``/readyz`` answers
    ``{"ready": ..., **detail}`` from ``ready()``; ``/metrics`` is the default registry followed by
    ``extra_metrics()`` (the span metrics, ``consumer/spanmetrics/exposition.py``)."""

    def __init__(
        self, host: str, port: int, ready: ReadyProbe, healthy: ReadyProbe = _always_ok,
        extra_metrics: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(host, port)
        self._ready = ready
        self._healthy = healthy
        self._extra_metrics = extra_metrics

    async def metrics(self, request: web.Request) -> web.Response:
        if self._extra_metrics is None:
            return await super().metrics(request)
        body = generate_latest(REGISTRY) + self._extra_metrics().encode()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, _: web.Request) -> web.Response:
        ok, detail = self._healthy()
        return web.json_response({"status": "ok" if ok else "failing", **detail}, status=200 if ok else 503)

    async def readyz(self, _: web.Request) -> web.Response:
        ok, detail = self._ready()
        return web.json_response({"ready": ok, **detail}, status=200 if ok else 503)

    async def close(self) -> None:
        """Stop serving (the service's name for :meth:`stop`)."""
        await self.stop()
