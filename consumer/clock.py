"""The system clock behind ``consumer.ports.Clock``."""

from __future__ import annotations

import asyncio
import time


class SystemClock:
    """``time.monotonic``/``time.time`` and asyncio's sleeping."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        try:
            await asyncio.wait_for(event.wait(), max(0.0, timeout))
        except TimeoutError:
            return event.is_set()
        return True
