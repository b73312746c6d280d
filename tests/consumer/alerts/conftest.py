"""Fixtures for alert tests: a local HTTP server that records what channels post to it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web


@dataclass
class Recorded:
    """One request the recorder received."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Recorder:
    """A webhook endpoint: records requests; can answer slowly, fail N times, or answer a given JSON."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answer: Any = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    fail_next: int = 0
    fail_status: int = 503
    delay: float = 0.0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(Recorded(request.path_qs, dict(request.headers), orjson.loads(raw) if raw else None))
        self.arrived.set()
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=self.fail_status, text="try later")
        return web.json_response(self.answer)

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[Recorded]:
        """Wait until ``n`` requests arrived; returns them."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < n:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    """A recording HTTP server on 127.0.0.1 (a free port); ``recorder.url`` is its base URL."""
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        rec.release.set()  # let slow handlers finish, so the server stops at once
        await runner.cleanup()
