"""The stage on real Kafka and Elasticsearch: two replicas share the links; a crash replays, counting nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from consumer.config import ConsumerConfig
from consumer.dependencies.link import SpanLink
from consumer.dependencies.linker import count_links, trace_edges
from consumer.dependencies.stage import DependencyStage
from consumer.dependencies.store import DependencyStore
from consumer.dependencies.templates import remove_dependency_templates
from consumer.es_client import make_client
from consumer.index_templates import install_templates, remove_templates
from tests.consumer.dependencies.test_store import jaeger_view
from tests.consumer.polling import until

pytestmark = pytest.mark.integration

NOW_US = int(time.time()) * 1_000_000


def shop_trace(i: int) -> list[SpanLink]:
    """gateway -> cart -> {inventory, pricing}; every third pricing call fails."""
    t = f"{i:032x}"
    return [
        SpanLink(t, "1", (), "gateway", "server", False, NOW_US),
        SpanLink(t, "2", ("1",), "gateway", "client", False, NOW_US + 1),
        SpanLink(t, "3", ("2",), "cart", "server", False, NOW_US + 2),
        SpanLink(t, "4", ("3",), "cart", "client", False, NOW_US + 3),
        SpanLink(t, "5", ("4",), "inventory", "server", False, NOW_US + 4),
        SpanLink(t, "6", ("3",), "cart", "client", False, NOW_US + 5),
        SpanLink(t, "7", ("6",), "pricing", "server", i % 3 == 0, NOW_US + 6),
    ]


@pytest.fixture
async def env(kafka_bootstrap: str, es_url: str, unique_name: str) -> AsyncIterator[ConsumerConfig]:
    cfg = ConsumerConfig.model_validate({
        "kafka": {
            "bootstrap": kafka_bootstrap, "group_id": unique_name, "commit_interval": 0.5, "session_timeout": 6.0,
        },
        "elasticsearch": {"url": es_url},
        "index": {"prefix": unique_name},
        "trace_dependencies": {"topic": f"{unique_name}-links", "horizon": 1.0, "flush_interval": 0.5},
    })
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(cfg.trace_dependencies.topic, num_partitions=4, replication_factor=1)])
    es = make_client(cfg.elasticsearch)
    await install_templates(es, cfg.index)
    try:
        yield cfg
    finally:
        await admin.delete_topics([cfg.trace_dependencies.topic])
        await admin.close()
        await es.indices.delete(index=f"{unique_name}-*", ignore_unavailable=True, allow_no_indices=True)
        await remove_dependency_templates(es, unique_name)  # first: they use the settings component
        await remove_templates(es, unique_name)
        await es.close()


async def produce(cfg: ConsumerConfig, links: list[SpanLink]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for link in links:
            await producer.send(cfg.trace_dependencies.topic, link.encode(), key=link.trace_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


class Replica:
    """One consumer replica's dependency stage, run as a task."""

    def __init__(self, cfg: ConsumerConfig) -> None:
        self.es = make_client(cfg.elasticsearch)
        self.stage = DependencyStage(cfg, self.es)
        self.task = asyncio.create_task(self.stage.run())

    async def stop(self) -> None:
        self.stage.request_stop()
        await self.task
        await self.es.close()

    async def crash(self) -> None:
        """Gone without writing what it holds or committing (the process was killed): only the
        Kafka client is closed, so the group hands the partitions on without a session timeout."""
        self.stage.close = self.stage.source.close  # type: ignore[method-assign]
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.es.close()


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 60.0) -> None:
    await until(check, timeout, f"not within {timeout}s", every=0.5)


async def test_two_replicas_count_each_call_once(env: ConsumerConfig) -> None:
    traces = [shop_trace(i) for i in range(30)]
    expected = count_links(e for spans in traces for e in trace_edges(spans))
    assert expected[("cart", "pricing")] == (30, 10)
    # Interleave the traces' spans, as they come from many pods at once.
    links = [spans[k] for k in range(7) for spans in traces]
    a, b = Replica(env), Replica(env)
    es = make_client(env.elasticsearch)
    view = DependencyStore(es, env.index.prefix, 300)
    try:
        # Both members in the group (one alone would take all four partitions first).
        await eventually(lambda: bool(a.stage.partitions and b.stage.partitions)
                         and len(a.stage.partitions) + len(b.stage.partitions) == 4)
        await produce(env, links)

        async def counted() -> bool:
            return await jaeger_view(view) == expected

        await eventually(counted)
        assert a.stage.links_read > 0 and b.stage.links_read > 0  # both replicas took part
    finally:
        await a.stop()
        await b.stop()
        await es.close()


async def test_a_crash_before_the_commit_replays_without_double_counting(env: ConsumerConfig) -> None:
    traces = [shop_trace(100 + i) for i in range(12)]
    expected = count_links(e for spans in traces for e in trace_edges(spans))
    es = make_client(env.elasticsearch)
    view = DependencyStore(es, env.index.prefix, 300)
    # No commit before the crash: everything the first member wrote is read and written again.
    never_commits = env.model_copy(update={"kafka": env.kafka.model_copy(update={"commit_interval": 3600.0})})
    first = Replica(never_commits)
    try:
        await produce(env, [link for spans in traces for link in spans])

        async def counted() -> bool:
            return await jaeger_view(view) == expected

        await eventually(counted)
        await first.crash()  # written, not committed: the next member reads the links again
        second = Replica(env)
        await eventually(lambda: len(second.stage.partitions) == 4)
        await eventually(lambda: second.stage.last_write is not None)  # it replayed and rewrote
        assert second.stage.links_read == 12 * 7
        assert await jaeger_view(view) == expected
        await second.stop()
    finally:
        await es.close()


async def test_a_span_later_than_the_horizon_is_linked_against_its_stored_trace(env: ConsumerConfig) -> None:
    spans = shop_trace(500)
    late = [s for s in spans if s.service == "pricing"]  # the pricing pod's file was shipped late
    es = make_client(env.elasticsearch)
    view = DependencyStore(es, env.index.prefix, 300)
    replica = Replica(env)
    try:
        await produce(env, [s for s in spans if s not in late])
        await eventually(lambda: replica.stage.last_write is not None)  # the trace was linked without it
        assert ("cart", "pricing") not in await jaeger_view(view)
        written = replica.stage.last_write
        await produce(env, late)
        await eventually(lambda: replica.stage.last_write != written)

        async def whole() -> bool:
            return await jaeger_view(view) == count_links(trace_edges(spans))

        await eventually(whole)
    finally:
        await replica.stop()
        await es.close()
