"""Critical path and self time on hand-built trees (unit, pure)."""

from __future__ import annotations

import itertools
import random

from logpipe.tools.search.span_timing import Section, critical_path, self_time, union_length


def tree(*nodes: tuple[int, int, int | None]) -> tuple[list[int], list[int], list[list[int]]]:
    """Nodes as ``(start, end, parent index)``; returns the arrays critical_path takes."""
    start = [s for s, _, _ in nodes]
    end = [e for _, e, _ in nodes]
    children: list[list[int]] = [[] for _ in nodes]
    for i, (_, _, p) in enumerate(nodes):
        if p is not None:
            children[p].append(i)
    return start, end, children


def path(*nodes: tuple[int, int, int | None]) -> list[tuple[int, int, int]]:
    return [(s.node, s.start, s.end) for s in critical_path(*tree(*nodes), root=0)]


def test_a_leaf_is_its_own_path() -> None:
    assert path((0, 100, None)) == [(0, 0, 100)]


def test_sequential_children_are_all_on_the_path_and_the_parent_holds_the_gaps() -> None:
    # root 0-100: A 10-40, then B 40-90 (starts exactly when A ends: still sequential)
    assert path((0, 100, None), (10, 40, 0), (40, 90, 0)) == [
        (0, 0, 10), (1, 10, 40), (2, 40, 90), (0, 90, 100),
    ]


def test_of_overlapping_children_only_the_last_finishing_chain_is_on_the_path() -> None:
    # A 10-80 finishes last; B 20-60 runs inside A's time (parallel call): not on the path;
    # C 2-5 ended before A started: on it.
    assert path((0, 100, None), (10, 80, 0), (20, 60, 0), (2, 5, 0)) == [
        (0, 0, 2), (3, 2, 5), (0, 5, 10), (1, 10, 80), (0, 80, 100),
    ]


def test_parallel_children_ending_together_the_later_starting_one_wins_its_tail() -> None:
    # Two calls in parallel, B ends last: B holds 30-90, then A (ended 70) overlaps B's start: skipped.
    assert path((0, 100, None), (10, 70, 0), (30, 90, 0)) == [(0, 0, 30), (2, 30, 90), (0, 90, 100)]


def test_the_walk_goes_down_into_grandchildren_and_back_up() -> None:
    # root 0-100 -> A 10-90 -> (A1 20-50, A2 55-85); A2 -> A2a 60-80
    nodes = ((0, 100, None), (10, 90, 0), (20, 50, 1), (55, 85, 1), (60, 80, 3))
    assert path(*nodes) == [
        (0, 0, 10), (1, 10, 20), (2, 20, 50), (1, 50, 55), (3, 55, 60), (4, 60, 80), (3, 80, 85),
        (1, 85, 90), (0, 90, 100),
    ]


def test_clock_skew_a_child_starting_before_its_parent_counts_only_inside_it() -> None:
    # The child's host clock runs 10 behind: it "starts" at 0, before its parent at 10.
    assert path((10, 100, None), (0, 50, 0)) == [(1, 10, 50), (0, 50, 100)]


def test_clock_skew_a_child_wholly_outside_its_parent_is_left_off_with_its_subtree() -> None:
    assert path((10, 100, None), (0, 5, 0), (1, 4, 1)) == [(0, 10, 100)]
    assert path((10, 100, None), (200, 300, 0)) == [(0, 10, 100)]


def test_an_async_child_ending_after_its_parent_is_clipped_to_the_parent() -> None:
    # fire-and-forget: the parent answered at 100, its child went on to 300
    assert path((0, 100, None), (50, 300, 0)) == [(0, 0, 50), (1, 50, 100)]
    # ... and the async child's own child past the parent's end does not count either
    assert path((0, 100, None), (50, 300, 0), (150, 250, 1)) == [(0, 0, 50), (1, 50, 100)]


def test_zero_length_children_do_not_loop_or_make_empty_sections() -> None:
    assert path((0, 100, None), (40, 40, 0), (40, 40, 0), (100, 100, 0)) == [(0, 0, 100)]


def test_a_node_listed_twice_is_walked_once() -> None:
    start, end, children = tree((0, 100, None), (10, 90, 0))
    children[0].append(1)
    assert [(s.node, s.start, s.end) for s in critical_path(start, end, children, 0)] == [
        (0, 0, 10), (1, 10, 90), (0, 90, 100),
    ]


def test_a_very_deep_chain_does_not_recurse() -> None:
    depth = 20_000
    nodes = [(0, 2 * depth, None)] + [(i, 2 * depth - i, i - 1) for i in range(1, depth)]
    sections = critical_path(*tree(*nodes), root=0)
    assert sections[0] == Section(0, 0, 1)
    assert sum(s.length for s in sections) == 2 * depth
    assert {s.node for s in sections} == set(range(depth))


def random_tree(rng: random.Random, n: int) -> list[tuple[int, int, int | None]]:
    """Children anywhere near their parent: inside, overlapping either edge, or wholly outside."""
    nodes: list[tuple[int, int, int | None]] = [(0, 1000, None)]
    for _ in range(n - 1):
        p = rng.randrange(len(nodes))
        ps, pe, _ = nodes[p]
        s = rng.randint(ps - 50, pe + 10)
        nodes.append((s, s + rng.randint(0, max(1, (pe - ps) // 2 + 40)), p))
    return nodes


def test_sections_tile_the_root_exactly_and_follow_the_tree() -> None:
    rng = random.Random(7)
    for _ in range(300):
        nodes = random_tree(rng, rng.randint(1, 40))
        sections = critical_path(*tree(*nodes), root=0)
        assert sections[0].start == 0 and sections[-1].end == 1000
        for a, b in itertools.pairwise(sections):
            assert a.end == b.start  # contiguous, no overlap
        for sec in sections:
            s, e, _ = nodes[sec.node]
            assert s <= sec.start < sec.end <= e  # a node holds only time inside its own interval
            # ... and inside every ancestor's
            p = nodes[sec.node][2]
            while p is not None:
                assert nodes[p][0] <= sec.start and sec.end <= nodes[p][1]
                p = nodes[p][2]


def test_self_time_subtracts_the_union_of_children_inside_the_span() -> None:
    assert self_time(0, 100, []) == 100
    assert self_time(0, 100, [(10, 40), (40, 90)]) == 20
    assert self_time(0, 100, [(10, 60), (20, 50), (30, 70)]) == 40  # parallel calls counted once
    assert self_time(10, 100, [(0, 30), (90, 300)]) == 60  # skewed and async children: only inside
    assert self_time(10, 100, [(200, 300)]) == 90
    assert self_time(0, 100, [(0, 100), (0, 100)]) == 0
    assert self_time(50, 50, [(0, 100)]) == 0


def test_union_length_merges_touching_and_nested_intervals() -> None:
    assert union_length([(0, 10), (10, 20), (5, 8), (30, 35)], 0, 100) == 25
    assert union_length([(0, 10)], 20, 30) == 0
    assert union_length([], 0, 10) == 0
