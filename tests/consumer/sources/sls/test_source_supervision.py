"""The SLS source's membership task under the consumer's supervisor, against the local SLS server:
an unexpected failure is restarted and the member keeps its shards, one that keeps failing makes
the process exit, a heartbeat call that hangs turns the health check failing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from consumer.sources.sls.service import SlsConsumerService
from consumer.sources.sls.source import SlsSource
from logpipe.core.supervisor import Supervisor
from logpipe.dev.services.sls import SlsServer
from tests.consumer.sources.sls.test_source import PROJECT, Listener, sls, source_config
from tests.logpipe.event_capture import records_of

__all__ = ["sls"]  # the fixture


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)


def inject(monkeypatch: pytest.MonkeyPatch, fail: Any) -> dict[str, int]:
    """Heartbeat calls go through ``fail(n)`` first (n counts from 1); returns the call counter."""
    real = SlsConsumerService.heartbeat
    calls = {"n": 0}

    async def heartbeat(self: SlsConsumerService, logstore: str, held: Any) -> list[int]:
        calls["n"] += 1
        await fail(calls["n"])
        return await real(self, logstore, held)

    monkeypatch.setattr(SlsConsumerService, "heartbeat", heartbeat)
    return calls


async def test_a_membership_task_that_raises_is_restarted_and_keeps_the_shards(
        sls: SlsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(n: int) -> None:
        if n == 3:
            raise RuntimeError("injected: the heartbeat path is broken")

    calls = inject(monkeypatch, fail)
    sup = Supervisor("consumer", backoff_initial=0.1)
    listener = Listener()
    source = SlsSource(source_config(sls), supervisor=sup)
    with records_of("logpipe.supervisor", logging.ERROR) as recs:
        await source.start(listener)
        try:
            held = set(listener.held)
            assert held
            await until(lambda: calls["n"] >= 3, 10, "the failing heartbeat")
            # heartbeats go on (a dead task would lose the shards after the group's timeout)
            await until(lambda: calls["n"] >= 8 and source.healthy, 10, "heartbeats after the restart")
            group = sls.groups.get(PROJECT, "logpipe-access", "indexers")
            assert group is not None and set(group.owner.values()) == {"c1"}  # still a member, still the owner
            last = group.members["c1"]
            await until(lambda: group.members["c1"] > last, 5, "another heartbeat")
            assert listener.held == held and not listener.revoked
            assert sup.stalled(1.0) == [] and not sup.failed.is_set()
        finally:
            await source.close()
    fields = [r.fields for r in recs]  # type: ignore[attr-defined]
    assert [(f["task"], f["action"]) for f in fields] == [("sls-heartbeat", "restart")]
    assert "the heartbeat path is broken" in fields[0]["error"]


async def test_a_membership_task_that_keeps_failing_fails_the_process(
        sls: SlsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(n: int) -> None:
        if n > 1:
            raise RuntimeError("injected: the heartbeat path is broken for good")

    inject(monkeypatch, fail)
    sup = Supervisor("consumer", backoff_initial=0.05, backoff_max=0.1, max_restarts=2)
    source = SlsSource(source_config(sls), supervisor=sup)
    await source.start(Listener())
    try:
        await asyncio.wait_for(sup.failed.wait(), 20)  # the app then commits and exits 1
        assert "sls-heartbeat" in sup.failure and "for good" in sup.failure
    finally:
        await source.close()


async def test_a_hung_heartbeat_call_turns_health_failing(sls: SlsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hang = asyncio.Event()

    async def fail(n: int) -> None:
        if hang.is_set():
            await asyncio.Event().wait()  # a request that never returns

    inject(monkeypatch, fail)
    sup = Supervisor("consumer")
    source = SlsSource(source_config(sls), supervisor=sup)
    assert sup.stalled(0.0) == []  # not started: nothing to stall
    await source.start(Listener())
    try:
        await asyncio.sleep(1.5)
        assert sup.stalled(1.0) == []  # beating
        hang.set()
        await until(lambda: [hb.name for hb in sup.stalled(1.0)] == ["sls-membership"], 10, "stalled")
    finally:
        await source.close()
    assert sup.stalled(0.0) == []  # closed: nothing runs
