"""Which Kafka offsets may be committed: per partition, the contiguous prefix of resolved records.

Each fetched record registers the range ``[offset, offset + 1)`` in its partition's
:class:`logpipe.core.acks.OrderedAcks`; a record is resolved when its document was indexed or its dead
letter acknowledged (CRI fragments: when the document that absorbed them is). The commit position
of a partition is the acks' low-water mark — everything before it is durable somewhere, so a crash
redelivers only work that was not finished, and deterministic ids make the redelivery harmless.

A partition's state belongs to one *generation* of its assignment: after a revoke, work of the old
generation that completes late is ignored, so it can never move the next owner's position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consumer.work import TopicPartitionKey, Work
from logpipe.core.acks import OrderedAcks


@dataclass
class PartitionState:
    """One assigned partition: its acks, the last committed position and its CRI fragments."""

    generation: int
    acks: OrderedAcks = field(default_factory=OrderedAcks)
    last_committed: int | None = None
    fragments: dict[str, list[int]] = field(default_factory=dict)  # file_id -> fragment offsets, in order

    @property
    def position(self) -> int | None:
        """The committable position (next offset to read), or None before the first record."""
        return self.acks.committed if self.acks.frontier is not None else None

    @property
    def unresolved_fragments(self) -> int:
        return sum(len(v) for v in self.fragments.values())


class PartitionOffsets:
    """The commit bookkeeping of every partition assigned to this member."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartitionKey, PartitionState] = {}
        self._generation = 0

    def assign(self, tp: TopicPartitionKey) -> int:
        """Start tracking ``tp`` afresh; returns the new generation that its work must carry."""
        self._generation += 1
        self._parts[tp] = PartitionState(generation=self._generation)
        return self._generation

    def revoke(self, tp: TopicPartitionKey) -> PartitionState | None:
        """Stop tracking ``tp``; its in-flight work no longer resolves anything."""
        return self._parts.pop(tp, None)

    def state(self, tp: TopicPartitionKey) -> PartitionState | None:
        return self._parts.get(tp)

    def generation(self, tp: TopicPartitionKey) -> int | None:
        st = self._parts.get(tp)
        return st.generation if st else None

    def partitions(self) -> list[TopicPartitionKey]:
        return list(self._parts)

    def track(self, tp: TopicPartitionKey, offset: int) -> bool:
        """Register a fetched record; False if ``tp`` is not assigned or the offset was seen already.

        Offsets the broker skipped (transaction markers, compaction) are registered and resolved at
        once, so they never hold the low-water mark back.
        """
        st = self._parts.get(tp)
        if st is None:
            return False
        frontier = st.acks.frontier
        if frontier is not None:
            if offset < frontier:
                return False  # a re-fetch after a seek: already tracked
            if offset > frontier:
                st.acks.add(frontier, offset)
                st.acks.resolve(frontier)
        st.acks.add(offset, offset + 1)
        return True

    def add_fragment(self, tp: TopicPartitionKey, file_id: str, offset: int) -> None:
        """A CRI partial fragment at Kafka ``offset``: unresolved until a document absorbs it."""
        st = self._parts.get(tp)
        if st is not None:
            st.fragments.setdefault(file_id, []).append(offset)

    def absorb(self, tp: TopicPartitionKey, file_id: str, count: int) -> list[int]:
        """Take the last ``count`` fragment offsets of ``file_id`` (the document now stands for them).

        Older fragments of the same file that the parser gave up on (no document will absorb them)
        are taken too, so they cannot hold the partition back forever.
        """
        st = self._parts.get(tp)
        if st is None or count <= 0:
            return []
        frags = st.fragments.pop(file_id, [])
        return frags

    def resolve(self, work: Work) -> bool:
        """Mark every offset of ``work`` resolved; False (a no-op) if its generation is gone."""
        st = self._parts.get(work.tp)
        if st is None or st.generation != work.generation:
            return False
        for off in work.settled_offsets():
            st.acks.resolve(off)
        return True

    def resolve_all(self, works: list[Work]) -> None:
        """:meth:`resolve` for every work of a bulk request (consecutive works share a partition)."""
        parts = self._parts
        last: tuple[str, int, int] | None = None
        resolve = None
        for work in works:
            key = (work.topic, work.partition, work.generation)
            if key != last:
                last = key
                st = parts.get((work.topic, work.partition))
                resolve = st.acks.resolve if st is not None and st.generation == work.generation else None
            if resolve is not None:
                for off in work.offsets if work.shared is None else work.settled_offsets():
                    resolve(off)

    def committable(self) -> dict[TopicPartitionKey, int]:
        """Positions that moved since they were last committed."""
        out: dict[TopicPartitionKey, int] = {}
        for tp, st in self._parts.items():
            pos = st.position
            if pos is not None and pos != st.last_committed:
                out[tp] = pos
        return out

    def mark_committed(self, positions: dict[TopicPartitionKey, int]) -> None:
        """Record that ``positions`` were committed (for partitions still of this member)."""
        for tp, pos in positions.items():
            st = self._parts.get(tp)
            if st is not None:
                st.last_committed = pos

    def unresolved(self, tp: TopicPartitionKey) -> int:
        """Records of ``tp`` fetched but not resolved, fragments waiting for their document excluded."""
        st = self._parts.get(tp)
        if st is None:
            return 0
        return st.acks.in_flight - st.unresolved_fragments
