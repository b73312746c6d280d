"""Consumer-group bookkeeping of the local SLS: assignment by heartbeat, release, expiry, order."""

from __future__ import annotations

from logpipe.dev.services.sls.consumer_groups import ConsumerGroup, ConsumerGroups
from logpipe.dev.services.sls.store import Logstore, encode_cursor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def setup(
    shards: int = 4, timeout: int = 10, in_order: bool = True
) -> tuple[ConsumerGroups, ConsumerGroup, Logstore, Clock]:
    clock = Clock()
    groups = ConsumerGroups(clock)
    group = ConsumerGroup("g", timeout, in_order)
    return groups, group, Logstore.with_shards("ls", shards), clock


def test_a_lone_member_gets_every_shard() -> None:
    groups, group, store, _ = setup()
    assert groups.heartbeat(group, store, "a", []) == [0, 1, 2, 3]


def test_a_second_member_gets_half_only_after_the_first_gives_them_up() -> None:
    groups, group, store, _ = setup()
    held_a = groups.heartbeat(group, store, "a", [])
    assert groups.heartbeat(group, store, "b", []) == []  # a still holds them all
    kept = groups.heartbeat(group, store, "a", held_a)
    assert len(kept) == 2
    # a still lists the two it was asked to drop: nobody else may read them yet
    assert groups.heartbeat(group, store, "b", []) == []
    assert groups.heartbeat(group, store, "a", kept) == kept  # now a no longer lists them
    got_b = groups.heartbeat(group, store, "b", [])
    assert sorted(kept + got_b) == [0, 1, 2, 3]
    assert not set(kept) & set(got_b)


def test_a_silent_member_loses_its_shards_after_the_timeout() -> None:
    groups, group, store, clock = setup(shards=2, timeout=10)
    a = groups.heartbeat(group, store, "a", [])
    groups.heartbeat(group, store, "b", [])
    a = groups.heartbeat(group, store, "a", a)
    groups.heartbeat(group, store, "a", a)
    b = groups.heartbeat(group, store, "b", [])
    assert len(a) == len(b) == 1
    clock.now += 11  # b dies
    assert groups.heartbeat(group, store, "a", a) == [0, 1]


def test_children_of_a_split_wait_for_their_parent_to_be_finished_in_an_ordered_group() -> None:
    groups, group, store, _ = setup(shards=1)
    store.append(store.shards[0], b"g0", 1)
    store.split(0, "8" + "0" * 31)
    assert groups.heartbeat(group, store, "a", []) == [0]  # only the parent: it has unread logs
    groups.update_checkpoint(group, 0, encode_cursor(1), "a", force=False)
    assert groups.heartbeat(group, store, "a", [0]) == [1, 2]  # finished parent dropped, children given


def test_an_unordered_group_reads_children_at_once() -> None:
    groups, group, store, _ = setup(shards=1, in_order=False)
    store.append(store.shards[0], b"g0", 1)
    store.split(0, "8" + "0" * 31)
    assert groups.heartbeat(group, store, "a", []) == [0, 1, 2]


def test_only_the_holder_moves_a_checkpoint_unless_forced() -> None:
    groups, group, store, _ = setup(shards=1)
    groups.heartbeat(group, store, "a", [])
    assert not groups.update_checkpoint(group, 0, encode_cursor(0), "b", force=False)
    assert groups.update_checkpoint(group, 0, encode_cursor(0), "b", force=True)
    assert groups.checkpoints(group, store, 0)[0]["consumer"] == "b"


def test_a_merged_shard_waits_for_both_parents() -> None:
    groups, group, store, _ = setup(shards=2)
    store.append(store.shards[0], b"a", 1)
    store.append(store.shards[1], b"b", 1)
    child, left, right = store.merge(0)
    assert child.parents == (0, 1) and left.status == right.status == "readonly"
    assert groups.heartbeat(group, store, "a", []) == [0, 1]
    groups.update_checkpoint(group, 0, encode_cursor(1), "a", force=False)
    assert groups.heartbeat(group, store, "a", [0, 1]) == [1]  # the right parent still has a log to read
    groups.update_checkpoint(group, 1, encode_cursor(1), "a", force=False)
    assert groups.heartbeat(group, store, "a", [1]) == [child.id]
