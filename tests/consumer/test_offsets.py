"""Commit positions: only the contiguous prefix of resolved records, fragments held by their document."""

from __future__ import annotations

from consumer.offsets import PartitionOffsets
from consumer.work import Work

TP = ("logpipe-stdout", 0)


def work_for(offsets: PartitionOffsets, *kafka_offsets: int, tp: tuple[str, int] = TP) -> Work:
    gen = offsets.generation(tp)
    assert gen is not None
    return Work(
        topic=tp[0], partition=tp[1], generation=gen, offsets=list(kafka_offsets), raw=b"", headers=[],
        key=None, kafka_offset=kafka_offsets[-1] if kafka_offsets else -1,
    )


def test_nothing_is_committable_until_the_first_record_is_resolved() -> None:
    offs = PartitionOffsets()
    offs.assign(TP)
    assert offs.committable() == {}
    for o in (100, 101, 102):
        assert offs.track(TP, o)

    assert offs.committable() == {TP: 100}  # the position it started from
    offs.mark_committed({TP: 100})
    assert offs.committable() == {}


def test_out_of_order_resolution_commits_only_the_contiguous_prefix() -> None:
    offs = PartitionOffsets()
    offs.assign(TP)
    for o in range(10, 15):
        offs.track(TP, o)

    offs.resolve(work_for(offs, 12))
    offs.resolve(work_for(offs, 13))
    assert offs.committable() == {TP: 10}
    offs.resolve(work_for(offs, 10))
    assert offs.committable() == {TP: 11}
    offs.resolve(work_for(offs, 11))
    assert offs.committable() == {TP: 14}
    offs.resolve(work_for(offs, 14))
    assert offs.committable() == {TP: 15}


def test_offsets_the_broker_skipped_do_not_hold_the_position_back() -> None:
    offs = PartitionOffsets()
    offs.assign(TP)
    offs.track(TP, 5)
    offs.track(TP, 9)  # 6..8 were transaction markers or compacted away

    offs.resolve(work_for(offs, 5))
    assert offs.committable() == {TP: 9}
    offs.resolve(work_for(offs, 9))
    assert offs.committable() == {TP: 10}


def test_a_refetched_record_is_not_tracked_twice() -> None:
    offs = PartitionOffsets()
    offs.assign(TP)
    assert offs.track(TP, 1)
    assert not offs.track(TP, 1)
    assert not offs.track(("other", 0), 1)


def test_cri_fragments_stay_unresolved_until_their_document_is() -> None:
    offs = PartitionOffsets()
    offs.assign(TP)
    for o in (0, 1, 2):
        offs.track(TP, o)
    offs.add_fragment(TP, "fp::a\x00stdout", 0)
    offs.add_fragment(TP, "fp::a\x00stdout", 1)
    assert offs.unresolved(TP) == 1  # record 2; the fragments wait for their document

    doc = work_for(offs, 2)
    doc.offsets.extend(offs.absorb(TP, "fp::a\x00stdout", 2))
    assert sorted(doc.offsets) == [0, 1, 2]
    assert offs.committable() == {TP: 0}
    offs.resolve(doc)
    assert offs.committable() == {TP: 3}


def test_fragments_of_another_stream_are_not_absorbed() -> None:
    offs = PartitionOffsets()
    offs.assign(TP)
    for o in (0, 1, 2):
        offs.track(TP, o)
    offs.add_fragment(TP, "fp::a\x00stderr", 0)
    offs.add_fragment(TP, "fp::a\x00stdout", 1)

    doc = work_for(offs, 2)
    doc.offsets.extend(offs.absorb(TP, "fp::a\x00stdout", 1))
    offs.resolve(doc)

    assert offs.committable() == {TP: 0}  # the stderr fragment at 0 still waits


def test_work_of_a_revoked_generation_never_moves_the_new_owner() -> None:
    offs = PartitionOffsets()
    offs.assign(TP)
    offs.track(TP, 0)
    stale = work_for(offs, 0)
    offs.revoke(TP)
    offs.assign(TP)
    offs.track(TP, 0)

    assert not offs.resolve(stale)
    assert offs.committable() == {TP: 0}
    assert offs.unresolved(TP) == 1
