"""Nothing runs unwatched: every long-running task of a process is started by one :class:`Supervisor`.

A task is started by name with a :class:`Policy` (Vector's topology; Python's ``asyncio.TaskGroup``):

- ``RESTART``: a task that raises, or returns although it should run forever, is started again after
  a jittered exponential backoff (``backoff_initial`` doubling up to ``backoff_max``; reset once the
  task ran ``healthy_after`` seconds). More than ``max_restarts`` failures within ``restart_window``
  escalate to ``EXIT``: a task that keeps failing is a process that has stopped doing its job.
- ``EXIT``: the supervisor records the failure and sets :attr:`Supervisor.failed`; the process's
  composition root then flushes what is safe (the shipper: acknowledged offsets only) and exits
  non-zero, so the kubelet restarts it.

Each failure is one named event, :class:`TaskFailed` (one log record, one counter). A task started
``once=True`` may return (a connect loop that connected); cancelling is never a failure.

Liveness reads :class:`Heartbeat` s that the work loops themselves advance (``beat()`` once per turn);
a loop that waits for a legitimate reason (no capacity, nothing to do) says so with ``waiting()``, so
an outage downstream does not look like a hang. :meth:`Supervisor.stalled` names the heartbeats that
did not turn for ``after`` seconds while not waiting: ``/healthz`` fails on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from logpipe.core.events import Event, EventLog

log = logging.getLogger("logpipe.supervisor")
_log = EventLog(log)

TASK_FAILURES = Counter("logpipe_task_failures", "Supervised tasks that failed, by process, task and action",
                        ["process", "task", "action"])

Clock = Callable[[], float]
TaskFactory = Callable[[], Coroutine[Any, Any, None]]


class Policy(enum.Enum):
    """What the supervisor does when a task fails."""

    RESTART = "restart"
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class TaskFailed(Event):
    """A supervised task raised or ended unexpectedly; ``action`` says what happens next."""

    process: str
    task: str
    error: str
    action: str  # restart | exit
    failures: int  # within the restart window, this one included
    retry_in: float = 0.0

    def emit(self) -> None:
        _log(logging.ERROR, "TaskFailed", self.fields())
        TASK_FAILURES.labels(process=self.process, task=self.task, action=self.action).inc()


class Heartbeat:
    """A work loop's proof of progress: ``beat()`` each turn; ``waiting()`` while it legitimately waits."""

    __slots__ = ("_clock", "_idle", "_waiting", "last", "name")

    def __init__(self, name: str, clock: Clock = time.monotonic, idle: Callable[[], bool] | None = None) -> None:
        self.name = name
        self._clock = clock
        self._idle = idle  # True while the loop has no work (then it cannot be stalled)
        self.last = clock()
        self._waiting = 0

    def beat(self) -> None:
        self.last = self._clock()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Inside, the loop waits for something outside its control (capacity, work): not stalled."""
        self._waiting += 1
        try:
            yield
        finally:
            self._waiting -= 1
            self.beat()

    @property
    def is_waiting(self) -> bool:
        return self._waiting > 0 or (self._idle is not None and self._idle())

    def age(self) -> float:
        return self._clock() - self.last

    def stalled(self, after: float) -> bool:
        return not self.is_waiting and self.age() > after


@dataclass(slots=True)
class _Spec:
    name: str
    factory: TaskFactory
    policy: Policy
    once: bool
    task: asyncio.Task[None] | None = None
    started: float = 0.0
    failures: list[float] = field(default_factory=list)  # monotonic times within the window
    delay: float = 0.0


class Supervisor:
    """Starts named tasks, restarts or escalates their failures, and keeps their heartbeats."""

    def __init__(
        self,
        process: str,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        healthy_after: float = 60.0,
        max_restarts: int = 5,
        restart_window: float = 300.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.process = process
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.healthy_after = healthy_after
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self._clock = clock
        self._specs: dict[str, _Spec] = {}
        self._heartbeats: dict[str, Heartbeat] = {}
        self._restarts: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.failed = asyncio.Event()
        """Set when a task failed under (or escalated to) ``EXIT``; :attr:`failure` says which and why."""
        self.failure = ""

    # --- starting and stopping ------------------------------------------------------------------

    def start(self, name: str, factory: TaskFactory, policy: Policy = Policy.RESTART, *, once: bool = False) -> None:
        """Run ``factory()`` as task ``name`` (a factory, not a coroutine: a restart needs a new one)."""
        if name in self._specs:
            raise ValueError(f"task {name!r} is already supervised")
        spec = _Spec(name, factory, policy, once)
        self._specs[name] = spec
        self._launch(spec)

    def _launch(self, spec: _Spec) -> None:
        spec.started = self._clock()
        spec.task = asyncio.get_running_loop().create_task(spec.factory(), name=spec.name)
        spec.task.add_done_callback(lambda t, s=spec: self._ended(s, t))  # type: ignore[misc]

    def running(self, name: str) -> bool:
        spec = self._specs.get(name)
        return spec is not None and spec.task is not None and not spec.task.done()

    async def stop(self, *names: str) -> None:
        """Cancel the named tasks (all when none are named) and wait for them; no restarts after this."""
        if not names:
            self._stopping = True
            for r in list(self._restarts):
                r.cancel()
        specs = [self._specs[n] for n in names if n in self._specs] if names else list(self._specs.values())
        for s in specs:
            s.policy, s.once = Policy.EXIT, True  # a task cancelled on purpose is not restarted
        tasks = [s.task for s in specs if s.task is not None and not s.task.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for n in names or list(self._specs):
            self._specs.pop(n, None)

    async def finish(self, name: str, timeout: float) -> None:
        """Let task ``name`` end by itself (its own stop was requested) within ``timeout`` seconds,
        else cancel it; whatever it ends with, it is not restarted and is no failure."""
        spec = self._specs.pop(name, None)  # from now on _ended and a pending restart ignore it
        if spec is None or spec.task is None:
            return
        task = spec.task
        _, pending = await asyncio.wait({task}, timeout=timeout)
        if pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    # --- failures -------------------------------------------------------------------------------

    def _ended(self, spec: _Spec, task: asyncio.Task[None]) -> None:
        if self._specs.get(spec.name) is not spec or self._stopping:
            return
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None and spec.once:
            return
        error = f"{type(exc).__name__}: {exc}" if exc is not None else "returned (it should run until stopped)"
        now = self._clock()
        if now - spec.started >= self.healthy_after:
            spec.delay = 0.0  # it ran well for a while: start over with a short backoff
        spec.failures = [t for t in spec.failures if now - t < self.restart_window] + [now]
        policy = spec.policy
        if policy is Policy.RESTART and len(spec.failures) > self.max_restarts:
            policy = Policy.EXIT
            error += f" ({len(spec.failures)} failures within {self.restart_window:g}s)"
        if policy is Policy.EXIT:
            TaskFailed(self.process, spec.name, error, "exit", len(spec.failures)).emit()
            if not self.failed.is_set():
                self.failure = f"task {spec.name} failed: {error}"
                self.failed.set()
            return
        spec.delay = min(self.backoff_max, spec.delay * 2 if spec.delay else self.backoff_initial)
        delay = round(spec.delay * random.uniform(0.8, 1.2), 3)
        TaskFailed(self.process, spec.name, error, "restart", len(spec.failures), delay).emit()
        r = asyncio.get_running_loop().create_task(self._restart_later(spec, delay))
        self._restarts.add(r)
        r.add_done_callback(self._restarts.discard)

    async def _restart_later(self, spec: _Spec, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._stopping and self._specs.get(spec.name) is spec:
            self._launch(spec)

    # --- heartbeats -----------------------------------------------------------------------------

    def heartbeat(self, name: str, idle: Callable[[], bool] | None = None) -> Heartbeat:
        """The heartbeat ``name`` (created on first use); the loop that owns it calls ``beat()``."""
        hb = self._heartbeats.get(name)
        if hb is None:
            hb = self._heartbeats[name] = Heartbeat(name, self._clock, idle)
        return hb

    def watch(self, hb: Heartbeat) -> None:
        """Include a heartbeat made elsewhere (a component's own) in :meth:`stalled`."""
        self._heartbeats[hb.name] = hb

    def stalled(self, after: float) -> list[Heartbeat]:
        """Heartbeats that did not turn for ``after`` seconds while not waiting."""
        return [hb for hb in self._heartbeats.values() if hb.stalled(after)]
