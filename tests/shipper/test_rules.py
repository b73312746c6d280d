"""Which file names are shipped, as which type, to which topic."""

from __future__ import annotations

import pytest

from logpipe.core.config_base import ConfigError, validate_mapping
from shipper.rules import Rules, RulesConfig

DEFAULT = Rules.from_config()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("access.log", ("access", "logpipe-access")),
        ("nginx-access.log", ("access", "logpipe-access")),
        ("access.log.1", ("access", "logpipe-access")),
        ("access.log.2025-11-27", ("access", "logpipe-access")),
        ("access.log.20251127-101010", ("access", "logpipe-access")),
        ("trace.log", ("trace", "logpipe-trace")),
        ("apm-trace.log.3", ("trace", "logpipe-trace")),
        ("access-trace.log", ("trace", "logpipe-trace")),  # trace is tried first, as the issue orders it
        ("app.log", ("app", "logpipe-app")),
        ("gc.log.7", ("app", "logpipe-app")),
        ("Access.LOG", ("access", "logpipe-access")),  # names match case-insensitively by default
    ],
)
def test_default_emptydir_rules_type_a_file_by_its_name(name: str, expected: tuple[str, str]) -> None:
    rule = DEFAULT.for_emptydir("logs", name)
    assert rule is not None
    assert (rule.log_type, rule.topic) == expected


@pytest.mark.parametrize(
    "name",
    ["access.log.1.gz", "access.log.gz", "app.log.2025-11-27.zst", "access.txt", "access", "app.log.swp",
     "access.log.old", "0.log.20251127-101010.tmp", "README"],
)
def test_compressed_temporary_and_other_names_are_not_shipped(name: str) -> None:
    assert DEFAULT.for_emptydir("logs", name) is None


def test_default_cri_rule_ships_stdout_and_its_rotations_but_not_gz() -> None:
    for name in ("0.log", "3.log", "0.log.20251127-101010"):
        rule = DEFAULT.for_cri("web", name)
        assert rule is not None and (rule.log_type, rule.topic) == ("stdout", "logpipe-stdout")
    assert DEFAULT.for_cri("web", "0.log.20251127-101010.gz") is None


def test_topic_prefix_and_per_rule_topic() -> None:
    cfg = validate_mapping(RulesConfig, {
        "topic_prefix": "prod.logs-",
        "emptydir": [
            {"match": ["audit*.log"], "type": "app", "topic": "audit"},
            {"match": ["*.log"], "type": "app"},
        ],
    }, "test")
    rules = Rules.from_config(cfg)
    assert rules.for_emptydir("v", "audit-2025.log").topic == "audit"  # type: ignore[union-attr]
    assert rules.for_emptydir("v", "x.log").topic == "prod.logs-app"  # type: ignore[union-attr]
    assert rules.for_cri("c", "0.log").topic == "prod.logs-stdout"  # type: ignore[union-attr]


def test_volume_and_container_globs_narrow_a_rule() -> None:
    cfg = RulesConfig.model_validate({
        "emptydir": [{"match": ["*.log"], "type": "access", "volume": "nginx-*"}],
        "cri": [{"match": ["*.log"], "type": "stdout", "container": "istio-proxy"}],
    })
    rules = Rules.from_config(cfg)
    assert rules.for_emptydir("nginx-logs", "a.log") is not None
    assert rules.for_emptydir("cache", "a.log") is None
    assert rules.wants_volume("nginx-logs") and not rules.wants_volume("cache")
    assert rules.for_cri("istio-proxy", "0.log") is not None and rules.for_cri("app", "0.log") is None


def test_case_sensitive_matching_on_request() -> None:
    rules = Rules.from_config(RulesConfig(ignore_case=False))
    assert rules.for_emptydir("logs", "ACCESS.LOG") is None
    assert rules.for_emptydir("logs", "access.log") is not None


def test_empty_lists_ship_nothing() -> None:
    rules = Rules.from_config(RulesConfig(emptydir=[], cri=[]))
    assert rules.for_emptydir("logs", "access.log") is None and rules.for_cri("c", "0.log") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"emptydir": [{"match": ["*.log"], "type": "metrics"}]}, "emptydir.0.type"),
        ({"emptydir": [{"match": [], "type": "app"}]}, "emptydir.0.match"),
        ({"emptydir": [{"match": ["*.log"], "type": "app", "topic": "no spaces"}]}, "invalid topic"),
        ({"emptydir": [{"match": ["*.log"], "type": "app", "container": "web"}]}, "emptydir.0.container"),
        ({"cri": [{"match": ["*.log"], "type": "stdout", "volume": "logs"}]}, "cri.0.volume"),
        ({"topic_prefix": "bad/"}, "topic_prefix"),
        ({"emptydir": [{"match": ["*.log"], "type": "app", "glob": "*.log"}]}, "emptydir.0.glob"),
    ],
)
def test_bad_rules_are_rejected_with_the_key_and_a_fix(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        validate_mapping(RulesConfig, data, "shipper.yaml")
    text = "; ".join(exc.value.errors)
    assert message in text and "fix" in text


def test_an_access_rule_may_choose_its_format_and_other_types_may_not() -> None:
    cfg = validate_mapping(RulesConfig, {"emptydir": [
        {"match": ["*ingress*.log"], "type": "access", "format": "upstreaminfo"},
        {"match": ["*access*.log"], "type": "access"},
    ]}, "shipper.yaml")
    rules = Rules.from_config(cfg)
    assert rules.for_emptydir("logs", "ingress.log").access_format == "upstreaminfo"  # type: ignore[union-attr]
    assert rules.for_emptydir("logs", "access.log").access_format == ""  # type: ignore[union-attr]  # auto: no header
    with pytest.raises(ConfigError) as exc:
        validate_mapping(RulesConfig, {"emptydir": [{"match": ["*.log"], "type": "app", "format": "combined"}]}, "s")
    assert "emptydir.0" in "; ".join(exc.value.errors) and "fix: remove `format`" in "; ".join(exc.value.errors)
    with pytest.raises(ConfigError) as exc:
        validate_mapping(RulesConfig, {"emptydir": [{"match": ["*.log"], "type": "access", "format": "apache"}]}, "s")
    assert "emptydir.0.format" in "; ".join(exc.value.errors)


def test_the_rule_format_literal_is_the_envelope_vocabulary() -> None:
    from typing import get_args

    from logpipe.core.envelope import ACCESS_FORMATS
    from parsers.access_text import FORMAT_NAMES
    from shipper.rules import AccessFormat

    assert get_args(AccessFormat) == ACCESS_FORMATS
    assert set(ACCESS_FORMATS) == {"auto", "json", *FORMAT_NAMES}
