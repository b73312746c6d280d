"""Which Components a replica owns for the alert engine: the shipper's partitioner over the assignment."""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from consumer.ownership import ComponentOwnership, partition_of
from shipper.sinks.kafka.service import partition_of as partition_of_key
from tests.consumer.memory import LoopStory

COMPONENTS = [f"svc-{i}" for i in range(40)]


def shipper_partition(component: str, partitions: list[int]) -> int:
    """What the shipper computes for a record keyed by ``component`` (and Kafka's murmur2 default)."""
    p = partition_of_key(component.encode(), partitions)
    assert p == partitions[(murmur2(component.encode()) & 0x7FFFFFFF) % len(partitions)]
    return p


def test_the_partition_of_a_component_is_the_one_the_shipper_writes_to() -> None:
    for n in (1, 2, 3, 4, 12):
        parts = list(range(n))
        assert [partition_of(c, parts) for c in COMPONENTS] == [shipper_partition(c, parts) for c in COMPONENTS]


def test_each_component_has_exactly_one_owner_among_the_replicas() -> None:
    topics = {"logpipe-access": {0, 1, 2, 3}}
    replicas = [ComponentOwnership(["logpipe-access"], topics.get) for _ in range(2)]
    replicas[0].refresh([("logpipe-access", 0), ("logpipe-access", 2)])
    replicas[1].refresh([("logpipe-access", 1), ("logpipe-access", 3)])
    owners = [[r(c) for r in replicas] for c in COMPONENTS]
    assert all(sum(o) == 1 for o in owners)
    assert any(o[0] for o in owners) and any(o[1] for o in owners)
    for c, o in zip(COMPONENTS, owners, strict=True):
        assert o[0] == (shipper_partition(c, [0, 1, 2, 3]) in (0, 2))


def test_a_rebalance_moves_ownership() -> None:
    own = ComponentOwnership(["t"], {"t": {0, 1}}.get)
    own.refresh([("t", 0), ("t", 1)])
    assert all(own(c) for c in COMPONENTS)
    own.refresh([("t", 0)])
    assert [own(c) for c in COMPONENTS] == [shipper_partition(c, [0, 1]) == 0 for c in COMPONENTS]
    own.refresh([])
    assert not any(own(c) for c in COMPONENTS)


def test_a_component_is_owned_when_any_of_its_topic_partitions_is_assigned() -> None:
    own = ComponentOwnership(["a", "b"], {"a": {0, 1}, "b": {0, 1, 2}}.get)
    own.refresh([("b", 2)])
    assert [own(c) for c in COMPONENTS] == [shipper_partition(c, [0, 1, 2]) == 2 for c in COMPONENTS]


def test_without_metadata_every_component_is_owned() -> None:
    own = ComponentOwnership(["a"], lambda topic: None)
    own.refresh([])
    assert all(own(c) for c in COMPONENTS)


async def test_the_rebalance_listener_tells_the_alert_engine_what_it_owns() -> None:
    env = LoopStory()
    for partition in range(4):  # the topic's metadata: 4 partitions
        env.source.append(("logpipe-access", partition), b"")
    commits, engine = env.loop.commits, env.alerts
    await commits.partitions_assigned([("logpipe-access", 1), ("logpipe-access", 3)])
    owns = engine.owner
    assert owns is not None and engine.owner_calls == 1
    assert [owns(c) for c in COMPONENTS] == [shipper_partition(c, [0, 1, 2, 3]) in (1, 3) for c in COMPONENTS]
    await commits.partitions_revoked([("logpipe-access", 3)])
    assert [owns(c) for c in COMPONENTS] == [shipper_partition(c, [0, 1, 2, 3]) == 1 for c in COMPONENTS]
