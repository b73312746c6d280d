"""The rule file's contract: the issue's example loads; every error names the rule, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.alerts.rules import (
    AlertmanagerChannel,
    CountCondition,
    EmailChannel,
    RatioCondition,
    WeComChannel,
    load_rule_file,
    validate_rule_file,
)
from logpipe.core.config_base import ConfigError

CONTRACT = """
channels:
  alertmanager: {type: alertmanager, url: http://127.0.0.1:9093}
  pay-robot: {type: wecom, webhook: https://example.invalid/robot?key=abc}
rules:
  - name: pay-5xx                   # becomes the alertname label
    severity: critical
    match:
      components: [pay-gw]
      keywords: [panic, "connection refused"]
      where: 'status>=500'
    condition: {count: 3, within: 30s}
    group_by: [service.name, url.path]
    realert: 5m
    labels: {team: pay}
    annotations: {summary: "{{count}} errors on {{url.path}} in {{service.name}}"}
    channels: [alertmanager, pay-robot]
"""


def errors_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate_rule_file(data, "rules.yaml")
    return exc.value.errors


def test_the_issue_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(CONTRACT)
    rf = load_rule_file(path)
    rule = rf.rules[0]
    assert rule.name == "pay-5xx" and rule.severity == "critical"
    assert rule.condition == CountCondition(count=3, within=30.0)
    assert rule.realert == 300.0 and rule.group_by == ["service.name", "url.path"]
    assert isinstance(rf.channels["alertmanager"], AlertmanagerChannel)
    assert isinstance(rf.channels["pay-robot"], WeComChannel)


def test_alertmanager_url_flag_overrides_or_adds_the_channel(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(CONTRACT)
    rf = load_rule_file(path, "http://10.0.0.1:9093")
    am = rf.channels["alertmanager"]
    assert isinstance(am, AlertmanagerChannel) and am.url == "http://10.0.0.1:9093"
    bare = validate_rule_file({"rules": [{"name": "x"}]}, "f", alertmanager_url="http://am:9093")
    assert set(bare.channels) == {"alertmanager"}


def test_all_condition_shapes() -> None:
    rf = validate_rule_file(
        {
            "channels": {"am": {"type": "alertmanager"}},
            "rules": [
                {"name": "a", "condition": {"any": True}},
                {"name": "r", "condition": {"ratio": 0.05, "within": "1m", "min_count": 20}},
                {"name": "q", "condition": {"absent": "5m"}},
            ],
        },
        "f",
    )
    assert rf.rules[1].condition == RatioCondition(ratio=0.05, within=60.0, min_count=20)
    assert rf.rules[2].effective_group_by() == ["service.name"]
    assert rf.rules[1].effective_resolve() == 60.0 and rf.rules[2].effective_resolve() == 0.0


def test_errors_name_the_rule_the_key_and_the_fix() -> None:
    errs = errors_of(
        {
            "channels": {"am": {"type": "alertmanager"}},
            "rules": [
                {"name": "pay-5xx", "condition": {"count": 3, "within": "3 fortnights"}},
                {"name": "typo", "matcher": {}},
                {"name": "weird", "condition": {"sometimes": True}},
            ],
        }
    )
    assert any(e.startswith("rule 'pay-5xx' (rules[0]) condition.within: invalid duration") for e in errs), errs
    assert any(e.startswith("rule 'typo' (rules[1]) matcher:") and "fix: remove it" in e for e in errs), errs
    assert any(e.startswith("rule 'weird' (rules[2]) condition:") and "{count: N, within: 30s}" in e for e in errs)


def test_cross_checks_name_rule_key_and_fix() -> None:
    errs = errors_of(
        {
            "channels": {"am": {"type": "alertmanager"}},
            "rules": [
                {"name": "a", "channels": ["pager"]},
                {"name": "a"},
                {"name": "b", "match": {"where": "status>>500", "regexes": ["(unclosed"]}},
                {"name": "c", "match": {"where": "stauts>=500"}, "group_by": ["pth"]},
            ],
        }
    )
    text = "\n".join(errs)
    assert "rule 'a' (rules[0]) channels: unknown channel 'pager' — fix: define it under channels (am)" in text
    assert "rule 'a' (rules[1]) name: duplicate rule name — fix:" in text
    assert "rule 'b' (rules[2]) match.where:" in text and "column" in text
    assert "rule 'b' (rules[2]) match.regexes[0]: invalid regex" in text
    assert "rule 'c' (rules[3]) match.where: unknown field 'stauts' — fix: use a short name" in text
    assert "rule 'c' (rules[3]) group_by[0]: unknown field 'pth'" in text


def test_label_names_must_be_prometheus_names() -> None:
    errs = errors_of({"channels": {"am": {"type": "alertmanager"}}, "rules": [{"name": "d", "labels": {"a-b": "x"}}]})
    assert errs[0].startswith("rule 'd' (rules[0]) labels:") and "fix: use letters, digits and _ only" in errs[0]


def test_channel_errors_name_the_channel_key() -> None:
    errs = errors_of({"channels": {"mail": {"type": "email", "to": []}, "x": {"type": "pager"}, "y": {"url": "u"}}})
    assert any(e.startswith("channels.mail.to:") for e in errs), errs
    assert any(
        e.startswith("channels.x:") and e.endswith("fix: set type to one of alertmanager, wecom, webhook, email")
        for e in errs
    ), errs
    assert any(e.startswith("channels.y:") and "fix: set type to one of" in e for e in errs), errs


def test_email_from_alias_and_defaults() -> None:
    rf = validate_rule_file(
        {"channels": {"mail": {"type": "email", "from": "alerts@example.invalid", "to": ["oncall@example.invalid"]}}},
        "f",
    )
    mail = rf.channels["mail"]
    assert isinstance(mail, EmailChannel)
    assert mail.sender == "alerts@example.invalid" and mail.starttls and mail.port == 587


def test_empty_file_is_valid_and_has_no_rules(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_rule_file(path).rules == []
