"""The supervisor: restart with backoff, escalation to exit, one TaskFailed per failure, heartbeats."""

from __future__ import annotations

import asyncio
import logging

import pytest

from logpipe.core.supervisor import Heartbeat, Policy, Supervisor
from tests.logpipe.event_capture import records_of


def failures(records: list[logging.LogRecord]) -> list[dict[str, object]]:
    return [r.fields for r in records if r.getMessage() == "TaskFailed"]  # type: ignore[attr-defined]


async def until(check: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_failing_task_is_restarted_with_backoff_until_it_runs() -> None:
    sup = Supervisor("test", backoff_initial=0.01, backoff_max=0.05)
    runs: list[int] = []
    steady = asyncio.Event()

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) <= 2:
            raise RuntimeError(f"boom {len(runs)}")
        steady.set()
        await asyncio.Event().wait()

    with records_of("logpipe.supervisor") as recs:
        sup.start("work", work)
        await asyncio.wait_for(steady.wait(), 5)
    got = failures(recs)
    assert [(f["task"], f["action"], f["failures"], f["error"]) for f in got] == [
        ("work", "restart", 1, "RuntimeError: boom 1"),
        ("work", "restart", 2, "RuntimeError: boom 2"),
    ]
    assert 0 < float(got[0]["retry_in"]) < float(got[1]["retry_in"])  # type: ignore[arg-type]
    assert sup.running("work") and not sup.failed.is_set()
    await sup.stop()
    assert not sup.running("work")


async def test_too_many_failures_escalate_to_exit() -> None:
    sup = Supervisor("test", backoff_initial=0.001, max_restarts=2, restart_window=60)

    async def always_fails() -> None:
        raise ValueError("disk on fire")

    with records_of("logpipe.supervisor") as recs:
        sup.start("read", always_fails)
        await asyncio.wait_for(sup.failed.wait(), 5)
    assert [f["action"] for f in failures(recs)] == ["restart", "restart", "exit"]
    assert sup.failure.startswith("task read failed: ValueError: disk on fire (3 failures within 60s)")
    await sup.stop()


async def test_exit_policy_fails_at_once_and_a_returned_task_is_a_failure() -> None:
    sup = Supervisor("test")

    async def returns() -> None:
        return None

    with records_of("logpipe.supervisor") as recs:
        sup.start("loop", returns, Policy.EXIT)
        await asyncio.wait_for(sup.failed.wait(), 5)
    assert [(f["task"], f["action"]) for f in failures(recs)] == [("loop", "exit")]
    assert "returned" in sup.failure
    await sup.stop()


async def test_a_once_task_may_return_and_cancelling_is_not_a_failure() -> None:
    sup = Supervisor("test", backoff_initial=0.001)
    started = asyncio.Event()

    async def connect() -> None:
        return None

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    with records_of("logpipe.supervisor") as recs:
        sup.start("connect", connect, once=True)
        sup.start("forever", forever)
        await started.wait()
        await asyncio.sleep(0.02)
        await sup.stop("forever")
        await asyncio.sleep(0.02)
    assert failures(recs) == []
    assert not sup.running("forever") and not sup.failed.is_set()
    with pytest.raises(ValueError, match="already supervised"):
        sup.start("connect", connect)


async def test_no_restart_after_stop() -> None:
    sup = Supervisor("test", backoff_initial=0.05)
    runs = 0

    async def fails() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("x")

    sup.start("t", fails)
    await until(lambda: runs == 1)
    await asyncio.sleep(0)
    await sup.stop()  # the pending restart is cancelled with it
    await asyncio.sleep(0.1)
    assert runs == 1


def test_heartbeat_stalls_only_when_not_waiting_and_not_idle() -> None:
    now = [100.0]
    hb = Heartbeat("read", clock=lambda: now[0])
    now[0] += 10
    assert hb.stalled(5) and not hb.stalled(15)
    hb.beat()
    assert not hb.stalled(5)
    with hb.waiting():
        now[0] += 60
        assert not hb.stalled(5)  # waiting for capacity is not being stuck
    assert not hb.stalled(5)  # leaving the wait counts as a turn
    now[0] += 6
    assert hb.stalled(5)

    work = [False]
    delivery = Heartbeat("delivery", clock=lambda: now[0], idle=lambda: not work[0])
    now[0] += 100
    assert not delivery.stalled(5)  # nothing in flight: nothing to be late with
    work[0] = True
    assert delivery.stalled(5)


async def test_stalled_lists_the_supervised_and_watched_heartbeats() -> None:
    now = [0.0]
    sup = Supervisor("test", clock=lambda: now[0])
    read = sup.heartbeat("read")
    assert sup.heartbeat("read") is read
    disc = Heartbeat("discovery", clock=lambda: now[0])
    sup.watch(disc)
    now[0] = 30
    read.beat()
    assert [hb.name for hb in sup.stalled(20)] == ["discovery"]
