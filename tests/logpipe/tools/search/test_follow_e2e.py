"""End to end: lines produced to Kafka, indexed by the real `logpipe consume`, followed by
`logpipe search -f` (both subprocesses). Whatever the timing, the backlog plus the live tail print
every line of the Component exactly once, late-timestamped lines included."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from elasticsearch import AsyncElasticsearch

from consumer.index_templates import remove_templates
from logpipe.core.envelope import LineRecord, SourceMeta, document_id

pytestmark = pytest.mark.integration


def meta(component: str, pod: str) -> SourceMeta:
    return SourceMeta(
        node="node-1", namespace="shop", pod=pod, pod_uid=f"uid-{pod}", container=component,
        component=component, log_type="app", path=f"/var/log/{pod}/app.log", file_id=f"fingerprint::{pod}",
    )


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "logpipe.cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.fixture
async def topic(kafka_bootstrap: str, unique_name: str) -> AsyncIterator[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(unique_name, num_partitions=2, replication_factor=1)])
    try:
        yield unique_name
    finally:
        await admin.delete_topics([unique_name])
        await admin.close()


@pytest.fixture
async def es(es_url: str, unique_name: str) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(es_url)
    try:
        yield client
    finally:
        await client.options(ignore_status=404).indices.delete(index=f"{unique_name}-*", expand_wildcards="all")
        await remove_templates(client, unique_name)
        await client.close()


async def test_consumer_indexed_lines_are_followed_exactly_once(
    kafka_bootstrap: str, es_url: str, topic: str, es: AsyncElasticsearch
) -> None:
    prefix = topic
    consumer = await spawn(
        "consume", "--kafka-bootstrap", kafka_bootstrap, "--es-url", es_url, "--topics", topic,
        "--index-prefix", prefix, "--group-id", f"{topic}-g", "--http-port", "0",
    )
    follower = await spawn(
        "search", "-f", "--json", "-c", "pay", "--since", "1d", "--limit", "10000", "--poll-interval", "0.3",
        "--es-url", es_url, "--index-prefix", prefix,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    printed: list[str] = []
    try:
        rng = random.Random(3)
        offsets: dict[str, int] = {}
        expected: list[str] = []
        pods = [("pay", "pay-1"), ("pay", "pay-2"), ("cart", "cart-1")]
        for round_ in range(12):
            for _ in range(15):
                component, pod = rng.choice(pods)
                late = timedelta(minutes=rng.choice([0, 0, 0, 5, 120]))
                ts = (datetime.now(UTC) - late).isoformat().replace("+00:00", "Z")
                value = orjson.dumps({"ts": ts, "level": "info", "msg": f"round {round_}"})
                offset = offsets.get(pod, 0)
                offsets[pod] = offset + len(value) + 1
                rec = LineRecord(meta(component, pod), offset, value, int(time.time() * 1000))
                await producer.send(topic, value, key=rec.key, headers=rec.headers())
                if component == "pay":
                    expected.append(document_id(f"fingerprint::{pod}", offset))
            await producer.flush()
            await asyncio.sleep(0.3)

        assert follower.stdout is not None
        deadline = time.monotonic() + 90
        while len(printed) < len(expected) and time.monotonic() < deadline:
            try:
                line = await asyncio.wait_for(follower.stdout.readline(), deadline - time.monotonic())
            except TimeoutError:
                break
            if not line:
                break
            printed.append(orjson.loads(line)["_id"])
        await asyncio.sleep(1.5)  # a few more polls: nothing may come twice
    finally:
        await producer.stop()
        await stop(follower)
        await stop(consumer)
    assert follower.stdout is not None
    printed += [orjson.loads(x)["_id"] for x in (await follower.stdout.read()).splitlines() if x.strip()]
    stderr = (await follower.stderr.read()).decode() if follower.stderr else ""
    assert [i for i, n in Counter(printed).items() if n > 1] == [], stderr
    assert sorted(printed) == sorted(expected), stderr
    assert follower.returncode == 0, stderr
