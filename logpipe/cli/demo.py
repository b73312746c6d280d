"""`logpipe demo`: the local demo of the whole pipeline."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    work_dir: Annotated[str | None, typer.Option(help="Folder for the generated pod tree, registry and logs.")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the work folder afterwards.")] = False,
    sink: Annotated[
        str, typer.Option(help="kafka, or sls: ship to the local SLS and consume it through an SLS consumer group.")
    ] = "kafka",
) -> None:
    if sink not in ("kafka", "sls"):
        typer.echo(f"logpipe demo: --sink {sink!r}: use kafka or sls", err=True)
        raise typer.Exit(2)
    from logpipe.dev.demo.run import main

    raise typer.Exit(main(work_dir, keep, sink))
