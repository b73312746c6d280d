"""Bucketed sliding windows: exact counts inside, expiry at the edge, bounded memory."""

from __future__ import annotations

from consumer.alerts.state import BUCKETS, GroupState, RuleState, Window


def test_window_counts_hits_and_totals_within_the_span() -> None:
    w = Window(10.0)
    for t, hit in [(0.0, True), (1.0, False), (5.0, True), (9.0, True)]:
        w.add(1000 + t, hit)
    assert w.counts(1009.5) == (3, 4)
    assert w.counts(1010.5) == (2, 3)  # t=0 left the window
    assert w.counts(1015.5) == (1, 1)
    assert w.counts(1030.0) == (0, 0) and w.empty(1030.0)


def test_window_memory_is_bounded_whatever_the_rate() -> None:
    w = Window(1.0)
    for i in range(100_000):
        w.add(i * 0.0005, True)  # 2000 per second for 50 s
    assert len(w._buckets) <= BUCKETS + 1
    hits, total = w.counts(50.0)
    assert 1990 <= hits <= 2020 and hits == total  # one second's worth, to a bucket's precision


def test_lru_eviction_spares_firing_groups_until_all_are_firing() -> None:
    st = RuleState(max_groups=2)
    a = st.group((("k", "a"),))
    a.firing = True
    st.group((("k", "b"),))
    st.group((("k", "c"),))  # evicts b (a fires)
    assert st.get((("k", "a"),)) is not None and st.get((("k", "b"),)) is None
    st.get((("k", "c"),)).firing = True  # type: ignore[union-attr]
    st.group((("k", "d"),))  # everything fires: the oldest goes, counted
    assert len(st) == 2 and st.evicted == 2 and st.evicted_firing == 1


def test_samples_keep_the_last_lines_truncated() -> None:
    g = GroupState(key=())
    for i in range(5):
        g.add_sample(f"line {i} " + "x" * 100, keep=3, chars=12)
    assert list(g.samples) == ["line 2 xxxx…", "line 3 xxxx…", "line 4 xxxx…"]
