"""Pure evaluation: each condition, matching, group_by, realert, resolve, absence, re-assertion, bounds."""

from __future__ import annotations

from consumer.alerts.evaluate import evaluate, tick
from consumer.alerts.matcher import compile_rule
from consumer.alerts.state import RuleState
from tests.consumer.alerts.docs import compiled, ecs, rule_file

T0 = 1_800_000_000.0


def reasons(matches: list) -> list[str]:
    return [m.reason for m in matches]


# ------------------------------------------------------------------------------------------ matching


def test_keywords_are_any_of_and_case_sensitive_by_default() -> None:
    rule, _ = compiled({"name": "kw", "match": {"keywords": ["panic", "connection refused"]}})
    assert rule.matches(ecs("panic: boom"))
    assert rule.matches(ecs("dial tcp: connection refused"))
    assert not rule.matches(ecs("PANIC: boom"))
    assert not rule.matches(ecs("all good"))


def test_ignore_case_applies_to_keywords_and_regexes() -> None:
    rule, _ = compiled({"name": "kw", "match": {"keywords": ["panic"], "regexes": ["time ?out"], "ignore_case": True}})
    assert rule.matches(ecs("PANIC after TIMEOUT"))
    assert not rule.matches(ecs("PANIC only"))  # keywords AND regexes: both parts must hold


def test_keywords_all_needs_every_word() -> None:
    rule, _ = compiled({"name": "kw", "match": {"keywords_all": ["db", "timeout"]}})
    assert rule.matches(ecs("db query timeout after 3s"))
    assert not rule.matches(ecs("db query slow"))


def test_negation_by_exclude_keywords_and_not_block() -> None:
    rule, _ = compiled(
        {
            "name": "neg",
            "match": {
                "keywords": ["error"],
                "exclude_keywords": ["healthcheck"],
                "not": {"regexes": ["^DEBUG"], "where": 'path~"^/internal"'},
            },
        }
    )
    assert rule.matches(ecs("error: db down"))
    assert not rule.matches(ecs("error in healthcheck"))
    assert not rule.matches(ecs("DEBUG error sim"))
    assert not rule.matches(ecs("error: x", path="/internal/ping"))


def test_where_uses_short_and_ecs_names_over_nested_docs() -> None:
    rule, _ = compiled({"name": "w", "match": {"where": 'status>=500 and path~"^/pay"'}})
    assert rule.matches(ecs("x", status=503, path="/pay/confirm"))
    assert not rule.matches(ecs("x", status=404, path="/pay"))
    assert not rule.matches(ecs("x", status=None, path="/pay"))  # a missing field never compares true
    ecs_rule, _ = compiled({"name": "w2", "match": {"where": "http.response.status_code = 502"}})
    assert ecs_rule.matches(ecs("x", status=502))


def test_request_time_reads_event_duration_in_seconds() -> None:
    rule, _ = compiled({"name": "slow", "match": {"where": "request_time > 1.5"}})
    assert rule.matches(ecs("x", event={"duration": 2_000_000_000}))
    assert not rule.matches(ecs("x", event={"duration": 1_000_000_000}))


def test_scope_filters_components_namespaces_types() -> None:
    rule, _ = compiled({"name": "s", "match": {"components": ["pay-gw"], "namespaces": ["prod"], "types": ["access"]}})
    assert rule.matches(ecs())
    assert not rule.matches(ecs(component="cart"))
    assert not rule.matches(ecs(namespace="staging"))
    assert not rule.matches(ecs(log_type="stdout"))


# ---------------------------------------------------------------------------------------- conditions


def test_any_fires_once_then_realerts_after_the_interval_then_resolves() -> None:
    rule, st = compiled({"name": "any", "match": {"keywords": ["panic"]}, "realert": "5m", "resolve": "2m"})
    first = evaluate(rule, st, ecs(), T0)
    assert reasons(first) == ["new"] and first[0].status == "firing"
    assert all(evaluate(rule, st, ecs(), T0 + i) == [] for i in range(1, 60))  # within realert: quiet
    again = evaluate(rule, st, ecs(), T0 + 301)
    assert reasons(again) == ["realert"]
    assert again[0].count == 60  # the 59 suppressed matches plus this one
    reasserted = tick(rule, st, T0 + 301 + 119)  # clear for less than `resolve`: only re-asserted
    assert reasons(reasserted) == ["reassert"]
    assert (reasserted[0].count, reasserted[0].why) == (60, again[0].why)  # what was last notified
    resolved = tick(rule, st, T0 + 301 + 120)
    assert reasons(resolved) == ["resolved"] and resolved[0].status == "resolved"
    assert tick(rule, st, T0 + 301 + 121) == []
    assert len(st) == 0  # a quiet group is forgotten at the next tick


def test_count_fires_at_the_nth_match_within_the_window() -> None:
    rule, st = compiled({"name": "c", "match": {"keywords": ["panic"]}, "condition": {"count": 3, "within": "30s"}})
    assert evaluate(rule, st, ecs(), T0) == []
    assert evaluate(rule, st, ecs(), T0 + 10) == []
    fired = evaluate(rule, st, ecs(), T0 + 20)
    assert reasons(fired) == ["new"] and fired[0].count == 3
    assert "3 matching lines within 30s" in fired[0].why


def test_count_does_not_fire_when_matches_are_spread_beyond_the_window() -> None:
    rule, st = compiled({"name": "c", "match": {"keywords": ["panic"]}, "condition": {"count": 3, "within": "30s"}})
    out = []
    for t in (0, 20, 40, 60, 80):  # never 3 within 30 s
        out += evaluate(rule, st, ecs(), T0 + t)
    assert out == []


def test_count_resolves_after_the_window_drains_plus_resolve() -> None:
    rule, st = compiled(
        {"name": "c", "match": {"keywords": ["panic"]}, "condition": {"count": 2, "within": "10s"}, "resolve": "5s"}
    )
    evaluate(rule, st, ecs(), T0)
    assert reasons(evaluate(rule, st, ecs(), T0 + 1)) == ["new"]
    assert tick(rule, st, T0 + 9) == []  # both still in the window: holds
    assert tick(rule, st, T0 + 12) == []  # the window drained at ~T0+10; clear for 3 s < resolve
    resolved = tick(rule, st, T0 + 14)  # clear for 5 s since the last tick that held
    assert reasons(resolved) == ["resolved"] and resolved[0].started_at == T0 + 1
    assert not st.firing()


def test_ratio_counts_every_doc_in_scope_as_denominator_and_needs_min_count() -> None:
    rule, st = compiled(
        {
            "name": "r",
            "match": {"components": ["pay-gw"], "where": "status>=500"},
            "condition": {"ratio": 0.2, "within": "1m", "min_count": 10},
        }
    )
    out = []
    for i in range(3):  # 3 errors first: 100 % but below min_count
        out += evaluate(rule, st, ecs(status=500), T0 + i)
    assert out == []
    for i in range(6):  # 9 docs: still below min_count
        out += evaluate(rule, st, ecs(status=200), T0 + 3 + i)
    assert out == []
    out += evaluate(rule, st, ecs(component="cart", status=200), T0 + 9)  # out of scope: not counted
    assert out == []
    fired = evaluate(rule, st, ecs(status=200), T0 + 10)  # 10th doc in scope, 3/10 = 30 % >= 20 %
    assert reasons(fired) == ["new"]
    assert (fired[0].count, fired[0].total) == (3, 10)
    assert "30.0%" in fired[0].why


def test_ratio_below_threshold_does_not_fire() -> None:
    rule, st = compiled(
        {"name": "r", "match": {"where": "status>=500"}, "condition": {"ratio": 0.5, "within": "1m", "min_count": 4}}
    )
    out = []
    for i, status in enumerate([500, 200, 200, 200, 200, 500]):
        out += evaluate(rule, st, ecs(status=status), T0 + i)
    assert out == []


def test_absent_fires_for_a_component_seen_then_silent_and_resolves_when_it_returns() -> None:
    rule, st = compiled({"name": "quiet", "condition": {"absent": "5m"}})
    evaluate(rule, st, ecs(component="pay-gw"), T0)
    evaluate(rule, st, ecs(component="cart"), T0)
    assert tick(rule, st, T0 + 200) == []
    evaluate(rule, st, ecs(component="cart"), T0 + 250)  # cart keeps talking
    fired = tick(rule, st, T0 + 300)
    assert reasons(fired) == ["new"]
    assert fired[0].group == (("service_name", "pay-gw"),)
    assert "no matching line for 5m" in fired[0].why
    assert tick(rule, st, T0 + 310) == []
    evaluate(rule, st, ecs(component="pay-gw"), T0 + 320)  # it is back
    resolved = tick(rule, st, T0 + 321)
    assert reasons(resolved) == ["resolved"] and resolved[0].group == (("service_name", "pay-gw"),)


def test_absent_watches_listed_components_from_the_start_but_not_unknown_ones() -> None:
    rule, st = compiled({"name": "quiet", "match": {"components": ["billing"]}, "condition": {"absent": "1m"}})
    assert tick(rule, st, T0) == []  # billing's clock starts now
    fired = tick(rule, st, T0 + 60)
    assert [m.group for m in fired] == [(("service_name", "billing"),)]
    other, st2 = compiled({"name": "quiet2", "condition": {"absent": "1m"}})
    assert tick(other, st2, T0) == [] and tick(other, st2, T0 + 3600) == []  # never seen: nothing to miss


def test_absent_is_not_detected_for_groups_this_replica_does_not_own() -> None:
    rule, st = compiled({"name": "quiet", "condition": {"absent": "1m"}})
    evaluate(rule, st, ecs(component="pay-gw"), T0)
    not_mine = lambda key: False  # noqa: E731
    assert tick(rule, st, T0 + 120, not_mine) == []
    assert reasons(tick(rule, st, T0 + 180)) == ["new"]  # owned again: its clock restarted at T0+120


# --------------------------------------------------------------------------------- group_by & realert


def test_group_by_yields_one_alert_per_group_with_underscore_labels() -> None:
    rule, st = compiled(
        {"name": "g", "match": {"keywords": ["panic"]}, "group_by": ["service.name", "url.path", "status"]}
    )
    a = evaluate(rule, st, ecs(path="/pay"), T0)
    b = evaluate(rule, st, ecs(path="/refund"), T0)
    c = evaluate(rule, st, ecs(path="/pay"), T0 + 1)
    d = evaluate(rule, st, ecs(path="/x", status=None), T0 + 2)
    assert reasons(a) == reasons(b) == ["new"] and c == []
    assert a[0].labels == {"service_name": "pay-gw", "url_path": "/pay", "status": "502"}
    assert b[0].labels["url_path"] == "/refund"
    assert d[0].labels["status"] == ""  # a missing field groups under ""


def test_realert_applies_per_group() -> None:
    rule, st = compiled({"name": "g", "match": {"keywords": ["panic"]}, "group_by": ["path"], "realert": "1m"})
    assert reasons(evaluate(rule, st, ecs(path="/a"), T0)) == ["new"]
    assert evaluate(rule, st, ecs(path="/a"), T0 + 30) == []
    assert reasons(evaluate(rule, st, ecs(path="/b"), T0 + 30)) == ["new"]
    assert reasons(evaluate(rule, st, ecs(path="/a"), T0 + 61)) == ["realert"]


def test_firing_groups_are_reasserted_every_reassert_interval() -> None:
    rule, st = compiled({"name": "g", "match": {"keywords": ["panic"]}, "resolve": "10m"}, reassert="1m")
    evaluate(rule, st, ecs(), T0)
    assert tick(rule, st, T0 + 59) == []
    assert reasons(tick(rule, st, T0 + 60)) == ["reassert"]
    assert tick(rule, st, T0 + 90) == []
    assert reasons(tick(rule, st, T0 + 120)) == ["reassert"]


def test_samples_are_bounded_and_truncated() -> None:
    rule, st = compiled({"name": "s", "match": {"keywords": ["panic"]}}, samples=2, sample_chars=20)
    for i in range(5):
        evaluate(rule, st, ecs(f"panic number {i} " + "x" * 50), T0 + i)
    g = st.firing()[0]
    assert len(g.samples) == 2
    assert g.samples[-1].startswith("panic number 4") and len(g.samples[-1]) == 20


# ------------------------------------------------------------------------------------------- bounds


def test_state_is_bounded_and_evicts_least_recently_used_non_firing_groups() -> None:
    rule, st = compiled(
        {
            "name": "b",
            "match": {"keywords": ["panic"]},
            "condition": {"count": 2, "within": "1h"},
            "group_by": ["path"],
        },
        max_groups=3,
    )
    evaluate(rule, st, ecs(path="/hot"), T0)
    assert reasons(evaluate(rule, st, ecs(path="/hot"), T0)) == ["new"]
    for i in range(50):
        evaluate(rule, st, ecs(path=f"/cold/{i}"), T0 + 1 + i)
    assert len(st) == 3
    assert st.evicted == 48
    assert st.get((("path", "/hot"),)) is not None  # the firing group survived
    assert st.evicted_firing == 0


def test_restored_group_that_still_holds_is_confirmed_without_a_new_notification() -> None:
    rule, st = compiled({"name": "c", "match": {"keywords": ["panic"]}, "condition": {"count": 2, "within": "30s"}})
    st.restore_firing((), started_at=T0 - 100, now=T0, grace=30, span=30)
    assert evaluate(rule, st, ecs(), T0 + 1) == []
    confirmed = evaluate(rule, st, ecs(), T0 + 2)
    assert reasons(confirmed) == ["reassert"]  # refreshes Alertmanager only; no new, no webhook
    assert confirmed[0].started_at == T0 - 100


def test_restored_group_that_does_not_hold_again_is_forgotten_quietly() -> None:
    rule, st = compiled({"name": "c", "match": {"keywords": ["panic"]}, "condition": {"count": 2, "within": "30s"}})
    st.restore_firing((), started_at=T0 - 100, now=T0, grace=30, span=30)
    assert tick(rule, st, T0 + 29) == []
    assert tick(rule, st, T0 + 30) == []  # no resolved: Alertmanager expires it at its endsAt
    assert len(st) == 0


def test_compiled_rule_is_reusable_across_states() -> None:
    rf = rule_file({"name": "any", "match": {"keywords": ["panic"]}})
    rule = compile_rule(rf.rules[0], rf.engine)
    a, b = RuleState(10), RuleState(10)
    assert reasons(evaluate(rule, a, ecs(), T0)) == ["new"]
    assert reasons(evaluate(rule, b, ecs(), T0)) == ["new"]
