"""`logpipe config check`: examples pass, each kind of mistake fails naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from logpipe.cli.main import app
from logpipe.dev.config_docs import render

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = {"shipper": ROOT / "examples" / "shipper.yaml", "consumer": ROOT / "examples" / "consumer.yaml",
            "rules": ROOT / "examples" / "rules.yaml"}

runner = CliRunner()


def check(*args: str | Path) -> Result:
    return runner.invoke(app, ["config", "check", *map(str, args)])


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # examples/consumer.yaml names examples/rules.yaml relative to the working directory, as deployed
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.yaml")))
def test_every_example_is_valid_and_its_kind_is_guessed(example: str) -> None:
    path = ROOT / "examples" / example
    kind = example.split(".")[0].split("-")[0]  # shipper.yaml, shipper-sls.yaml, rules.yaml ...
    result = check(path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{path}: valid {kind} configuration"


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_each_example_is_valid_when_its_kind_is_given(kind: str) -> None:
    result = check(EXAMPLES[kind], "--kind", kind)
    assert result.exit_code == 0, result.output


def test_an_unknown_key_names_its_path_and_says_to_check_the_spelling(tmp_path: Path) -> None:
    f = write(tmp_path, "pods_root: /tmp/pods\nkafka:\n  bootstrap: 127.0.0.1:9092\n  lingr: 5ms\n")
    result = check(f)
    assert result.exit_code == 1
    assert "invalid shipper configuration, 1 error(s)" in result.stderr
    assert "kafka.lingr: Extra inputs are not permitted — fix: remove it, or check its spelling" in result.stderr


def test_a_wrong_type_names_its_path_and_the_type_to_use(tmp_path: Path) -> None:
    f = write(tmp_path, "index:\n  shards: many\nelasticsearch: {url: 'http://127.0.0.1:9200'}\n")
    result = check(f)
    assert result.exit_code == 1
    assert "invalid consumer configuration" in result.stderr
    assert "index.shards: Input should be a valid integer" in result.stderr
    assert "— fix: use a whole number" in result.stderr


def test_a_bad_duration_names_its_path_and_the_accepted_forms(tmp_path: Path) -> None:
    f = write(tmp_path, "logs_root: /tmp/logs\ntail:\n  poll_interval: 5 mins\n")
    result = check(f)
    assert result.exit_code == 1
    assert "tail.poll_interval: invalid duration '5 mins': use a number and a unit, e.g. 500ms, 30s" in result.stderr


def test_an_invalid_where_expression_names_the_rule_and_the_column(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "channels:\n  am: {type: alertmanager}\n"
        "rules:\n  - name: pay-5xx\n    match: {where: 'status>>500'}\n",
    )
    result = check(f)
    assert result.exit_code == 1
    assert "invalid rules configuration" in result.stderr
    assert "rule 'pay-5xx' (rules[0]) match.where:" in result.stderr
    assert "at column 8 of 'status>>500' — fix:" in result.stderr


def test_rule_files_get_exactly_the_errors_of_alerts_validate(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "channels:\n  am: {type: alertmanager}\n"
        "rules:\n"
        "  - name: a\n    match: {where: 'nosuchfield>1', regexes: ['(']}\n    channels: [pager]\n"
        "  - name: a\n    condition: {count: 3, within: 1m}\n",
    )
    ours = check(f, "--kind", "rules")
    theirs = runner.invoke(app, ["alerts", "validate", str(f)])
    assert ours.exit_code == theirs.exit_code == 1
    their_errors = [line.strip() for line in theirs.stderr.splitlines() if line.strip().startswith("- ")]
    our_errors = [line.strip() for line in ours.stderr.splitlines() if line.strip().startswith("- ")]
    assert their_errors and our_errors == their_errors
    for problem in ("unknown field 'nosuchfield'", "invalid regex '('", "unknown channel 'pager'", "duplicate rule"):
        assert any(problem in e for e in our_errors), problem


def test_the_alertmanager_url_flag_stands_in_for_a_rule_files_only_channel(tmp_path: Path) -> None:
    f = write(tmp_path, "rules:\n  - name: panic\n    match: {keywords: [panic]}\n")
    without = check(f)
    assert without.exit_code == 1
    assert "no channel to notify — fix:" in without.stderr
    assert check(f, "--alertmanager-url", "http://127.0.0.1:9093").exit_code == 0


def test_the_rule_file_a_consumer_config_names_is_checked_too(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules:\n  - name: panic\n    match: {where: 'status>>1'}\n", "rules.yaml")
    f = write(tmp_path, f"alerts:\n  rules: {rules}\n  alertmanager_url: http://127.0.0.1:9093\n")
    result = check(f)
    assert result.exit_code == 1
    assert "invalid consumer configuration, 1 error(s)" in result.stderr
    assert f"alerts.rules ({rules}): rule 'panic' (rules[0]) match.where:" in result.stderr
    missing = write(tmp_path, "alerts: {rules: /nonexistent/rules.yaml}\nkafka: {group_id: g}\n", "missing.yaml")
    result = check(missing)
    assert result.exit_code == 1
    assert "alerts.rules (/nonexistent/rules.yaml): <file>: cannot read it" in result.stderr


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    f = write(tmp_path, "kafka:\n  bootstrap: 127.0.0.1:9092\n  topics: [a, b\nlog_level: info\n")
    result = check(f)
    assert result.exit_code == 1
    assert "<yaml>: syntax error at line 4" in result.stderr


def test_a_shipper_file_with_a_rules_section_is_not_taken_for_alert_rules(tmp_path: Path) -> None:
    f = write(tmp_path, "rules:\n  topic_prefix: app-\n  emptydir: []\n")
    result = check(f)
    assert result.exit_code == 0, result.output
    assert "valid shipper configuration" in result.stdout


def test_a_file_that_fits_two_kinds_asks_for_kind(tmp_path: Path) -> None:
    f = write(tmp_path, "log_level: debug\n")  # both the shipper and the consumer have log_level
    result = check(f)
    assert result.exit_code == 1
    assert "cannot tell whether this is a shipper or consumer file — fix: pass --kind shipper|consumer" in (
        result.stderr
    )
    assert check(f, "--kind", "consumer").exit_code == 0


def test_a_tie_goes_to_the_kind_the_file_is_valid_for(tmp_path: Path) -> None:
    # kafka.topics is a list for the consumer, a mapping for the shipper
    f = write(tmp_path, "kafka:\n  topics: [logpipe-access]\n")
    result = check(f)
    assert result.exit_code == 0, result.output
    assert "valid consumer configuration" in result.stdout


def test_every_file_is_reported_and_one_bad_file_fails_the_run(tmp_path: Path) -> None:
    bad = write(tmp_path, "pods_root: /tmp/pods\nhttp: {port: 70000}\n", "bad.yaml")
    result = check(EXAMPLES["consumer"], bad)
    assert result.exit_code == 1
    assert f"{EXAMPLES['consumer']}: valid consumer configuration" in result.stdout
    assert "http.port: Input should be less than or equal to 65535 — fix: use a smaller value" in result.stderr


def test_an_unknown_kind_is_a_usage_error() -> None:
    result = check(EXAMPLES["shipper"], "--kind", "shiper")
    assert result.exit_code == 2
    assert "use one of shipper, consumer, rules" in result.stderr


def test_config_docs_prints_the_reference_and_check_spots_a_stale_copy(tmp_path: Path) -> None:
    out = tmp_path / "CONFIG.md"
    assert runner.invoke(app, ["config", "docs", "-o", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == render()
    assert runner.invoke(app, ["config", "docs", "--check", "-o", str(out)]).exit_code == 0
    out.write_text(render().replace("| `log_level` |", "| `loglevel` |", 1), encoding="utf-8")
    stale = runner.invoke(app, ["config", "docs", "--check", "-o", str(out)])
    assert stale.exit_code == 1
    assert "is out of date — fix: run `python -m logpipe.dev.config_docs > docs/CONFIG.md`" in stale.stderr
