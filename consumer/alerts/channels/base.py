"""What every channel shares: the rendered :class:`Notification`, the :class:`Channel` interface, and
the :class:`ChannelWorker` that feeds one channel from a bounded queue with rate limit and retries.

The engine only ever calls :meth:`ChannelWorker.offer`, which never waits: a slow or failing
channel fills its own queue, and what does not fit is dropped and counted
(``logpipe_alerts_notifications_dropped_total{reason="queue_full"}``) — indexing never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from consumer.alerts.rules import ChannelBase
from consumer.alerts.telemetry import NotificationDropped, NotificationFailed, NotificationSent
from logpipe.core.secrets import redact_urls

log = logging.getLogger("logpipe.consumer.alerts")


@dataclass(frozen=True)
class Notification:
    """One alert state change, rendered: what every channel formats in its own way."""

    rule: str
    status: str
    """``firing`` or ``resolved``."""
    reason: str
    """``new``, ``realert``, ``reassert`` (Alertmanager only) or ``resolved``."""
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None
    """For Alertmanager: now + alert_ttl while firing, the resolve time once resolved."""
    generator_url: str
    at: float
    why: str = ""
    samples: tuple[str, ...] = ()
    decided_monotonic: float = field(default_factory=time.monotonic, compare=False)


class PermanentError(Exception):
    """A delivery failure that retrying cannot fix (e.g. HTTP 400): not retried."""


class Channel(ABC):
    """One destination. ``deliver`` sends a batch or raises; the worker handles retries and limits."""

    max_batch: ClassVar[int] = 1
    """Notifications per :meth:`deliver` call."""
    receives_reassert: ClassVar[bool] = False
    """True for idempotent stores (Alertmanager) that need firing alerts re-posted."""

    def __init__(self, name: str, config: ChannelBase) -> None:
        self.name = name
        self.config = config

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire connections (called once before the first delivery)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def deliver(self, batch: list[Notification]) -> None:
        """Send ``batch``; raise on failure (:class:`PermanentError` when a retry cannot help)."""


class TokenBucket:
    """``rate`` tokens per ``period`` seconds, bursting up to ``rate``."""

    def __init__(self, rate: int, period: float) -> None:
        self.capacity = float(rate)
        self.per_second = rate / period if period > 0 else float("inf")
        self.tokens = float(rate)
        self.updated = time.monotonic()

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.per_second

    def take(self) -> None:
        self.tokens -= 1


class ChannelWorker:
    """Feeds one :class:`Channel` from a bounded queue: rate limit (waits), retries with backoff.

    :meth:`offer` never blocks and returns False when the notification was dropped (queue full).
    A batch is dropped, and counted, after ``retries`` failed retries or on a :class:`PermanentError`.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.config = channel.config
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=self.config.queue_size)
        self.bucket = TokenBucket(self.config.rate_limit, self.config.rate_period)
        self._task: asyncio.Task[None] | None = None
        self._busy = False

    @property
    def name(self) -> str:
        return self.channel.name

    def offer(self, n: Notification) -> bool:
        """Queue ``n`` for delivery without waiting; False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait(n)
            return True
        except asyncio.QueueFull:
            NotificationDropped(channel=self.name, reason="queue_full", count=1).emit()
            return False

    async def start(self) -> None:
        await self.channel.open()
        self._task = asyncio.create_task(self._run(), name=f"alert-channel-{self.name}")

    async def stop(self, flush_timeout: float = 5.0) -> None:
        """Deliver what is queued for up to ``flush_timeout`` seconds, then stop and close."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle(), flush_timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        left = self.queue.qsize()
        if left:
            NotificationDropped(channel=self.name, reason="shutdown", count=left).emit()
        await self.channel.close()

    async def idle(self) -> None:
        """Return once the queue is empty and nothing is being delivered."""
        while not self.queue.empty() or self._busy:
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        while True:
            first = await self.queue.get()
            self._busy = True
            try:
                batch = [first]
                while len(batch) < self.channel.max_batch and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                wait = self.bucket.wait_time()
                while wait > 0:
                    await asyncio.sleep(wait)
                    wait = self.bucket.wait_time()
                self.bucket.take()
                await self._deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in a channel must not end its worker
                log.exception("alert channel worker error", extra={"fields": {"channel": self.name}})
                NotificationFailed(channel=self.name, error=redact_urls(repr(exc)), attempt=0).emit()
            finally:
                self._busy = False

    async def _deliver(self, batch: list[Notification]) -> None:
        cfg = self.config
        delay = cfg.backoff
        for attempt in range(cfg.retries + 1):
            try:
                await asyncio.wait_for(self.channel.deliver(batch), cfg.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                NotificationFailed(channel=self.name, error=_describe(exc), attempt=attempt).emit()
                if isinstance(exc, PermanentError) or attempt == cfg.retries:
                    NotificationDropped(channel=self.name, reason="retries_exhausted", count=len(batch)).emit()
                    return
                await asyncio.sleep(min(cfg.max_backoff, delay) * random.uniform(0.5, 1.0))
                delay *= 2
                continue
            elapsed = time.monotonic() - min(n.decided_monotonic for n in batch)
            for status in {n.status for n in batch}:
                count = sum(1 for n in batch if n.status == status)
                NotificationSent(channel=self.name, status=status, count=count, seconds=elapsed).emit()
            return


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    text = redact_urls(str(exc))  # aiohttp's errors quote the URL, and a channel's URL may hold its key
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def http_error(status: int, body: Any) -> Exception:
    """The exception for an HTTP error answer: 4xx other than 408/429 cannot be fixed by retrying."""
    msg = f"HTTP {status}: {str(body)[:300]}"
    if 400 <= status < 500 and status not in (408, 429):
        return PermanentError(msg)
    return RuntimeError(msg)
