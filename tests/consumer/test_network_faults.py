"""Network faults between the consumer and Elasticsearch, through our TCP fault proxy on loopback:
a black hole (no resets) while lines keep coming, then resets: every line indexed exactly once,
/healthz 200 throughout (an outage is no reason to restart), indexing resumed within 10 s after."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlparse

import pytest

from logpipe.dev.faults.tcp_proxy import FaultProxy
from tests.consumer.story import ConsumerStory

pytestmark = pytest.mark.integration


async def test_black_hole_and_resets_to_elasticsearch(story: ConsumerStory) -> None:
    u = urlparse(story.es_url)
    proxy = FaultProxy(u.hostname or "127.0.0.1", u.port or 9200)
    port = await proxy.start()
    cfg = story.config(**{"elasticsearch.url": f"http://127.0.0.1:{port}", "bulk.request_timeout": "5s",
                          "health.stall_after": 5.0})
    try:
        async with story.consumer(cfg) as app:
            await story.produce(story.access_lines(1000, file_no=1))
            await story.wait_for_docs(1000)
            proxy.set_mode("blackhole")
            await story.produce(story.access_lines(2000, file_no=2))
            healthy = []
            for _ in range(24):  # 12 s of black hole
                healthy.append(app._healthy()[0])
                await asyncio.sleep(0.5)
            assert all(healthy), "an Elasticsearch outage must not fail /healthz"
            proxy.set_mode("reset")
            await asyncio.sleep(3)
            ended = time.monotonic()
            proxy.set_mode("pass")
            await story.wait_for_docs(3000, timeout=30)
            resumed = time.monotonic() - ended
            await story.wait_committed()
        ids = await story.doc_ids()
        print(f"black hole 12 s + resets 3 s: all 3000 indexed {resumed:.1f} s after the fault ended")
        assert len(ids) == len(set(ids)) == 3000 and set(ids) == story.expected_ids()
        assert resumed < 10
    finally:
        await proxy.stop()
