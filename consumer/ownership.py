"""Which Components this replica owns: the alert engine fires absence rules only for those.

The shipper keys every record by its Component and partitions it with Kafka's murmur2 over the
topic's sorted partitions (``shipper/sinks/kafka/service.py``: ``partition_of``), so a Component's
records of one topic land in one partition. This replica owns a Component when, in at least one consumed topic, that
partition is assigned to it: it receives (some of) the Component's records. A topic whose partition
count is not known yet (no metadata) is skipped; when no topic is known every Component is owned
(better a duplicate notification, which Alertmanager groups, than an absence nobody reports).

Limitation: ownership is per Component, not per (Component, topic). When one replica holds a
Component's ``logpipe-access`` partition and another its ``logpipe-stdout`` partition, both own it;
an absence rule on one log type can then fire on the replica that stopped receiving that type after
a rebalance, from the group state it kept. Per-topic ownership needs the rule's types in the
engine's ``set_owner`` API.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from aiokafka.partitioner import murmur2

from consumer.work import TopicPartitionKey


def partition_of(component: str, partitions: Sequence[int]) -> int:
    """The partition the shipper writes ``component``'s records to, among ``partitions`` (sorted)."""
    return partitions[(murmur2(component.encode()) & 0x7FFFFFFF) % len(partitions)]


class ComponentOwnership:
    """A predicate ``owns(component)`` over a snapshot of the assignment (pass it to ``engine.set_owner``).

    ``partitions_for(topic)``: the topic's partition ids (from the cluster metadata), or None.
    Call :meth:`refresh` with the assigned partitions after every rebalance.
    """

    def __init__(self, topics: Sequence[str], partitions_for: Callable[[str], Collection[int] | None]) -> None:
        self.topics = tuple(topics)
        self._partitions_for = partitions_for
        self._known: list[tuple[str, tuple[int, ...]]] = []
        self._assigned: frozenset[TopicPartitionKey] = frozenset()
        self._cache: dict[str, bool] = {}

    def refresh(self, assigned: Collection[TopicPartitionKey]) -> None:
        """Take the current assignment (and the topics' partition counts) into account."""
        self._assigned = frozenset(assigned)
        known = ((t, tuple(sorted(self._partitions_for(t) or ()))) for t in self.topics)
        self._known = [(t, parts) for t, parts in known if parts]
        self._cache.clear()

    def __call__(self, component: str) -> bool:
        owned = self._cache.get(component)
        if owned is None:
            assigned = self._assigned
            owned = not self._known or any((t, partition_of(component, p)) in assigned for t, p in self._known)
            if len(self._cache) < 65536:
                self._cache[component] = owned
        return owned
