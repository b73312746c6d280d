"""`logpipe config check FILE...` and `logpipe config docs`: validate configuration before a deploy does.

Each kind of file has one model (the shipper's, the consumer's, alert rules: see
:mod:`logpipe.tools.config_kinds`); the kind is given with ``--kind`` or guessed from the file's keys.
Alert rule files are checked by the alerts' own validator, so ``config check`` reports exactly what
``logpipe alerts validate`` and ``logpipe consume --rules`` would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from logpipe.core.config_base import ConfigError, read_yaml
from logpipe.tools.config_kinds import KINDS

app = typer.Typer(no_args_is_help=True)

__all__ = ["KINDS", "app", "check_file", "guess_kind"]


def _fit(model: type[BaseModel], data: dict[Any, Any]) -> int:
    """How well ``data``'s keys fit ``model``: +1 per known key (recursively), -1 per unknown or misshapen one."""
    from logpipe.dev.config_docs import field_meta, nested_models, yaml_key

    fields = {yaml_key(name, info): info for name, info in model.model_fields.items()}
    score = 0
    for key, value in data.items():
        info = fields.get(key)
        if info is None:
            score -= 1
            continue
        inner = nested_models(info.annotation, field_meta(info))
        if not inner:
            score += 1
            continue
        suffix = inner[0][0]
        models = [v.model for _, v in inner]
        if suffix == "" and isinstance(value, dict):
            score += 1 + max(_fit(m, value) for m in models)
        elif suffix.startswith("[]") and isinstance(value, list):
            score += 1 + sum(max(_fit(m, item) for m in models) for item in value if isinstance(item, dict))
        elif suffix.startswith(".<name>") and isinstance(value, dict):
            items = [v for v in value.values() if isinstance(v, dict)]
            score += 1 + sum(max(_fit(m, item) for m in models) for item in items)
        elif value is None:
            score += 1
        else:
            score -= 1  # e.g. a list of alert rules where the shipper expects its `rules:` section
    return score


def candidate_kinds(data: Any) -> list[str]:
    """The kinds whose models fit ``data``'s keys best (recursively): one, several that tie, or none."""
    if not isinstance(data, dict) or not data:
        return []
    scores = {name: _fit(k.model(), data) for name, k in KINDS.items()}
    best = max(scores.values())
    return [name for name, score in scores.items() if score == best] if best > 0 else []


def guess_kind(data: Any) -> str | None:
    """The kind ``data`` configures; a tie goes to the only kind it is valid for, else None."""
    kinds = candidate_kinds(data)
    if len(kinds) > 1:
        valid = [k for k in kinds if _errors(k, data, "<guess>") == []]
        kinds = valid if len(valid) == 1 else []
    return kinds[0] if len(kinds) == 1 else None


def _errors(kind: str, data: Any, source: str, **options: Any) -> list[str]:
    try:
        KINDS[kind].validate(data, source, **options)
    except ConfigError as exc:
        return exc.errors
    return []


def _read(path: str, kind: str | None) -> Any:
    """The parsed file, with the reader of its kind (alert rules also accept YAML 1.2)."""
    if kind is not None:
        return KINDS[kind].read(path)
    try:
        return read_yaml(path)
    except ConfigError as first:
        try:
            data = KINDS["rules"].read(path)
        except ConfigError:
            raise first from None
        if guess_kind(data) != "rules":
            raise first from None
        return data


def check_file(path: str, kind: str | None = None, alertmanager_url: str | None = None) -> tuple[str, list[str]]:
    """Validate ``path``; returns the kind used and the list of errors (empty when valid)."""
    try:
        data = _read(path, kind)
    except ConfigError as exc:
        return kind or "?", exc.errors
    kind = kind or guess_kind(data)
    if kind is None:
        kinds = candidate_kinds(data) or list(KINDS)
        what = " or ".join(kinds)
        return "?", [f"<root>: cannot tell whether this is a {what} file — fix: pass --kind {'|'.join(kinds)}"]
    options = {"alertmanager_url": alertmanager_url} if kind == "rules" else {}
    try:
        cfg = KINDS[kind].validate(data, path, **options)
    except ConfigError as exc:
        return kind, exc.errors
    return kind, _check_references(kind, cfg, alertmanager_url)


def _check_references(kind: str, cfg: BaseModel, alertmanager_url: str | None) -> list[str]:
    """Errors of the files a valid configuration names: ``logpipe consume`` would not start with them.

    The consumer's ``alerts.rules`` is checked as ``logpipe consume`` loads it (relative to the
    working directory, with ``alerts.alertmanager_url`` unless the flag overrides it).
    """
    alerts = getattr(cfg, "alerts", None) if kind == "consumer" else None
    rules = getattr(alerts, "rules", None)
    if not isinstance(rules, str) or not rules:
        return []
    _, errors = check_file(rules, "rules", alertmanager_url or getattr(alerts, "alertmanager_url", None))
    return [f"alerts.rules ({rules}): {e}" for e in errors]


@app.command("check")
def check(
    files: Annotated[list[str], typer.Argument(help="YAML files to validate.")],
    kind: Annotated[str | None, typer.Option(help="shipper, consumer or rules (default: guessed).")] = None,
    alertmanager_url: Annotated[
        str | None,
        typer.Option("--alertmanager-url", help="Rule files: the URL `logpipe consume` passes (adds that channel)."),
    ] = None,
) -> None:
    """Validate config files (kind guessed from the keys): each error names its key and the fix; exit 1 if any."""
    if kind is not None and kind not in KINDS:
        typer.echo(f"--kind {kind!r}: use one of {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    bad = 0
    for f in files:
        used, errors = check_file(f, kind, alertmanager_url)
        if errors:
            bad += 1
            typer.echo(f"{f}: invalid {used} configuration, {len(errors)} error(s):", err=True)
            for e in errors:
                typer.echo("  - " + e.replace("\n", "\n    "), err=True)
        else:
            typer.echo(f"{f}: valid {used} configuration")
    raise typer.Exit(1 if bad else 0)


@app.command("docs")
def docs(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    check_only: Annotated[
        bool, typer.Option("--check", help="Exit 1 if --output (default docs/CONFIG.md) is not up to date.")
    ] = False,
) -> None:
    """Print the configuration reference (docs/CONFIG.md), generated from the models."""
    from logpipe.dev.config_docs import REGENERATE, render

    text = render()
    if check_only:
        target = output or Path("docs/CONFIG.md")
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            typer.echo(f"{target} is out of date — fix: run `{REGENERATE}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{target} is up to date")
        return
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
