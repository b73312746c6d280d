"""Channel delivery: retries with backoff, rate limit, and a hanging channel never blocking observe()."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import uuid

from prometheus_client import REGISTRY

from consumer.alerts.engine import AlertEngine
from tests.consumer.alerts.conftest import Recorder
from tests.consumer.alerts.docs import ecs, rule_file


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def hook_engine(recorder: Recorder, name: str, **channel: object) -> AlertEngine:
    """Every 'panic' line fires its own group (grouped by path) to webhook channel ``name``."""
    cfg = {"type": "webhook", "url": recorder.url + "/hook", **channel}
    rf = rule_file(
        {"name": f"r-{name}", "match": {"keywords": ["panic"]}, "group_by": ["path"], "channels": [name]},
        channels={name: cfg},
    )
    return AlertEngine(rf)


async def test_failed_deliveries_are_retried_with_backoff_and_counted(recorder: Recorder) -> None:
    name = f"hook-{uuid.uuid4().hex[:8]}"
    recorder.fail_next = 2
    engine = hook_engine(recorder, name, retries=3, backoff="100ms")
    await engine.start()
    try:
        engine.observe(ecs(path="/a"))
        reqs = await recorder.wait_for(3)
    finally:
        await engine.stop()
    assert len(reqs) == 3
    assert reqs[1].at - reqs[0].at >= 0.05  # backoff 100 ms, jittered to [50, 100] ms
    assert reqs[2].at - reqs[1].at >= 0.1  # doubled
    assert metric("logpipe_alerts_channel_failures_total", channel=name) == 2
    assert metric("logpipe_alerts_notifications_sent_total", channel=name, status="firing") == 1


async def test_retries_exhausted_drops_and_counts(recorder: Recorder) -> None:
    name = f"hook-{uuid.uuid4().hex[:8]}"
    recorder.fail_next = 100
    engine = hook_engine(recorder, name, retries=2, backoff="10ms")
    await engine.start()
    engine.observe(ecs(path="/a"))
    await recorder.wait_for(3)
    await engine.stop()
    assert metric("logpipe_alerts_channel_failures_total", channel=name) == 3
    assert metric("logpipe_alerts_notifications_dropped_total", channel=name, reason="retries_exhausted") == 1


async def test_rate_limit_delays_rather_than_drops(recorder: Recorder) -> None:
    name = f"hook-{uuid.uuid4().hex[:8]}"
    engine = hook_engine(recorder, name, rate_limit=2, rate_period="1s")
    await engine.start()
    try:
        for i in range(4):
            engine.observe(ecs(path=f"/p{i}"))
        reqs = await recorder.wait_for(4)
    finally:
        await engine.stop()
    assert reqs[1].at - reqs[0].at < 0.3  # the burst of 2 goes at once
    assert reqs[3].at - reqs[0].at >= 0.8  # then 2 per second
    assert {r.body["labels"]["path"] for r in reqs} == {"/p0", "/p1", "/p2", "/p3"}


async def test_a_hanging_channel_never_blocks_observe(recorder: Recorder) -> None:
    name = f"hook-{uuid.uuid4().hex[:8]}"
    recorder.delay = 30.0  # the endpoint accepts the request and never answers in time
    engine = hook_engine(recorder, name, timeout="300ms", retries=0, queue_size=5)
    await engine.start()
    durations: list[float] = []
    # A full collection of the test process's ~150 000 objects takes 0.3-0.7 s on a loaded machine
    # and lands inside some observe() call by chance: it is not the channel blocking, so not timed.
    gc.disable()
    try:
        await asyncio.sleep(0)
        for i in range(2000):  # every document fires a new group: 2000 notifications for a stuck channel
            doc = ecs(path=f"/p{i}")
            t = time.perf_counter()
            engine.observe(doc)
            durations.append(time.perf_counter() - t)
            if i % 200 == 0:
                await asyncio.sleep(0)  # let the worker pick one up, as the consumer's loop would
        await recorder.wait_for(1)
        await asyncio.sleep(0.5)  # the first attempt times out
    finally:
        gc.enable()
        await engine.stop(flush_timeout=0.2)
    durations.sort()
    p99 = durations[int(len(durations) * 0.99)]
    # microseconds each; the bounds only leave room for a busy shared machine, far below the
    # channel's 300 ms timeout and 30 s hang that a blocking call would show
    assert statistics.median(durations) < 0.001, statistics.median(durations)
    assert p99 < 0.02, p99
    assert durations[-1] < 0.25, durations[-1]
    dropped = metric("logpipe_alerts_notifications_dropped_total", channel=name, reason="queue_full")
    assert dropped >= 2000 - 5 - 20  # all but the queue's capacity (and what the worker took)
    assert metric("logpipe_alerts_channel_failures_total", channel=name) >= 1  # the timeout, counted
