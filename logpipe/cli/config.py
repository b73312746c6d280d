"""`logpipe config check FILE`: validate a configuration file before a deploy does.

Each kind of file has one model (the shipper's, the consumer's, alert rules); the kind is given
with ``--kind`` or guessed from the file's top-level keys.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from logpipe.config_base import ConfigError, read_yaml, validate_mapping

app = typer.Typer(no_args_is_help=True)

# kind -> "module:attribute" of its model; imported lazily so `config check` stays quick.
KINDS: dict[str, str] = {
    "shipper": "shipper.config:ShipperConfig",
    "consumer": "consumer.config:ConsumerConfig",
    "rules": "consumer.alerts.rules:RuleFile",
}


def _model(kind: str) -> type[BaseModel]:
    module, attr = KINDS[kind].split(":")
    model = getattr(importlib.import_module(module), attr)
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def guess_kind(data: Any) -> str | None:
    """The kind whose model shares the most top-level keys with ``data``."""
    if not isinstance(data, dict) or not data:
        return None
    if "rules" in data:
        return "rules"
    best, score = None, 0
    for kind in ("shipper", "consumer"):
        fields = set(_model(kind).model_fields)
        s = len(fields & set(data))
        if s > score:
            best, score = kind, s
    return best


def check_file(path: str, kind: str | None = None) -> tuple[str, list[str]]:
    """Validate ``path``; returns the kind used and the list of errors (empty when valid)."""
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        return kind or "?", exc.errors
    kind = kind or guess_kind(data)
    if kind is None:
        return "?", ["<root>: cannot tell what this file configures — fix: pass --kind shipper|consumer|rules"]
    try:
        validate_mapping(_model(kind), data, path)
    except ConfigError as exc:
        return kind, exc.errors
    return kind, []


@app.command("check")
def check(
    files: Annotated[list[str], typer.Argument(help="YAML files to validate.")],
    kind: Annotated[str | None, typer.Option(help="shipper, consumer or rules (default: guessed).")] = None,
) -> None:
    """Report every error with the key's path and the fix; exit 1 when any file is invalid."""
    if kind is not None and kind not in KINDS:
        typer.echo(f"--kind {kind!r}: use one of {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    bad = 0
    for f in files:
        used, errors = check_file(f, kind)
        if errors:
            bad += 1
            typer.echo(f"{f}: invalid {used} configuration, {len(errors)} error(s):", err=True)
            for e in errors:
                typer.echo(f"  - {e}", err=True)
        else:
            typer.echo(f"{f}: valid {used} configuration")
    raise typer.Exit(1 if bad else 0)
