"""Elasticsearch stopped mid-run and started again: fetching pauses, nothing is lost or committed early."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.consumer.story import ConsumerStory

pytestmark = pytest.mark.integration


async def test_elasticsearch_down_mid_run_loses_nothing(story: ConsumerStory, service_manager: Any) -> None:
    await story.produce(story.access_lines(500))

    async with story.consumer() as svc:
        await story.wait_for_docs(500)
        await story.wait_committed()

        await asyncio.to_thread(service_manager.stop, "elasticsearch")
        await story.produce(story.access_lines(700))
        # The consumer keeps trying, pauses fetching, and commits nothing it could not index.
        for _ in range(100):
            if not svc.loop.indexer.available and svc.source.paused:
                break
            await asyncio.sleep(0.1)
        assert not svc.loop.indexer.available
        assert svc.source.paused
        await asyncio.sleep(1.0)
        assert await story.committed_lag() > 0

        await asyncio.to_thread(service_manager.start, "elasticsearch")
        await story.wait_for_docs(1200, timeout=120)
        await story.wait_committed()
        assert not svc.source.paused

    ids = await story.doc_ids()
    assert len(ids) == 1200
    assert set(ids) == story.expected_ids()


async def test_items_refused_by_a_write_block_are_retried_until_it_is_lifted(story: ConsumerStory) -> None:
    index = f"{story.prefix}-access-2026.11.27"
    await story.produce(story.access_lines(10))
    async with story.consumer() as svc:
        await story.wait_for_docs(10)
        await story.wait_committed()
        await story.es.indices.put_settings(index=index, settings={"index.blocks.write": True})
        try:
            await story.produce(story.access_lines(40))
            retried_before = svc.loop.indexer.retried_items
            await story._until(lambda: svc.loop.indexer.retried_items > retried_before + 40, 30, "retries")
            assert await story.count() == 10  # nothing went in ...
            assert await story.committed_lag() == 40  # ... nothing was committed ...
        finally:
            await story.es.indices.put_settings(index=index, settings={"index.blocks.write": False})
        await story.wait_for_docs(50)
        await story.wait_committed()

    assert set(await story.doc_ids()) == story.expected_ids()
    assert not await story.dead_letters(1, timeout=1)  # ... and nothing was dead-lettered
