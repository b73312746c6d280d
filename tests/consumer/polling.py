"""Waiting in a test on the real services: poll a condition until it holds, or fail saying which."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float, what: str, every: float = 0.2) -> None:
    """Call ``check`` (its bool, or the awaitable of one it returns) every ``every`` s until it is true;
    past ``timeout`` s fail with ``timed out: <what>``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(every)
