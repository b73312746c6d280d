"""Latency conditions: p50/p90/p95/p99 within the sketch's error, avg, window expiry, min_count,
group_by, resolve, and memory bounded per group under the group cap."""

from __future__ import annotations

import math
import random
import tracemalloc
from typing import Any

import pytest

from consumer.alerts.evaluate import evaluate, tick
from consumer.alerts.latency import MAX_BINS, RELATIVE_ACCURACY, SUB_WINDOWS, LatencyWindow
from consumer.alerts.matcher import CompiledRule
from consumer.alerts.restore import grace_of
from consumer.alerts.rules import LatencyCondition
from consumer.alerts.state import RuleState
from consumer.alerts.templates import render_annotations
from logpipe.core.config_base import ConfigError
from tests.consumer.alerts.docs import compiled, ecs, rule_file

T0 = 1_800_000_000.0


def timed(seconds: float, at: float, component: str = "pay-gw", **extra: Any) -> dict[str, Any]:
    """An access line (or span) whose ``event.duration`` is ``seconds``, in nanoseconds as indexed."""
    return ecs("GET /pay", component=component, at=at, event={"duration": round(seconds * 1e9)}, **extra)


def exact(values: list[float], q: float) -> float:
    """The quantile DDSketch estimates: the value at rank floor(q * (n - 1))."""
    return sorted(values)[math.floor(q * (len(values) - 1))]


def feed(rule: CompiledRule, st: RuleState, docs: list[dict[str, Any]], at: float) -> list[str]:
    return [m.reason for d in docs for m in evaluate(rule, st, d, at)]


# ----------------------------------------------------------------------------------------- the window


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_quantiles_are_within_the_sketchs_relative_error(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-2.5, 1.2) for _ in range(20_000)]  # ~80 ms median, a long tail
    w = LatencyWindow(300.0, q)
    for i, v in enumerate(values):
        w.add(T0 + i * 0.01, v)  # 200 s: all inside the 5 min window
    got = w.stat(T0 + 200)
    want = exact(values, q)
    assert got is not None
    assert abs(got - want) <= RELATIVE_ACCURACY * want + 1e-12, (got, want)
    assert w.count(T0 + 200) == len(values)


def test_avg_is_the_exact_mean() -> None:
    w = LatencyWindow(60.0, None)
    values = [0.1, 0.2, 0.3, 1.4]
    for v in values:
        w.add(T0, v)
    assert w.stat(T0) == pytest.approx(sum(values) / len(values))


def test_durations_leave_the_window_at_its_edge() -> None:
    w = LatencyWindow(100.0, 0.99)  # sub-windows of 10 s
    for i in range(50):
        w.add(T0 + i, 2.0)  # slow, t = 0..49
    for i in range(50):
        w.add(T0 + 50 + i, 0.01)  # fast, t = 50..99
    assert w.count(T0 + 99) == 100
    assert w.stat(T0 + 99) == pytest.approx(2.0, rel=RELATIVE_ACCURACY)
    # at t = 150 the window is (50, 150]: the slow sub-windows (0..49) are gone, exactly at the edge
    assert w.count(T0 + 150) == 50
    assert w.stat(T0 + 150) == pytest.approx(0.01, rel=RELATIVE_ACCURACY)
    # a sub-window counts while any part of it lies inside: 10 s granularity at the old edge
    assert w.count(T0 + 159.9) == 50 and w.count(T0 + 160) == 40
    assert w.count(T0 + 300) == 0 and w.stat(T0 + 300) is None and w.empty(T0 + 300)


def test_one_window_holds_a_bounded_number_of_bounded_sketches_whatever_the_rate() -> None:
    w = LatencyWindow(60.0, 0.99)
    rng = random.Random(1)
    for i in range(30_000):  # 10 minutes at 50/s, durations spanning 1 µs .. 100 s
        w.add(T0 + i * 0.02, 10 ** rng.uniform(-6, 2))
        if i % 1000 == 0:
            w.stat(T0 + i * 0.02)
    assert w.sketches() <= SUB_WINDOWS + 2
    for _, sketch in w._buckets:  # the collapsing store keeps at most MAX_BINS bins
        assert len(sketch._store.bins) <= MAX_BINS


# ------------------------------------------------------------------------------------------- the rule


P99 = {
    "name": "pay-slow",
    "match": {"components": ["pay-gw"]},
    "condition": {"p99": "800ms", "within": "5m", "min_count": 50},
}


def test_fires_only_once_min_count_durations_are_in_the_window() -> None:
    rule, st = compiled(P99)
    assert feed(rule, st, [timed(1.5, T0) for _ in range(49)], T0) == []  # all slow, but too few
    ms = evaluate(rule, st, timed(1.5, T0 + 1), T0 + 1)
    assert [m.reason for m in ms] == ["new"]
    m = ms[0]
    assert m.count == 50 and m.value == pytest.approx(1.5, rel=RELATIVE_ACCURACY)
    assert m.why.startswith("p99 1.5") and "over 50 within 5m (threshold 800ms, minimum 50)" in m.why
    assert render_annotations(rule.rule, m)["summary"].startswith("pay-slow on pay-gw: p99 1.5")


def test_fast_traffic_does_not_fire_and_one_slow_percent_does() -> None:
    rule, st = compiled({**P99, "condition": {"p99": "800ms", "within": "5m", "min_count": 50}})
    assert feed(rule, st, [timed(0.05, T0) for _ in range(300)], T0) == []
    assert tick(rule, st, T0 + 1) == []
    # 300 fast + 4 slow: rank floor(0.99 * 303) = 299 is the fast one -> p99 still 50 ms
    assert feed(rule, st, [timed(2.0, T0 + 2) for _ in range(4)], T0 + 2) == []
    # the 5th slow one puts a slow duration at rank 300 of 305 -> p99 = 2 s
    assert feed(rule, st, [timed(2.0, T0 + 3)], T0 + 3) == ["new"]


def test_documents_without_a_duration_or_out_of_scope_are_not_counted() -> None:
    rule, st = compiled({**P99, "condition": {"p99": "800ms", "within": "5m", "min_count": 3}})
    no_duration = ecs("x", at=T0)
    other = timed(5.0, T0, component="cart")
    assert feed(rule, st, [no_duration, other, timed(5.0, T0), timed(5.0, T0)], T0) == []
    assert feed(rule, st, [timed(5.0, T0)], T0) == ["new"]


def test_groups_are_measured_apart() -> None:
    rule, st = compiled({**P99, "match": {}, "group_by": ["service.name"],
                         "condition": {"p95": "1s", "within": "1m", "min_count": 10}})
    fired = []
    for i in range(40):
        fired += evaluate(rule, st, timed(3.0, T0 + i * 0.5, component="pay-gw"), T0 + i * 0.5)
        fired += evaluate(rule, st, timed(0.02, T0 + i * 0.5, component="cart"), T0 + i * 0.5)
    assert [(m.reason, dict(m.group)) for m in fired] == [("new", {"service_name": "pay-gw"})]
    assert tick(rule, st, T0 + 21) == []  # still firing, nothing to re-send yet; cart quiet
    assert len(st) == 2


def test_avg_condition() -> None:
    rule, st = compiled({**P99, "condition": {"avg": "500ms", "within": "1m", "min_count": 4}})
    assert feed(rule, st, [timed(0.1, T0), timed(0.1, T0), timed(0.1, T0), timed(1.6, T0)], T0) == []  # 475 ms
    assert feed(rule, st, [timed(0.7, T0 + 1)], T0 + 1) == ["new"]  # 520 ms


def test_resolves_once_the_window_has_been_clear_for_resolve() -> None:
    rule, st = compiled({**P99, "condition": {"p99": "800ms", "within": "1m", "min_count": 10}, "resolve": "30s"})
    assert "new" in feed(rule, st, [timed(2.0, T0) for _ in range(10)], T0)
    t = T0
    events: list[tuple[float, str]] = []
    while t < T0 + 200:  # fast traffic from now on, 2/s
        t += 0.5
        events += [(t, m.reason) for m in evaluate(rule, st, timed(0.05, t), t)]
        if t == int(t):
            events += [(t, m.reason) for m in tick(rule, st, t)]
    reasons = [r for _, r in events if r != "reassert"]
    assert reasons == ["resolved"]
    when = next(at for at, r in events if r == "resolved")
    # the slow sub-window (t0 .. t0+6) leaves the 1 min window at t0+66; clear for 30 s more -> ~t0+96
    assert T0 + 60 + 30 <= when <= T0 + 66 + 30 + 1, when - T0
    assert st.get(()) is not None and not st.get(()).firing  # type: ignore[union-attr]


def test_a_window_whose_fast_durations_expire_fires_at_the_tick() -> None:
    rule, st = compiled({**P99, "condition": {"p50": "1s", "within": "1m", "min_count": 10}})
    assert feed(rule, st, [timed(0.01, T0) for _ in range(30)], T0) == []
    assert feed(rule, st, [timed(2.0, T0 + 30) for _ in range(20)], T0 + 30) == []  # median still fast
    assert [m.reason for m in tick(rule, st, T0 + 61)] == []  # t0 sub-window still inside (0..6 s)
    assert [m.reason for m in tick(rule, st, T0 + 67)] == ["new"]  # the fast ones left: median 2 s


def test_slow_durations_throttled_at_the_document_fire_at_the_next_tick() -> None:
    rule, st = compiled({**P99, "condition": {"p99": "800ms", "within": "1m", "min_count": 3}})
    assert feed(rule, st, [timed(0.01, T0) for _ in range(3)], T0) == []  # computed at min_count: fast
    assert feed(rule, st, [timed(2.0, T0 + 0.01)], T0 + 0.01) == []  # within 100 ms of that: not computed
    assert feed(rule, st, [timed(2.0, T0 + 0.02)], T0 + 0.02) == []
    assert [m.reason for m in tick(rule, st, T0 + 1)] == ["new"]  # p99 of 5 = rank 3: slow


def test_a_quiet_group_is_not_recomputed_by_the_tick_until_something_could_lift_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rule, st = compiled({**P99, "condition": {"p99": "800ms", "within": "1m", "min_count": 3}})
    computed: list[float] = []
    stat = LatencyWindow.stat

    def counting(self: LatencyWindow, now: float) -> float | None:
        computed.append(now)
        return stat(self, now)

    monkeypatch.setattr(LatencyWindow, "stat", counting)
    feed(rule, st, [timed(0.01, T0) for _ in range(10)], T0)
    assert computed == [T0]  # once, at min_count
    feed(rule, st, [timed(0.01, T0 + 7) for _ in range(10)], T0 + 7)  # fast: cannot lift it
    assert tick(rule, st, T0 + 8) == [] and tick(rule, st, T0 + 9) == []
    assert computed == [T0]
    assert tick(rule, st, T0 + 67) == []  # the t0 sub-window left: the statistic may have risen
    assert computed == [T0, T0 + 67]
    feed(rule, st, [timed(2.0, T0 + 68)], T0 + 68)  # may lift it: computed at the document
    assert computed[-1] == T0 + 68


@pytest.mark.parametrize(("ms", "fires"), [(785.0, False), (786.0, False), (787.0, True), (789.9, True)])
def test_a_duration_just_under_the_threshold_sharing_its_bin_is_decided_as_the_sketch_says(
    ms: float, fires: bool
) -> None:
    """787 ms falls in the bin of 790 ms, whose value (794.5 ms) is over a 790 ms threshold: the
    document path must not skip it as "fast" (it would fire only at an expiry, up to W/10 late)."""
    rule, st = compiled({**P99, "condition": {"p99": "790ms", "within": "5m", "min_count": 5}})
    assert feed(rule, st, [timed(0.01, T0 + i) for i in range(5)], T0 + 5) == []
    fired = []
    for i in range(100):
        at = T0 + 6 + i * 0.5
        fired += [m.reason for m in evaluate(rule, st, timed(ms / 1000, at), at)]
    assert fired == (["new"] if fires else [])


def test_a_slow_documents_trace_is_the_exemplar_in_the_annotations() -> None:
    rule, st = compiled({**P99, "condition": {"p99": "800ms", "within": "5m", "min_count": 3}})
    docs = [timed(0.01, T0, trace={"id": "fa57" * 8}), timed(3.0, T0, trace={"id": "51a0" * 8}),
            timed(0.01, T0, trace={"id": "fa58" * 8})]
    assert feed(rule, st, docs, T0) == []  # p99 of 3 is the 2nd fastest: 10 ms
    ms = evaluate(rule, st, timed(3.0, T0 + 1, trace={"id": "51a1" * 8}), T0 + 1)
    assert [m.reason for m in ms] == ["new"]
    annotations = render_annotations(rule.rule, ms[0])
    assert annotations["trace_id"] == "51a1" * 8  # the last slow one, not the last one seen
    assert annotations["trace"] == "logpipe trace " + "51a1" * 8
    # a fast document after it does not replace the exemplar
    evaluate(rule, st, timed(0.01, T0 + 2, trace={"id": "fa59" * 8}), T0 + 2)
    g = st.get(())
    assert g is not None and g.last_doc is not None and g.last_doc["trace"]["id"] == "51a1" * 8


def test_the_group_cap_bounds_memory_with_many_groups() -> None:
    cap = 200
    rule, st = compiled({**P99, "match": {}, "group_by": ["url.path"],
                         "condition": {"p99": "800ms", "within": "5m", "min_count": 50}}, max_groups=cap)
    rng = random.Random(3)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for r in range(22):  # every group gets a duration in each 30 s sub-window, over 4 decades
            at = T0 + r * 15
            for i in range(cap):
                evaluate(rule, st, timed(10 ** rng.uniform(-3, 1), at, path=f"/p/{i}"), at)
        full = tracemalloc.get_traced_memory()[0] - base
        for i in range(5_000):  # a flood of new groups, 25 times the cap
            at = T0 + 330 + i * 0.001
            evaluate(rule, st, timed(10 ** rng.uniform(-3, 1), at, path=f"/flood/{i}"), at)
        after = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(st) == cap and st.evicted == 5_000
    per_group = full / cap
    assert per_group < 100_000, per_group  # measured ~40 KB: 11 sketches of ~300 bins in use
    assert after <= full * 1.1, (after, full)  # the flood replaced groups; it did not add memory


# --------------------------------------------------------------------------------------- configuration


def test_the_documented_condition_validates() -> None:
    rf = rule_file(P99)
    c = rf.rules[0].condition
    assert isinstance(c, LatencyCondition)
    assert (c.statistic, c.threshold, c.quantile, c.within, c.min_count) == ("p99", 0.8, 0.99, 300.0, 50)
    assert rf.rules[0].effective_resolve() == 300.0


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"p99": 800, "within": "5m"}, "condition.p99: 800 has no unit — fix: write it with one, e.g. 800ms"),
        ({"p99": "1s", "avg": "1s", "within": "5m"}, "exactly one of p50, p90, p95, p99, avg, got p99 and avg"),
        ({"p99": "1s"}, "condition.within: Field required"),
        ({"p99": "0ms", "within": "5m"}, "condition.p99: must be positive — fix: e.g. p99: 800ms"),
        ({"p99": "1s", "within": "5m", "unit": "h"}, "condition.unit: Input should be 'ns', 'us', 'ms' or 's'"),
        ({"p99": "1s", "within": "5m", "min_count": 0}, "condition.min_count: Input should be greater than"),
        ({"p99": "1s", "within": "5m", "field": "nosuchfield"}, "condition.field: unknown field 'nosuchfield'"),
        ({"p97": "1s", "within": "5m"}, "unknown condition — fix: use one of"),
    ],
)
def test_an_invalid_latency_condition_names_the_key_and_the_fix(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        rule_file({"name": "slow", "condition": condition})
    text = "\n".join(err.value.errors)
    assert "rule 'slow' (rules[0])" in text
    assert message in text, text


def test_a_latency_group_restored_after_a_restart_is_confirmed_quietly_or_left_to_expire() -> None:
    rule, st = compiled({**P99, "group_by": ["service.name"],
                         "condition": {"p99": "800ms", "within": "1m", "min_count": 5}})
    key = (("service_name", "pay-gw"),)
    for group in (key, (("service_name", "other"),)):  # as restore.py does with Alertmanager's alerts
        st.restore_firing(group, started_at=T0 - 600, now=T0, grace=grace_of(rule))
    assert grace_of(rule) == 60.0
    # pay-gw is still slow after the restart: the window refills, the tick confirms it
    assert feed(rule, st, [timed(2.0, T0 + 1) for _ in range(5)], T0 + 1) == []
    assert [m.reason for m in tick(rule, st, T0 + 2)] == ["reassert"]  # Alertmanager only, no new notification
    # "other" saw nothing within the grace: forgotten without a resolved post (it expires at its endsAt)
    assert [m.reason for m in tick(rule, st, T0 + 61)] == []
    assert st.get((("service_name", "other"),)) is None
    g = st.get(key)
    assert g is not None and g.firing and not g.restored
