"""Network faults between the agents and Kafka, for real on loopback: a real ``logpipe ship`` and a real
``logpipe consume`` talk to a broker of their own only through our fault proxies (the broker
advertises the proxies' ports: ``logpipe/dev/faults/kafka.py``), the real Elasticsearch behind.

Each fault is applied first to the shipper → Kafka path, then to the Kafka → consumer path, while
lines keep being written; and for each: every line indexed exactly once (by content: a line under two
ids would show), the shipper's registry frozen while no acknowledgement can arrive, health honest
(``/readyz`` 503 while the agent cannot deliver, ``/healthz`` 200: an outage is no reason for a
restart), ready again and every line indexed within 10 s after the fault ends, and the resume time
and peak RSS printed. The black hole is 12 s here (longer than the shipper's 5 s request timeout and
the consumer's 10 s session), the full 60 s one runs in ``bench/soak.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from logpipe.dev.faults.kafka import FaultedKafka
from logpipe.dev.faults.pipeline import (
    LOG_TYPES,
    Child,
    LogTree,
    consumer_config,
    count,
    outcome,
    registry_offsets,
    remove_from_elasticsearch,
    shipper_config,
)
from logpipe.dev.faults.tcp_proxy import FaultProxy

pytestmark = [pytest.mark.integration]

PODS = ("web-7d4b9c5f6-aaaaa", "pay-5c8d7f9b4-bbbbb", "cart-6f5d4c3b2-ccccc")
FILES = ("access.log", "app.log")
RESUME_WITHIN = 10.0


@dataclass
class Rig:
    tree: LogTree
    prefix: str
    es_url: str
    ship_proxy: FaultProxy
    consume_proxy: FaultProxy
    shipper: Child
    consumer: Child
    registry: Path
    samples: list[dict[str, object]] = field(default_factory=list)

    def write(self, n: int) -> None:
        for p in PODS:
            for f in FILES:
                self.tree.write(p, f, n)

    def sizes(self) -> dict[str, int]:
        return {str(self.tree.path(p, f)): self.tree.path(p, f).stat().st_size for p in PODS for f in FILES}

    def sample(self) -> dict[str, object]:
        s: dict[str, object] = {
            "t": time.monotonic(),
            "ship_ready": self.shipper.http("/readyz")[0], "ship_live": self.shipper.http("/healthz")[0],
            "cons_ready": self.consumer.http("/readyz")[0], "cons_live": self.consumer.http("/healthz")[0],
            "registry": registry_offsets(self.registry),
            "rss": (self.shipper.rss_mb(), self.consumer.rss_mb()),
        }
        self.samples.append(s)
        return s

    async def all_indexed(self, timeout: float) -> float:
        """Seconds until every written line is a document (fails after ``timeout``)."""
        began = time.monotonic()
        want = self.tree.total
        got = -1
        while time.monotonic() - began < timeout:
            assert self.shipper.running, f"shipper exited: {self.shipper.tail()}"
            assert self.consumer.running, f"consumer exited: {self.consumer.tail()}"
            got = await asyncio.to_thread(count, self.es_url, self.prefix)
            if got >= want:
                return time.monotonic() - began
            await asyncio.sleep(0.25)
        raise AssertionError(f"{got} of {want} documents after {timeout}s\nshipper: {self.shipper.tail(1500)}\n"
                             f"consumer: {self.consumer.tail(1500)}")

    async def until(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        began = time.monotonic()
        while not check():
            assert time.monotonic() - began < timeout, f"timed out after {timeout}s: {what}"
            await asyncio.sleep(0.2)
        return time.monotonic() - began


@pytest.fixture
async def rig(tmp_path: Path, faulted_kafka: FaultedKafka, es_url: str, unique_name: str) -> AsyncIterator[Rig]:
    prefix = f"{unique_name}-"
    ship_proxy, consume_proxy = faulted_kafka.proxies()
    await ship_proxy.start()
    await consume_proxy.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=faulted_kafka.direct)
    await admin.start()
    topics = [f"{prefix}{t}" for t in LOG_TYPES]
    # created up front: a consumer picks up topics created later only at its next metadata refresh
    await admin.create_topics([NewTopic(t, 2, 1) for t in topics])
    tree = LogTree(tmp_path, unique_name)
    for p in PODS:
        tree.add_pod(p)
    registry = tmp_path / "registry.json"
    shipper = Child(tmp_path, "ship", "a", shipper_config(tree, faulted_kafka.ship, prefix, registry))
    consumer = Child(tmp_path, "consume", "a", consumer_config(faulted_kafka.consume, es_url, prefix))
    r = Rig(tree, prefix, es_url, ship_proxy, consume_proxy, shipper, consumer, registry)
    try:
        await asyncio.to_thread(shipper.start)
        await asyncio.to_thread(consumer.start)
        yield r
    finally:
        # the proxies pass again first, so the agents can stop cleanly
        for p in (ship_proxy, consume_proxy):
            p.latency = 0.0
            p.set_mode("pass")
        await asyncio.gather(asyncio.to_thread(shipper.stop), asyncio.to_thread(consumer.stop))
        await ship_proxy.stop()
        await consume_proxy.stop()
        try:
            await admin.delete_topics([*topics, f"{prefix}deadletter", f"{prefix}links"])
        except Exception:
            pass
        await admin.close()
        await remove_from_elasticsearch(es_url, prefix)


async def hold(rig: Rig, proxy: FaultProxy, fault: str, seconds: float) -> None:
    """Apply ``fault`` for ``seconds`` (writing lines in its first half), sampling health twice a second."""
    began = time.monotonic()
    if fault == "latency":
        proxy.latency = 0.5
    elif fault != "resets":
        proxy.set_mode(fault)
    wrote = 0
    while (elapsed := time.monotonic() - began) < seconds:
        if fault == "resets":  # a reset every 3 s: reconnects in between get their 2.5 s
            proxy.set_mode("reset" if elapsed % 3.0 < 0.5 else "pass")
        if wrote < 3 and elapsed >= wrote * seconds / 6:
            rig.write(50)
            wrote += 1
        await asyncio.to_thread(rig.sample)
        await asyncio.sleep(0.5)
    proxy.latency = 0.0
    proxy.set_mode("pass")


FAULTS = {
    # fault: seconds held
    "latency": 6.0,  # 500 ms added to every chunk, both directions
    "blackhole": 12.0,  # nothing forwarded, no reset: longer than request timeouts and the session
    "resets": 9.0,  # every connection reset every 3 s
    "mute": 10.0,  # accepts connections, reads every request, never answers
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_kafka_fault_on_both_paths_loses_and_duplicates_nothing(rig: Rig, fault: str) -> None:
    rig.write(100)
    await rig.all_indexed(90)
    await rig.until(lambda: registry_offsets(rig.registry) == rig.sizes(), 20, "registry at the files' ends")
    report = []
    for path, proxy in (("shipper->kafka", rig.ship_proxy), ("kafka->consumer", rig.consume_proxy)):
        before = registry_offsets(rig.registry)
        rig.samples.clear()
        await hold(rig, proxy, fault, FAULTS[fault])
        during = list(rig.samples)
        resumed = await rig.all_indexed(60)
        ready_again = await rig.until(
            lambda: rig.shipper.http("/readyz")[0] == 200 and rig.consumer.http("/readyz")[0] == 200, 30,
            "both agents ready again")
        await rig.until(lambda: registry_offsets(rig.registry) == rig.sizes(), 20, "registry at the files' ends")
        peak = (max(float(s["rss"][0]) for s in during), max(float(s["rss"][1]) for s in during))  # type: ignore[index]
        report.append(f"{fault} {FAULTS[fault]:.0f}s on {path}: all indexed {resumed:.1f}s after it ended, "
                      f"ready again {ready_again:.1f}s after; peak RSS shipper {peak[0]:.0f} MB, "
                      f"consumer {peak[1]:.0f} MB")

        assert all(s["ship_live"] == 200 and s["cons_live"] == 200 for s in during), \
            f"an outage must not fail /healthz: {during}"
        assert resumed < RESUME_WITHIN, report[-1]
        assert peak[0] < 250 and peak[1] < 400, f"memory not bounded: {report[-1]}"
        if fault in ("blackhole", "mute") and path == "shipper->kafka":
            # nothing can be acknowledged: the registry must not move over a single sent-but-unacknowledged line
            assert all(s["registry"] == before for s in during), "the registry moved while Kafka could not ack"
            assert any(s["ship_ready"] == 503 for s in during), "/readyz must say the shipper cannot deliver"
        if fault in ("blackhole", "mute") and path == "kafka->consumer":
            assert any(s["cons_ready"] == 503 for s in during), \
                    f"/readyz must say the consumer cannot consume: {[s['cons_ready'] for s in during]}"
        if fault == "latency":
            assert all(s["ship_ready"] == 200 and s["cons_ready"] == 200 for s in during), \
                "500 ms of latency is no outage"

    result = await asyncio.to_thread(outcome, rig.es_url, rig.prefix, rig.tree)
    print("\n".join(report), "\n" + result.describe())
    assert result.exactly_once, result.describe() + f" lost e.g. {result.lost_sample}"
    assert result.documents == rig.tree.total
