"""`logpipe alerts validate|test|list`: exit codes, what is printed, replay with the log's own clock."""

from __future__ import annotations

import gzip
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from consumer.alerts.templates import iso
from logpipe.cli.main import app
from tests.consumer.alerts.test_rules import CONTRACT

runner = CliRunner()

# The contract file (shared with the rule-model tests) plus an absence rule.
RULES = (
    CONTRACT
    + """\
  - name: pay-silent
    match: {components: [pay-gw]}
    condition: {absent: 1m}
"""
)


def access_log(path: Path, errors_at: range, seconds: int = 100) -> None:
    """One access line per second from 10:00:00; lines in ``errors_at`` are 502 panics."""
    lines = []
    for i in range(seconds):
        err = i in errors_at
        obj = {
            "time": f"2026-11-27T10:{i // 60:02d}:{i % 60:02d}+00:00",
            "path": "/pay/confirm",
            "status": 502 if err else 200,
            "latency": 12,
            "msg": "panic: upstream reset" if err else "ok",
        }
        lines.append(orjson.dumps(obj))
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(RULES)
    return p


def test_validate_lists_the_rules(rules: Path) -> None:
    result = runner.invoke(app, ["alerts", "validate", str(rules)])
    assert result.exit_code == 0, result.output
    assert "pay-5xx: >= 3 within 30s; group by service.name, url.path; -> alertmanager, pay-robot" in result.stdout
    assert "pay-silent: silent for 1m; group by service.name" in result.stdout


def test_validate_names_rule_key_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: slow\n    condition: {count: 3, within: soon}\n    chanels: [x]\n")
    result = runner.invoke(app, ["alerts", "validate", str(bad)])
    assert result.exit_code == 1
    assert "rule 'slow' (rules[0]) condition.within: invalid duration 'soon'" in result.stderr
    assert "rule 'slow' (rules[0]) chanels: Extra inputs are not permitted — fix: remove it" in result.stderr


def test_replay_prints_what_fires_when_and_why(rules: Path, tmp_path: Path) -> None:
    logs = tmp_path / "access.log.gz"
    plain = tmp_path / "access.log"
    access_log(plain, range(20, 25))
    logs.write_bytes(gzip.compress(plain.read_bytes()))
    result = runner.invoke(app, ["alerts", "test", str(rules), "--logs", str(logs), "--component", "pay-gw"])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    fired = [line for line in out if "FIRING" in line]
    assert fired == [
        "2026-11-27T10:00:22.000Z  FIRING   pay-5xx  service_name=pay-gw url_path=/pay/confirm  (line 23) "
        "— 3 matching lines within 30s (threshold 3)"
    ]
    assert any(line.startswith("2026-11-27T10:01:") and "RESOLVED pay-5xx" in line for line in out)
    assert "pay-5xx: 1 firing, 1 resolved" in result.stderr
    assert "pay-silent: 0 firing, 0 resolved" in result.stderr  # the file's end is not a silence


def test_replay_exit_1_when_nothing_would_fire_and_json_output(rules: Path, tmp_path: Path) -> None:
    logs = tmp_path / "quiet.log"
    access_log(logs, range(20, 22))  # only 2 errors: below the threshold
    result = runner.invoke(app, ["alerts", "test", str(rules), "--logs", str(logs), "--component", "pay-gw", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""


def test_replay_reads_ecs_documents_and_detects_absence(rules: Path, tmp_path: Path) -> None:
    docs = [
        {"@timestamp": "2026-11-27T10:00:00Z", "message": "ok", "service": {"name": "pay-gw"}},
        {"@timestamp": "2026-11-27T10:00:30Z", "message": "ok", "service": {"name": "pay-gw"}},
        {"@timestamp": "2026-11-27T10:03:00Z", "message": "ok", "service": {"name": "cart"}},
        {"@timestamp": "2026-11-27T10:03:05Z", "message": "back", "service": {"name": "pay-gw"}},
    ]
    logs = tmp_path / "ecs.ndjson"
    logs.write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n")
    result = runner.invoke(app, ["alerts", "test", str(rules), "--logs", str(logs), "--json"])
    assert result.exit_code == 0, result.output
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(e["at"], e["rule"], e["status"]) for e in events] == [
        ("2026-11-27T10:01:30.000Z", "pay-silent", "firing"),
        ("2026-11-27T10:03:05.000Z", "pay-silent", "resolved"),
    ]
    assert events[0]["labels"] == {"service_name": "pay-gw"}


def test_replay_of_a_missing_file_is_an_error(rules: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["alerts", "test", str(rules), "--logs", str(tmp_path / "nope.log")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_list_reports_an_unreachable_alertmanager() -> None:
    result = runner.invoke(app, ["alerts", "list", "--alertmanager-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot read alerts from Alertmanager at http://127.0.0.1:9" in result.stderr


def post_alerts(url: str, alerts: list[dict[str, object]]) -> None:
    req = urllib.request.Request(
        url + "/api/v2/alerts", data=orjson.dumps(alerts), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


@pytest.mark.integration
def test_list_shows_what_is_firing_in_alertmanager(alertmanager_url: str, tmp_path: Path) -> None:
    name = f"cli-list-{uuid.uuid4().hex[:8]}"
    now = time.time()
    alert: dict[str, object] = {
        "labels": {"alertname": name, "severity": "critical", "component": "pay-gw"},
        "annotations": {"summary": "3 errors on /pay"},
        "startsAt": iso(now),
        "endsAt": iso(now + 120),
        "generatorURL": f"http://logpipe.invalid/alerts/{name}",
    }
    post_alerts(alertmanager_url, [alert])
    rules = tmp_path / "r.yaml"
    rules.write_text(f"rules:\n  - name: {name}\n")
    try:
        result = runner.invoke(app, ["alerts", "list", "--alertmanager-url", alertmanager_url, "--rules", str(rules)])
    finally:
        alert["endsAt"] = iso(time.time())
        post_alerts(alertmanager_url, [alert])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2  # only this rule file's alerts
    assert f"  {name}  critical  active  component=pay-gw" in lines[0]
    assert lines[1].strip() == "3 errors on /pay"


LATENCY_RULES = """\
channels:
  alertmanager: {type: alertmanager}
rules:
  - name: pay-slow
    match: {components: [pay-gw], types: [access]}
    condition: {p99: 800ms, within: 1m, min_count: 20}
    group_by: [service.name]
    resolve: 30s
"""


def test_replay_of_a_latency_rule_fires_when_p99_crosses_and_resolves(tmp_path: Path) -> None:
    rules = tmp_path / "latency.yaml"
    rules.write_text(LATENCY_RULES)
    lines = []
    for i in range(300):  # one request a second; 10:01:00 .. 10:01:29 the upstream is slow
        slow = 60 <= i < 90
        obj = {"time": f"2026-11-27T10:{i // 60:02d}:{i % 60:02d}+00:00", "path": "/pay", "status": 200,
               "latency": 1500 if slow else 40, "msg": "ok"}
        lines.append(orjson.dumps(obj))
    logs = tmp_path / "access.log"
    logs.write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(app, ["alerts", "test", str(rules), "--logs", str(logs), "--component", "pay-gw", "--json"])
    assert result.exit_code == 0, result.output
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(e["status"], e["labels"]) for e in events] == [
        ("firing", {"service_name": "pay-gw"}), ("resolved", {"service_name": "pay-gw"}),
    ]
    fired, resolved = events
    # 60 fast requests in the window: the 1st slow one already is the p99 (rank 59 of 61)
    assert fired["at"] == "2026-11-27T10:01:01.000Z"
    assert abs(fired["value"] - 1.5) <= 0.015
    assert fired["why"].startswith("p99 1.5")
    # the last slow request leaves the window between 10:02:29 and 10:02:35, plus resolve 30 s
    assert "2026-11-27T10:02:59" <= resolved["at"] <= "2026-11-27T10:03:06", resolved["at"]
    check = runner.invoke(app, ["alerts", "validate", str(rules)])
    assert "pay-slow: p99 of event.duration >= 800ms within 1m (min 20); group by service.name" in check.stdout


def test_replay_of_span_lines_names_the_failing_trace(tmp_path: Path) -> None:
    rules = tmp_path / "spans.yaml"
    rules.write_text("""\
channels:
  alertmanager: {type: alertmanager}
rules:
  - name: pay-span-failure
    match: {types: [trace], components: [pay-gw], where: 'event.outcome=="failure"'}
""")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    start = 1_796_000_000_000_000_000
    spans = [
        {"traceId": trace_id, "spanId": "00f067aa0ba902b7", "name": "POST /pay", "kind": 2,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 120_000_000)},
        {"traceId": trace_id, "spanId": "00f067aa0ba902b8", "parentSpanId": "00f067aa0ba902b7", "name": "charge",
         "kind": 3, "startTimeUnixNano": str(start + 1_000_000), "endTimeUnixNano": str(start + 110_000_000),
         "status": {"code": 2, "message": "card declined"}},
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "pay-gw"}}]}
    logs = tmp_path / "trace.log"
    logs.write_bytes(orjson.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}))
    result = runner.invoke(app, ["alerts", "test", str(rules), "--logs", str(logs), "--type", "trace",
                                 "--component", "pay-gw"])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert next(line for line in out if "FIRING" in line).startswith(
        "2026-11-30T00:53:20.001Z  FIRING   pay-span-failure  -  (line 1)")
    assert f"    sample: charge 109ms failure trace {trace_id}" in out
    assert f"    trace:  logpipe trace {trace_id}" in out
    as_json = runner.invoke(app, ["alerts", "test", str(rules), "--logs", str(logs), "--type", "trace", "--json"])
    assert [orjson.loads(line)["trace_id"] for line in as_json.stdout.splitlines()] == [trace_id]
