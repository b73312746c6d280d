"""The sliding latency window of one group: p50/p90/p95/p99 (DDSketch) or the mean, in bounded memory.

Why DDSketch (the ``ddsketch`` package, Datadog's reference implementation): its quantiles have a
*guaranteed* relative error (1 % here: a reported p99 of 800 ms is the true p99 ±8 ms, whatever the
distribution), sketches merge exactly (sub-windows combine into the window), and the collapsing
variant caps its bins, so memory per group is bounded however many values arrive. A t-digest has
no such bound on its error at the tails that latency alerts look at.

The window has the count and ratio windows' semantics (``consumer/alerts/state.py``): a document
counts while any part of its sub-window lies inside ``(now - span, now]``. A sketch per sub-window
costs far more memory than a count, so there are :data:`SUB_WINDOWS` of them (``span / 10`` each)
instead of 100: the old edge of the window is exact to one tenth of it. Memory per group: at most
``SUB_WINDOWS + 2`` sketches of :data:`MAX_BINS` bins, and in practice one sketch per sub-window that
received a value (a bin per 2 % of latency range in use: 1 ms .. 10 s is ~460 bins).
"""

from __future__ import annotations

import math
from collections import deque

from ddsketch import LogCollapsingLowestDenseDDSketch

RELATIVE_ACCURACY = 0.01
"""The sketch's relative error on every quantile."""
MAX_BINS = 1024
"""Bins per sketch: 1 % bins cover 1 µs .. 10 min; beyond it the *lowest* bins collapse (the fast end,
which no latency alert reads)."""
SUB_WINDOWS = 10


def new_sketch() -> LogCollapsingLowestDenseDDSketch:
    return LogCollapsingLowestDenseDDSketch(relative_accuracy=RELATIVE_ACCURACY, bin_limit=MAX_BINS)


class LatencyWindow:
    """Durations (seconds) seen in a sliding window of ``span`` seconds; ``stat`` at a quantile or the mean."""

    __slots__ = ("_buckets", "_cached", "_count", "_live", "expired", "quantile", "span", "width")

    def __init__(self, span: float, quantile: float | None) -> None:
        self.span = span
        self.quantile = quantile
        """0.99 for p99; None for the mean."""
        self.width = max(span / SUB_WINDOWS, 0.001)
        self._buckets: deque[tuple[int, LogCollapsingLowestDenseDDSketch]] = deque()
        self._live: LogCollapsingLowestDenseDDSketch | None = new_sketch()
        """Every sub-window merged, kept current by :meth:`add`; rebuilt after a sub-window expires."""
        self._count = 0
        self._cached: float | None = None
        self.expired = False
        """A sub-window left since the caller last cleared this: the statistic may have risen."""

    def _expire(self, now: float) -> None:
        oldest = math.floor((now - self.span) / self.width)
        b = self._buckets
        while b and b[0][0] < oldest:
            _, sketch = b.popleft()
            self._count -= int(sketch.count)
            self._live = None
            self._cached = None
            self.expired = True

    def add(self, now: float, seconds: float) -> int:
        """Record one duration at ``now`` (earlier times join the newest sub-window, as in :class:`Window`);
        the durations now in the window."""
        self._expire(now)
        idx = math.floor(now / self.width)
        b = self._buckets
        if b and b[-1][0] >= idx:
            sketch = b[-1][1]
        else:
            sketch = new_sketch()
            b.append((idx, sketch))
        sketch.add(seconds)
        if self._live is not None:
            self._live.add(seconds)
        self._count += 1
        self._cached = None
        return self._count

    def count(self, now: float) -> int:
        """Durations in the window ending at ``now``."""
        self._expire(now)
        return self._count

    def stat(self, now: float) -> float | None:
        """The window's quantile (or mean) in seconds at ``now``; None when the window is empty."""
        self._expire(now)
        if not self._count:
            return None
        if self._cached is None:
            live = self._live
            if live is None:
                live = new_sketch()
                for _, sketch in self._buckets:
                    live.merge(sketch)
                self._live = live
            value = live.avg if self.quantile is None else live.get_quantile_value(self.quantile)
            self._cached = float(value) if value is not None else None
        return self._cached

    def empty(self, now: float) -> bool:
        self._expire(now)
        return not self._buckets

    def sketches(self) -> int:
        """Sketches held now (sub-windows plus the merged one): the memory bound's unit."""
        # merged lazily after an expiry, so at most SUB_WINDOWS + 1 sub-windows + 1
        return len(self._buckets) + (self._live is not None)
