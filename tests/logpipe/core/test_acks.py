import random

import pytest

from logpipe.core.acks import OrderedAcks


def test_committed_moves_only_over_contiguous_prefix() -> None:
    acks = OrderedAcks()
    acks.add(0, 10)
    acks.add(10, 25)
    acks.add(25, 30)
    assert acks.resolve(10) == 0  # the first range is still pending
    assert acks.resolve(25) == 0
    assert acks.resolve(0) == 30
    assert acks.in_flight == 0


def test_random_resolution_order_never_passes_a_pending_range() -> None:
    rng = random.Random(7)
    acks = OrderedAcks()
    starts = []
    pos = 100
    for _ in range(200):
        n = rng.randint(1, 50)
        acks.add(pos, pos + n)
        starts.append(pos)
        pos += n
    assert acks.committed == 100  # starts at the first range's start
    order = starts[:]
    rng.shuffle(order)
    resolved: set[int] = set()
    for s in order:
        c = acks.resolve(s)
        resolved.add(s)
        # every range starting below the committed position must be resolved
        assert all(x in resolved for x in starts if x < c)
    assert acks.committed == pos


def test_ranges_must_be_contiguous() -> None:
    acks = OrderedAcks()
    acks.add(0, 5)
    with pytest.raises(ValueError):
        acks.add(6, 8)


def test_reset_forgets_pending() -> None:
    acks = OrderedAcks()
    acks.add(0, 5)
    acks.reset(0)
    acks.add(0, 3)
    assert acks.resolve(0) == 3
