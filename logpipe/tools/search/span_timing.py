"""Where a trace's time goes: its critical path and each span's self time. Pure, on plain intervals.

**Critical path** — Jaeger UI's rule (its ``computeCriticalPath``): start at the end of the root, step
into the child that finished last, and inside it do the same; when a span has no child left that ends
before the point reached, the span itself holds the time back to its start, and the walk returns to
its parent, which looks for the child that finished last *before that start*. Children that overlap
the one on the path are skipped, so concurrent calls put only the slowest on the path.
Before walking, every child is clipped to its parent's clipped interval: a child that starts before
its parent (clock skew) or ends after it (an async child, a fire-and-forget call) only counts inside
the parent; a child wholly outside its parent (or of no length) is left off the path with its subtree.
One difference from Jaeger: a child ending *exactly* where the next one starts stays eligible
(``<=``, not ``<``), so back-to-back sequential calls are all on the path instead of the parent.

**Self time** — a span's duration minus the union of its children's intervals clipped to it: two
children running in parallel are not subtracted twice, and time a child spends outside its parent
does not make the parent's self time negative.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch ``[start, end)`` of the critical path and the node that holds it."""

    node: int
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def union_length(intervals: Iterable[tuple[int, int]], lo: int, hi: int) -> int:
    """Length of the union of ``intervals``, each clipped to ``[lo, hi]``."""
    clipped = sorted((max(s, lo), min(e, hi)) for s, e in intervals if min(e, hi) > max(s, lo))
    total, cur_s, cur_e = 0, 0, None
    for s, e in clipped:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def self_time(start: int, end: int, children: Iterable[tuple[int, int]]) -> int:
    """``end - start`` minus the time covered by at least one child inside ``[start, end]``."""
    if end <= start:
        return 0
    return (end - start) - union_length(children, start, end)


def critical_path(
    start: Sequence[int], end: Sequence[int], children: Sequence[Sequence[int]], root: int
) -> list[Section]:
    """The critical path of the tree under ``root``, as sections in time order.

    Nodes are indices: ``start[i]``/``end[i]`` their interval, ``children[i]`` their children. The
    sections tile ``[start[root], end[root]]`` without overlap (zero-length ones are dropped). A node
    reached twice (a malformed tree) is walked once. Iterative: a 10 000-deep chain does not recurse.
    """
    n = len(start)
    lo, hi = [0] * n, [0] * n
    seen = [False] * n
    kids: list[list[int]] = [[] for _ in range(n)]
    lo[root], hi[root] = start[root], max(end[root], start[root])
    seen[root] = True
    todo = [root]
    while todo:
        p = todo.pop()
        for c in children[p]:
            if seen[c]:
                continue
            cs, ce = max(start[c], lo[p]), min(max(end[c], start[c]), hi[p])
            if cs >= ce:  # wholly outside its parent, or no time at all: it did not hold the parent up
                continue
            seen[c] = True
            lo[c], hi[c] = cs, ce
            kids[p].append(c)
            todo.append(c)
    for ks in kids:
        ks.sort(key=lambda c: (hi[c], lo[c]), reverse=True)  # last finishing first

    backwards: list[Section] = []
    # Frames: [node, the time reached inside it (walking back from its end), next child to consider].
    stack: list[list[int]] = [[root, hi[root], 0]]
    while stack:
        frame = stack[-1]
        node, t, i = frame
        ks = kids[node]
        while i < len(ks) and hi[ks[i]] > t:  # overlaps what is already on the path
            i += 1
        if i == len(ks):
            if lo[node] < t:
                backwards.append(Section(node, lo[node], t))
            stack.pop()
            if stack:
                stack[-1][1] = lo[node]  # the parent continues before this child started
            continue
        child = ks[i]
        if hi[child] < t:
            backwards.append(Section(node, hi[child], t))
        frame[1], frame[2] = hi[child], i + 1
        stack.append([child, hi[child], 0])
    backwards.reverse()
    return backwards
