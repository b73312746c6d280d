"""`logpipe ship`: run the node agent (tail pod logs -> Kafka, at least once).

Flags override the config file; with neither, the defaults in ``shipper/config.py`` apply, so
``logpipe ship --pods-root /tmp/x/pods --logs-root /tmp/x/logs --registry /tmp/x/reg`` ships a test
tree to a local Kafka. SIGTERM (or Ctrl-C) stops reading, flushes within ``shutdown_grace``, writes
the registry and exits 0. The HTTP port (``--http-port 0`` picks a free one) is printed on stdout as
``http_port=<n>`` and logged in the ``ShipperStarted`` event.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from logpipe.core.config_base import ConfigError, format_validation_error, load_model


def ship(
    config: Path | None = typer.Option(None, "--config", help="Shipper config file (YAML)."),
    pods_root: str | None = typer.Option(None, "--pods-root", help="The kubelet's pods directory."),
    logs_root: str | None = typer.Option(None, "--logs-root", help="The kubelet's container log directory."),
    registry: str | None = typer.Option(None, "--registry", help="Checkpoint file."),
    kafka_bootstrap: str | None = typer.Option(None, "--kafka-bootstrap", help="Kafka bootstrap, HOST:PORT."),
    node_name: str | None = typer.Option(None, "--node-name", help="This node's name on every line."),
    http_port: int | None = typer.Option(None, "--http-port", help="Port of /healthz, /readyz, /metrics (0: free)."),
) -> None:
    from pydantic import ValidationError

    from shipper.config import ShipperConfig

    try:
        cfg = load_model(ShipperConfig, config)
        cfg = apply_overrides(
            cfg,
            pods_root=pods_root,
            logs_root=logs_root,
            registry=registry,
            kafka_bootstrap=kafka_bootstrap,
            node_name=node_name,
            http_port=http_port,
        )
    except ConfigError as exc:
        typer.echo(exc.render(), err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        typer.echo(ConfigError("command line", format_validation_error(exc)).render(), err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(asyncio.run(_run(cfg)))


def apply_overrides(cfg: Any, **flags: Any) -> Any:
    """The config with the command-line flags that were given applied (validated again)."""
    from shipper.config import ShipperConfig

    data = cfg.model_dump()
    if flags.get("pods_root") is not None:
        data["pods_root"] = flags["pods_root"]
    if flags.get("logs_root") is not None:
        data["logs_root"] = flags["logs_root"]
    if flags.get("registry") is not None:
        data["registry"]["path"] = flags["registry"]
    if flags.get("kafka_bootstrap") is not None:
        data["kafka"]["bootstrap"] = flags["kafka_bootstrap"]
    if flags.get("node_name") is not None:
        data["node_name"] = flags["node_name"]
    if flags.get("http_port") is not None:
        data["http"]["port"] = flags["http_port"]
    return ShipperConfig.model_validate(data)


async def _run(cfg: Any) -> int:
    from shipper.agent import Agent
    from shipper.registry import RegistryError
    from shipper.telemetry import configure_json_logging

    configure_json_logging(cfg.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        agent = Agent(cfg)
    except ConfigError as exc:  # e.g. a sink whose client library this install lacks
        print(exc.render(), file=sys.stderr)
        return 2
    run = asyncio.create_task(agent.run(stop))
    while not agent.http_port and not run.done():
        await asyncio.sleep(0.01)
    if agent.http_port:
        print(f"http_port={agent.http_port}", flush=True)
    try:
        return await run
    except RegistryError as exc:
        print(f"logpipe ship: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the HTTP port is taken, a root or the registry directory unreadable
        print(f"logpipe ship: {exc}", file=sys.stderr)
        return 1
