"""Trying again: jittered exponential backoff, and "until it works" for the dependencies at start-up."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from consumer.ports import Clock
from consumer.telemetry import log
from logpipe.core.es_connection import EsRefused
from logpipe.core.kafka_security import KafkaSecurityError


def backoff_seconds(attempt: int, initial: float, cap: float) -> float:
    """Jittered exponential backoff: ``initial * 2**(attempt-1)`` capped at ``cap``, times 0.5..1."""
    base = min(cap, initial * (2 ** min(max(attempt - 1, 0), 20)))
    return base * random.uniform(0.5, 1.0)


async def until_ok(
    event: str,
    step: Callable[[], Awaitable[None]],
    stopping: asyncio.Event,
    clock: Clock,
    initial: float,
    cap: float,
) -> bool:
    """Run ``step`` until it succeeds (a dependency not up yet), logging ``event`` per failure with a
    backoff between tries; False if ``stopping`` was set first."""
    attempt = 0
    while not stopping.is_set():
        try:
            await step()
            return True
        except Exception as exc:
            attempt += 1
            # These are already the one line to show (where, what was refused, the fix).
            error = str(exc) if isinstance(exc, KafkaSecurityError | EsRefused) else repr(exc)[:300]
            log.warning(event, extra={"fields": {"error": error, "attempt": attempt}})
            await clock.wait(stopping, backoff_seconds(attempt, initial, cap))
    return False
