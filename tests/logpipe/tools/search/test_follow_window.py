"""The seen-id window of follow mode (unit): bound, dedupe, pruning."""

from __future__ import annotations

from logpipe.tools.search.follow import SeenWindow


def test_starts_one_overlap_before_now_and_moves_with_each_poll_start() -> None:
    w = SeenWindow.starting_at(100_000, overlap_ms=30_000)
    assert w.lower_ms == 70_000
    w.advance(poll_started_ms=101_000)
    assert w.lower_ms == 71_000
    w.advance(poll_started_ms=90_000)  # a clock step back never moves the bound back
    assert w.lower_ms == 71_000


def test_unseen_drops_printed_and_repeated_ids() -> None:
    w = SeenWindow.starting_at(100_000, overlap_ms=30_000)
    w.mark("a", 95_000)
    assert w.unseen([("a", 95_000), ("b", 96_000), ("b", 96_000), ("c", 97_000)]) == [("b", 96_000), ("c", 97_000)]


def test_ids_below_the_bound_are_forgotten_the_rest_kept() -> None:
    w = SeenWindow.starting_at(100_000, overlap_ms=30_000)
    w.mark("old", 71_000)
    w.mark("new", 99_000)
    w.mark("new", 80_000)  # a redelivery keeps the latest index time
    w.advance(poll_started_ms=110_000)
    assert w.seen == {"new": 99_000}
