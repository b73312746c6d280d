"""Static membership on the real Kafka: a clean stop removes the member, so the survivor takes its
partitions at once (not after the session timeout); a failure exit keeps it, so the restarted
container takes them back under the same instance id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from consumer.app import ConsumerApp
from consumer.sources.kafka import KafkaSource
from consumer.sources.kafka.membership import leave_as_static_member
from tests.consumer.polling import until
from tests.consumer.story import ConsumerStory

pytestmark = pytest.mark.integration

SESSION = 30.0  # much longer than any wait below: whatever moves here moved without it expiring


async def members(story: ConsumerStory) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=story.kafka)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([story.group])
        return len(described.groups[0][5])  # (error, group, state, protocol_type, protocol, members, ...)
    finally:
        await admin.close()


def replica(story: ConsumerStory, name: str) -> ConsumerApp:
    return ConsumerApp(story.config(**{"kafka.instance_id": name, "kafka.session_timeout": SESSION}), tune_gc=False)


async def test_a_clean_stop_of_a_static_member_hands_its_partitions_over_at_once(story: ConsumerStory) -> None:
    r1, r2 = replica(story, "r1"), replica(story, "r2")
    t1, t2 = asyncio.create_task(r1.run()), asyncio.create_task(r2.run())
    try:
        total = 2 * story.partitions  # both topics
        await until(lambda: len(r1.loop.offsets.partitions()) + len(r2.loop.offsets.partitions()) == total
                    and len(r2.loop.offsets.partitions()) > 0, 60, "both replicas assigned")
        r2.request_stop()  # SIGTERM
        assert await asyncio.wait_for(t2, 30) == 0
        assert await members(story) == 1  # removed on the way out, not kept for the session timeout
        await until(lambda: len(r1.loop.offsets.partitions()) == total, SESSION / 2, "the survivor takes all")
        await story.produce(story.access_lines(50, file_no=1) + story.access_lines(50, file_no=2))
        await story.wait_for_docs(100)
        await story.wait_committed()
    finally:
        r1.request_stop()
        r2.request_stop()
        await asyncio.wait_for(asyncio.gather(t1, t2, return_exceptions=True), 60)


async def test_a_failure_exit_keeps_the_static_member_for_its_restart(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    real = KafkaSource.fetch

    async def fetch(self: KafkaSource, timeout_s: float) -> Any:
        if self.assignment():
            raise RuntimeError("injected: fetch broken")
        return await real(self, timeout_s)

    monkeypatch.setattr(KafkaSource, "fetch", fetch)
    assert await asyncio.wait_for(replica(story, "r1").run(), 60) == 1
    assert await members(story) == 1  # still a member: the kubelet restarts the container at once
    monkeypatch.undo()
    await story.produce(story.access_lines(20))
    restarted = replica(story, "r1")
    task = asyncio.create_task(restarted.run())
    try:
        # Same instance id: its partitions come back without waiting for the session to expire.
        await until(lambda: len(restarted.loop.offsets.partitions()) == 2 * story.partitions, SESSION / 2,
                    "partitions back")
        await story.wait_for_docs(20)
    finally:
        restarted.request_stop()
        assert await asyncio.wait_for(task, 60) == 0


async def test_leaving_needs_a_static_member_and_a_failure_is_reported_not_raised(story: ConsumerStory) -> None:
    dynamic = story.config(**{"kafka.instance_id": ""}).kafka
    assert await leave_as_static_member(dynamic) is False
    unknown = story.config(**{"kafka.instance_id": "never-joined"}).kafka
    assert await leave_as_static_member(unknown, timeout=5.0) is False  # UnknownMemberId: logged, not raised
