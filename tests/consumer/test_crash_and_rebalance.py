"""A consumer killed with -9 mid-run, and two consumers rebalancing mid-run: zero missing, zero duplicates.

Duplicates are impossible by construction (``_id`` comes from the line's file identity and offset, so a
redelivered line overwrites itself); these stories check that every line's id is there exactly once
and that the group's committed offsets reach the end of the topics.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.consumer.story import ConsumerStory

pytestmark = pytest.mark.integration

SLOW = {"bulk.max_actions": 200, "bulk.concurrency": 1}  # a run that lasts long enough to interrupt


async def test_a_consumer_killed_mid_run_and_restarted_loses_and_duplicates_nothing(
    story: ConsumerStory, tmp_path: Path
) -> None:
    total = 20_000
    await story.produce(story.access_lines(total // 2, file_no=1) + story.access_lines(total // 2, file_no=2))
    cfg = story.config(**SLOW)

    first = story.spawn_cli(cfg, tmp_path)
    try:
        indexed = await story.wait_for_docs(2_000, timeout=60, proc=first)
    finally:
        story.kill9(first)
    assert indexed < total, "the consumer finished before it was killed: the test proves nothing"
    assert await story.committed_lag() > 0

    second = story.spawn_cli(cfg, tmp_path)
    try:
        await story.wait_for_docs(total, timeout=120, proc=second)
        await story.wait_committed()
    finally:
        second.terminate()
        second.wait(30)

    ids = await story.doc_ids()
    assert len(ids) == total
    assert len(set(ids)) == total
    assert set(ids) == story.expected_ids()
    assert second.returncode == 0  # SIGTERM: a clean stop


async def test_two_consumers_rebalancing_mid_run_lose_and_duplicate_nothing(story: ConsumerStory) -> None:
    cfg = story.config(**SLOW)
    await story.produce(story.access_lines(4_000, file_no=1))

    async with story.consumer(cfg) as a:
        await story.wait_for_docs(500)
        async with story.consumer(cfg) as b:  # joins the group: partitions move from a to b
            await story.produce(story.access_lines(4_000, file_no=2))
            await story._until(lambda: bool(b.loop.offsets.partitions()), 30, "b to get partitions")
            assert len(a.loop.offsets.partitions()) + len(b.loop.offsets.partitions()) == 4
            await story.wait_for_docs(2_000)
        # b left the group mid-run: a takes every partition back.
        await story._until(lambda: len(a.loop.offsets.partitions()) == 4, 30, "a to take every partition back")
        await story.produce(story.cri_lines([f"stdout line {i}" for i in range(1_000)], file_no=1))
        await story.produce(story.cri_lines([f"stdout line {i}" for i in range(1_000)], file_no=2))
        await story.wait_for_docs(story.line_count, timeout=120)
        await story.wait_committed()

    ids = await story.doc_ids()
    assert len(ids) == story.line_count == 10_000
    assert set(ids) == story.expected_ids()
    assert not await asyncio.wait_for(story.committed_lag(), 30)
