"""Re-deriving firing state from Alertmanager's alerts after a restart (pure part)."""

from __future__ import annotations

from consumer.alerts.matcher import compile_rule
from consumer.alerts.restore import restore_firing
from consumer.alerts.state import RuleState
from tests.consumer.alerts.docs import rule_file

NOW = 1_800_000_000.0
GEN = {"pay-5xx": "http://logpipe.invalid/alerts/pay-5xx", "quiet": "http://logpipe.invalid/alerts/quiet"}


def am_alert(name: str, generator: str, ends: str = "2027-01-15T08:05:00Z", **labels: str) -> dict:
    return {
        "labels": {"alertname": name, "severity": "critical", **labels},
        "annotations": {"summary": "3 errors"},
        "startsAt": "2027-01-15T07:50:00Z",
        "endsAt": ends,
        "generatorURL": generator,
        "status": {"state": "active"},
    }


def setup() -> tuple[list, dict[str, RuleState]]:
    rf = rule_file(
        {"name": "pay-5xx", "match": {"keywords": ["panic"]}, "condition": {"count": 3, "within": "30s"},
         "group_by": ["service.name", "url.path"]},
        {"name": "quiet", "condition": {"absent": "5m"}},
    )  # fmt: skip
    rules = [compile_rule(r, rf.engine) for r in rf.rules]
    return rules, {r.name: RuleState(100) for r in rules}


def test_our_active_alerts_become_firing_groups() -> None:
    rules, states = setup()
    alerts = [
        am_alert("pay-5xx", GEN["pay-5xx"], service_name="pay-gw", url_path="/pay"),
        am_alert("pay-5xx", "http://prometheus:9090/graph", service_name="pay-gw", url_path="/x"),  # not ours
        am_alert("pay-5xx", GEN["pay-5xx"], ends="2027-01-15T07:59:00Z", service_name="a", url_path="/old"),  # ended
        am_alert("quiet", GEN["quiet"], service_name="billing"),
    ]
    assert restore_firing(rules, states, alerts, NOW, GEN) == {"pay-5xx": 1, "quiet": 1}
    (g,) = states["pay-5xx"].firing()
    assert g.key == (("service_name", "pay-gw"), ("url_path", "/pay"))
    assert g.restored and g.started_at == NOW - 600 and g.last_sent == NOW
    assert g.restored_annotations == {"summary": "3 errors"}
    assert g.last_true == NOW + 30  # grace: the window refills
    (q,) = states["quiet"].firing()
    assert q.last_seen == NOW - 300  # still silent, as far as we know


def test_groups_another_replica_owns_are_not_restored() -> None:
    rules, states = setup()
    alerts = [
        am_alert("quiet", GEN["quiet"], service_name="billing"),
        am_alert("quiet", GEN["quiet"], service_name="cart"),
    ]
    restored = restore_firing(rules, states, alerts, NOW, GEN, owns=lambda key: dict(key)["service_name"] == "cart")
    assert restored == {"quiet": 1}
    assert [g.key for g in states["quiet"].firing()] == [(("service_name", "cart"),)]


def test_alerts_whose_labels_differ_from_what_the_rule_posts_now_are_not_adopted() -> None:
    rules, states = setup()

    def labels_of(rule, key):  # what the engine would post now: the rule's severity became "warning"
        return {"alertname": rule.name, "severity": "warning", **dict(key)}

    alerts = [am_alert("quiet", GEN["quiet"], service_name="billing")]  # posted with severity critical
    assert restore_firing(rules, states, alerts, NOW, GEN, labels_of=labels_of) == {}
    assert states["quiet"].firing() == []
