"""How a verb whose issue is still open answers: it says so and exits 2."""

from __future__ import annotations

import typer


def not_implemented(verb: str) -> None:
    typer.echo(f"logpipe {verb}: not implemented yet", err=True)
    raise typer.Exit(2)
