"""An HTTP JSON channel: one aiohttp session per channel, POST helper mapping errors for the worker."""

from __future__ import annotations

import ssl as ssl_
from typing import Any

import aiohttp
import orjson

from consumer.alerts.channels.base import Channel, http_error


class HttpChannel(Channel):
    """Base for channels that POST JSON; subclasses implement ``deliver`` with :meth:`post_json`."""

    _session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            # the worker's wait_for bounds each attempt; this only guards a stuck connection pool
            timeout = aiohttp.ClientTimeout(total=self.config.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post_json(self, url: str, body: Any, headers: dict[str, str] | None = None,
                        ssl: ssl_.SSLContext | bool = True) -> tuple[int, bytes]:
        """POST ``body`` as JSON; returns (status, body) for 2xx, raises for anything else.

        ``ssl``: aiohttp's TLS setting for https URLs (a context with a private CA, or False)."""
        if self._session is None:
            await self.open()
        assert self._session is not None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        async with self._session.post(url, data=orjson.dumps(body), headers=hdrs, ssl=ssl) as resp:
            data = await resp.read()
            if resp.status >= 300:
                raise http_error(resp.status, data.decode("utf-8", "replace"))
            return resp.status, data
