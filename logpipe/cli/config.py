"""`logpipe config ...`."""

from __future__ import annotations

import typer

from logpipe.cli.notyet import not_implemented

app = typer.Typer(no_args_is_help=True)


@app.command("todo")
def todo() -> None:
    not_implemented("config")
