"""A new consumer group that starts where the topics end now, so a demo reads only what it writes.

The shared ``logpipe-*`` topics keep what every earlier run (and test) shipped. The consumer's group
starts at the earliest offset when it has none committed, so a fresh group would re-read and
re-index all of it (610 000 old records made a warm demo take 93 s). Committing the current end
offset of every partition for the new group before its consumer starts makes the consumer begin
at the first record written after that moment.

The demo creates the topics that do not exist yet first (as the shipper would, with the shipper's
partition count): a group subscribed to topics that appear one by one while it reads rebalances at
each, and fetches again what it had not committed yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition


@dataclass(frozen=True, slots=True)
class GroupStart:
    """What :func:`start_group_at_end` committed: per partition, the offset the group starts at."""

    group: str
    offsets: dict[TopicPartition, int]
    skipped: int  # records already in those partitions (end minus beginning), left unread

    def describe(self) -> str:
        topics = sorted({tp.topic for tp in self.offsets})
        if not topics:
            return f"consumer group {self.group}: the topics are new, nothing to skip"
        return (f"consumer group {self.group} starts at the current end of {', '.join(topics)}:"
                f" {self.skipped} records of earlier runs are not read again")


async def ensure_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> list[str]:
    """Create those ``topics`` that do not exist (``partitions`` each, one replica); returns the created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        missing = sorted(set(topics) - set(await admin.list_topics()))
        if missing:
            await admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
        return missing
    finally:
        await admin.close()


async def partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of those ``topics`` that exist now (read from the brokers, not a client's cache)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics()) & set(topics)
        if not existing:
            return []
        described = await admin.describe_topics(sorted(existing))
    finally:
        await admin.close()
    return sorted(
        TopicPartition(t["topic"], p["partition"]) for t in described if t["error_code"] == 0 for p in t["partitions"]
    )


async def start_group_at_end(bootstrap: str, group: str, topics: Sequence[str]) -> GroupStart:
    """Commit, for ``group``, the end offset of every partition of those ``topics`` that exist."""
    tps = await partitions(bootstrap, topics)
    if not tps:
        return GroupStart(group, {}, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        await consumer.commit(ends)
        return GroupStart(group, dict(ends), sum(ends[tp] - begins[tp] for tp in tps))
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
    """The offsets ``group`` has committed (-1 where none), e.g. to see how far a run read."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        out = {}
        for tp in partitions:
            offset = await consumer.committed(tp)
            out[tp] = -1 if offset is None else offset
        return out
    finally:
        await consumer.stop()
