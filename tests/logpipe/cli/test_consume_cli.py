"""`logpipe consume` refuses bad configuration with exit code 2 and a message naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from logpipe.cli.main import app


def test_an_unknown_config_key_exits_2_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "consume.yaml"
    cfg.write_text("kafka:\n  bootstrap_servers: x:9092\n")

    result = CliRunner().invoke(app, ["consume", "--config", str(cfg)])

    assert result.exit_code == 2
    assert "kafka.bootstrap_servers" in result.output
    assert "fix" in result.output


def test_an_invalid_flag_value_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["consume", "--http-port", "99999"])

    assert result.exit_code == 2
    assert "http.port" in result.output


def test_a_missing_rules_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["consume", "--rules", str(tmp_path / "nope.yaml")])

    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def test_an_invalid_latency_rule_exits_2_at_start_up_naming_the_key_and_the_fix(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "channels: {am: {type: alertmanager}}\n"
        "rules:\n  - name: pay-slow\n    condition: {p99: 800, within: 5m, min_count: 50}\n"
    )
    result = CliRunner().invoke(app, ["consume", "--rules", str(rules)])

    assert result.exit_code == 2
    assert "rule 'pay-slow' (rules[0]) condition.p99: 800 has no unit — fix: write it with one, e.g. 800ms" in (
        result.output
    )
