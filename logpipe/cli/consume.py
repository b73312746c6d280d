"""`logpipe consume`: run the indexer (Kafka -> Elasticsearch, alert rules in-stream)."""

from __future__ import annotations

import asyncio
import gc
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from logpipe.core.config_base import ConfigError

if TYPE_CHECKING:
    from consumer.config import ConsumerConfig


def _alert_engine(rules: str, alertmanager_url: str | None) -> Any:
    """The alert engine for ``rules`` (imported lazily: alerts are optional)."""
    from consumer.alerts.engine import AlertEngine  # type: ignore[import-not-found,unused-ignore]

    return AlertEngine.from_file(rules, alertmanager_url)


def tune_gc() -> None:
    """Run the cyclic GC less often: the consumer allocates a few nested dicts per line and keeps up to
    tens of MB of documents in flight, which the default thresholds re-scan over and over (parsing a
    backlog of 50k lines ran 2-3x faster in a micro-benchmark, see docs/BENCHMARKS.md). Objects made
    at start-up are frozen out of the collector's way."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def _serve(cfg: ConsumerConfig) -> int:
    """Build the service inside the event loop (aiokafka needs a running loop) and run it until a signal."""
    from consumer.app import ConsumerApp

    engine = _alert_engine(cfg.alerts.rules, cfg.alerts.alertmanager_url) if cfg.alerts.rules else None
    service = ConsumerApp(
        cfg,
        alerts=engine,
        on_listening=lambda port: typer.echo(f"logpipe consume: http on {cfg.http.host}:{port}", err=True),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    return await service.run()


def consume(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file.")] = None,
    kafka_bootstrap: Annotated[
        str | None, typer.Option("--kafka-bootstrap", help="Kafka bootstrap servers HOST:PORT.")
    ] = None,
    es_url: Annotated[str | None, typer.Option("--es-url", help="Elasticsearch URL.")] = None,
    group_id: Annotated[str | None, typer.Option("--group-id", help="Kafka consumer group.")] = None,
    http_port: Annotated[
        int | None, typer.Option("--http-port", help="Port of /healthz, /readyz, /metrics (0: a free one).")
    ] = None,
    rules: Annotated[str | None, typer.Option("--rules", help="Alert rules file.")] = None,
    alertmanager_url: Annotated[
        str | None, typer.Option("--alertmanager-url", help="Alertmanager URL for alert notifications.")
    ] = None,
    topics: Annotated[
        str | None, typer.Option("--topics", help="Comma-separated topics, overriding the config.")
    ] = None,
    index_prefix: Annotated[
        str | None, typer.Option("--index-prefix", help="Index name prefix, overriding the config.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Where records come from: kafka (default) or sls.")
    ] = None,
    sls_endpoint: Annotated[
        str | None, typer.Option("--sls-endpoint", help="SLS endpoint host, e.g. cn-hangzhou.log.aliyuncs.com.")
    ] = None,
    sls_project: Annotated[str | None, typer.Option("--sls-project", help="SLS project.")] = None,
    sls_logstores: Annotated[
        str | None, typer.Option("--sls-logstores", help="Comma-separated logstores to read.")
    ] = None,
    sls_consumer_group: Annotated[
        str | None, typer.Option("--sls-consumer-group", help="SLS consumer group.")
    ] = None,
    sls_consumer_name: Annotated[
        str | None, typer.Option("--sls-consumer-name", help="This member's name (default: $POD_NAME).")
    ] = None,
    instance_id: Annotated[
        str | None,
        typer.Option("--instance-id", help="Static group membership id (default: $POD_NAME; \"\" for none)."),
    ] = None,
) -> None:
    """Consume log records from Kafka (or SLS) and index them into Elasticsearch (flags override the config)."""
    from consumer.config import load_consumer_config
    from consumer.telemetry import configure_json_logging

    if source is None and any((sls_endpoint, sls_project, sls_logstores, sls_consumer_group, sls_consumer_name)):
        source = "sls"  # an --sls-* flag says which source is meant
    try:
        cfg = load_consumer_config(config).with_overrides(
            **{
                "kafka.bootstrap": kafka_bootstrap,
                "elasticsearch.url": es_url,
                "kafka.group_id": group_id,
                "http.port": http_port,
                "alerts.rules": rules,
                "alerts.alertmanager_url": alertmanager_url,
                "kafka.topics": [t.strip() for t in topics.split(",") if t.strip()] if topics else None,
                "index.prefix": index_prefix,
                "source.type": source,
                "source.endpoint": sls_endpoint,
                "source.project": sls_project,
                "source.logstores": [s.strip() for s in sls_logstores.split(",") if s.strip()]
                if sls_logstores
                else None,
                "source.consumer_group": sls_consumer_group,
                "source.consumer_name": sls_consumer_name,
                "kafka.instance_id": instance_id,
            }
        )
    except ConfigError as exc:
        typer.echo(exc.render(), err=True)
        raise typer.Exit(2) from None
    configure_json_logging(cfg.log_level)
    tune_gc()
    from logpipe.core.es_connection import EsConnectionError

    try:
        code = asyncio.run(_serve(cfg))
    except ConfigError as exc:  # the alert rules file
        typer.echo(exc.render(), err=True)
        raise typer.Exit(2) from None
    except EsConnectionError as exc:  # a credential file named by the config is missing
        typer.echo(f"logpipe consume: {exc}", err=True)
        raise typer.Exit(2) from None
    if code:
        raise typer.Exit(code)  # a task failed for good (TaskFailed logged): what was indexed is committed
