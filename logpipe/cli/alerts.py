"""`logpipe alerts validate|test|list`: check a rule file, replay logs through it, show what fires now.

Exit codes: ``validate`` 0 valid, 1 invalid; ``test`` 0 some alert would fire, 1 none, 2 error
(like grep, so a rule can be checked in CI); ``list`` 0, or 2 when Alertmanager cannot be read.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from logpipe.core.config_base import ConfigError

if TYPE_CHECKING:
    from consumer.alerts.evaluate import Match
    from consumer.alerts.replay import ReplayEvent
    from consumer.alerts.rules import Rule, RuleFile

# The alert engine (and aiohttp behind it) is imported inside the commands: every `logpipe` verb
# loads this module, and `logpipe query` must start in milliseconds.

app = typer.Typer(no_args_is_help=True)

DEFAULT_AM = "http://127.0.0.1:9093"
RulesArg = Annotated[str, typer.Argument(help="The rule file (YAML), e.g. deploy/alerts.yaml.")]
AmOpt = Annotated[
    str | None,
    typer.Option("--alertmanager-url", help="Overrides the alertmanager channel's url (as `logpipe consume`)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def _load(rules: str, alertmanager_url: str | None) -> RuleFile:
    from consumer.alerts.rules import load_rule_file

    try:
        return load_rule_file(rules, alertmanager_url)
    except ConfigError as exc:
        typer.echo(exc.render(), err=True)
        raise typer.Exit(1) from None


def _condition(rule: Rule) -> str:
    from consumer.alerts.rules import AbsentCondition, AnyCondition, CountCondition, LatencyCondition, RatioCondition
    from consumer.alerts.templates import format_duration, format_latency

    c = rule.condition
    if isinstance(c, AnyCondition):
        return "every match"
    if isinstance(c, CountCondition):
        return f">= {c.count} within {format_duration(c.within)}"
    if isinstance(c, RatioCondition):
        return f">= {c.ratio:.1%} of lines within {format_duration(c.within)} (min {c.min_count})"
    if isinstance(c, AbsentCondition):
        return f"silent for {format_duration(c.absent)}"
    if isinstance(c, LatencyCondition):
        return (
            f"{c.statistic} of {c.field} >= {format_latency(c.threshold)} within {format_duration(c.within)} "
            f"(min {c.min_count})"
        )
    return "?"


@app.command("validate")
def validate(rules: RulesArg, alertmanager_url: AmOpt = None) -> None:
    """Check a rule file; errors name the rule, the key and the fix."""
    rf = _load(rules, alertmanager_url)
    for r in rf.rules:
        state = "" if r.enabled else " (disabled)"
        channels = ", ".join(r.channels or list(rf.channels))
        group = ", ".join(r.effective_group_by()) or "-"
        typer.echo(f"{r.name}{state}: {_condition(r)}; group by {group}; -> {channels}")
    typer.echo(f"ok: {len(rf.rules)} rule(s), {len(rf.channels)} channel(s)", err=True)


def _labels(m: Match) -> str:
    return " ".join(f"{k}={v}" for k, v in m.group) or "-"


def _print_event(ev: ReplayEvent, as_json: bool) -> None:
    from consumer.alerts.templates import iso, trace_command, trace_id_of

    m = ev.match
    trace_id = trace_id_of(m.doc) if m.doc is not None and m.status == "firing" else ""
    if as_json:
        out = {
            "at": iso(m.at),
            "rule": m.rule,
            "status": m.status,
            "reason": m.reason,
            "labels": dict(m.group),
            "why": m.why,
            "count": m.count,
            "line": ev.line_no,
            "samples": list(m.samples),
        }
        if m.value is not None:
            out["value"] = m.value  # the latency statistic, seconds
        if trace_id:
            out["trace_id"] = trace_id
        typer.echo(orjson.dumps(out).decode())
        return
    head = "FIRING" if m.reason == "new" else ("REALERT" if m.reason == "realert" else "RESOLVED")
    typer.echo(f"{iso(m.at)}  {head:<8} {m.rule}  {_labels(m)}  (line {ev.line_no}) — {m.why}")
    if m.status == "firing" and m.samples:
        typer.echo(f"    sample: {m.samples[-1]}")
    if trace_id:
        typer.echo(f"    trace:  {trace_command(trace_id)}")


@app.command("test")
def test(
    rules: RulesArg,
    logs: Annotated[str, typer.Option("--logs", help="Log file to replay (.gz ok, - for stdin).")],
    log_type: Annotated[
        str, typer.Option("--type", help="Type of raw lines: access | app | stdout | trace (ECS docs: any).")
    ] = "access",
    component: Annotated[str, typer.Option("--component", help="Component of raw lines (service.name).")] = "",
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace of raw lines.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Replay a log file through the rules with the log's own timestamps; print what would fire, when, why."""
    from consumer.alerts.matcher import compile_rule
    from consumer.alerts.replay import ReplayedLine, open_logs, read_docs, replay

    rf = _load(rules, None)
    compiled = [compile_rule(r, rf.engine) for r in rf.rules if r.enabled]
    fired: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    bad = 0
    try:
        with open_logs(logs) as fh:
            for item in replay(compiled, read_docs(fh, log_type, component, namespace)):
                if isinstance(item, ReplayedLine):
                    bad += 1
                    if bad <= 5:
                        typer.echo(f"line {item.line_no}: skipped: {item.error}", err=True)
                    continue
                if item.match.reason == "reassert":
                    continue
                (resolved if item.match.status == "resolved" else fired)[item.match.rule] += 1
                _print_event(item, as_json)
    except OSError as exc:
        typer.echo(f"logpipe alerts test: cannot read {logs}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    for r in compiled:
        typer.echo(f"{r.name}: {fired[r.name]} firing, {resolved[r.name]} resolved", err=True)
    if bad:
        typer.echo(f"{bad} line(s) could not be parsed", err=True)
    raise typer.Exit(0 if sum(fired.values()) else 1)


def _row(alert: dict[str, Any]) -> str:
    labels = dict(alert.get("labels") or {})
    name = labels.pop("alertname", "?")
    severity = labels.pop("severity", "")
    state = (alert.get("status") or {}).get("state", "")
    rest = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    summary = (alert.get("annotations") or {}).get("summary", "")
    return f"{alert.get('startsAt', '')[:19]}  {name}  {severity}  {state}  {rest}" + (
        f"\n    {summary}" if summary else ""
    )


@app.command("list")
def list_alerts(
    alertmanager_url: AmOpt = None,
    rules: Annotated[str | None, typer.Option("--rules", help="Only alerts of this rule file's rules.")] = None,
    as_json: JsonOpt = False,
    user: Annotated[
        str | None, typer.Option("--alertmanager-user", envvar="LOGPIPE_ALERTMANAGER_USERNAME", help="Basic auth user.")
    ] = None,
    password_file: Annotated[
        str | None,
        typer.Option("--alertmanager-password-file", envvar="LOGPIPE_ALERTMANAGER_PASSWORD_FILE",
                     help="File holding the password (or set LOGPIPE_ALERTMANAGER_PASSWORD)."),
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option("--alertmanager-ca-file", envvar="LOGPIPE_ALERTMANAGER_CA_FILE",
                     help="PEM CA of Alertmanager's certificate (https)."),
    ] = None,
) -> None:
    """What is firing now, read from Alertmanager (default $LOGPIPE_ALERTMANAGER_URL or 127.0.0.1:9093)."""
    import aiohttp

    from consumer.alerts.restore import fetch_alerts
    from logpipe.core.http_auth import HttpClientAuth
    from logpipe.core.secrets import redact_urls

    url = alertmanager_url or os.environ.get("LOGPIPE_ALERTMANAGER_URL") or DEFAULT_AM
    try:
        auth = HttpClientAuth.model_validate(
            {k: v for k, v in {"username": user, "password_file": password_file, "ca_file": ca_file}.items() if v}
        )
        alerts = asyncio.run(fetch_alerts(url, auth=auth))
    except aiohttp.ClientResponseError as exc:
        fix = (" — fix: pass --alertmanager-user with --alertmanager-password-file (or LOGPIPE_ALERTMANAGER_*)"
               if exc.status in (401, 403) else "")
        shown = redact_urls(url)
        typer.echo(f"logpipe alerts list: Alertmanager at {shown} answered {exc.status} {exc.message}{fix}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        shown = redact_urls(url)
        typer.echo(f"logpipe alerts list: cannot read alerts from Alertmanager at {shown}: {redact_urls(str(exc))}",
                   err=True)
        raise typer.Exit(2) from None
    if rules is not None:
        names = {r.name for r in _load(rules, url).rules}
        alerts = [a for a in alerts if (a.get("labels") or {}).get("alertname") in names]
    alerts.sort(key=lambda a: str(a.get("startsAt", "")))
    for a in alerts:
        typer.echo(orjson.dumps(a).decode() if as_json else _row(a))
    if not alerts and not as_json:
        typer.echo("no alerts firing", err=True)
