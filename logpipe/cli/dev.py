"""`logpipe dev up|down|status`: the local Kafka, Elasticsearch, Alertmanager and Jaeger on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from logpipe.dev.services.errors import DevServiceError
from logpipe.dev.services.manager import ServiceManager, ServiceStatus

app = typer.Typer(no_args_is_help=True)

PurgeOpt = Annotated[bool, typer.Option("--purge", help="Also delete the state folder (data, logs).")]
NamesArg = Annotated[
    list[str] | None,
    typer.Argument(help="Services to act on: kafka, elasticsearch, alertmanager, jaeger (default: all)."),
]


def _report(message: str) -> None:
    typer.echo(message, err=True)


def _print(statuses: list[ServiceStatus]) -> None:
    for st in statuses:
        pid = f"pid {st.pid}" if st.pid else ""
        line = f"{st.name:<14} {st.state:<9} {st.endpoint:<24} {pid}"
        typer.echo((line + (f"  {st.detail}" if st.detail else "")).rstrip())


@app.command("up")
def up(names: NamesArg = None) -> None:
    """Provision (first run downloads), start and wait until healthy; already running is fine."""
    began = time.monotonic()
    try:
        statuses = ServiceManager(report=_report).up(names or None)
    except DevServiceError as exc:
        typer.echo(f"logpipe dev up: {exc}", err=True)
        raise typer.Exit(1) from None
    _print(statuses)
    typer.echo(f"ready in {time.monotonic() - began:.1f} s", err=True)


@app.command("down")
def down(
    names: NamesArg = None,
    purge: PurgeOpt = False,
) -> None:
    """Stop the services `logpipe dev up` started (by their pid files); nothing is left listening."""
    manager = ServiceManager(report=_report)
    try:
        if names:
            if purge:
                typer.echo("logpipe dev down: --purge removes all services' data; name no services", err=True)
                raise typer.Exit(2)
            for name in names:
                manager.stop(name)
        else:
            manager.down(purge=purge)
    except DevServiceError as exc:
        typer.echo(f"logpipe dev down: {exc}", err=True)
        raise typer.Exit(1) from None
    _print(manager.status())
    if purge:
        typer.echo(f"removed {manager.paths.state}", err=True)


@app.command("status")
def status() -> None:
    """Show each service's state, endpoint and pid; exits 1 unless all are running."""
    statuses = ServiceManager(report=_report).status()
    _print(statuses)
    if any(st.state not in ("running", "external") for st in statuses):
        raise typer.Exit(1)
