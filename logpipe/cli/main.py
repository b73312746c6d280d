"""The ``logpipe`` command: one typer app, each verb in its own module under ``logpipe/cli/``."""

from __future__ import annotations

import typer

from logpipe.cli import alerts, config, consume, demo, dev, query, search, ship, trace

app = typer.Typer(
    name="logpipe",
    help="Container log pipeline: pod logs -> Kafka -> Elasticsearch, with stream alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("ship", help="Run the node agent: tail pod logs and deliver them to Kafka (at least once).")(ship.ship)
app.command("consume", help="Run the indexer: Kafka -> Elasticsearch, evaluating alert rules in-stream.")(
    consume.consume
)
app.command("query", help="Analyse JSON access-log files fast: filter, group, aggregate, report.", context_settings=query.CONTEXT_SETTINGS, add_help_option=False)(query.query)  # noqa: E501
app.command("search", help="Search one Component's logs in Elasticsearch; -f follows live.")(search.search)
app.command("demo", help="Run the whole pipeline locally on generated pod logs, end to end.")(demo.demo)
app.add_typer(
    trace.app, name="trace", help="Traces: `trace ID` shows one (spans and log lines, in time order)."
)
app.add_typer(alerts.app, name="alerts", help="Validate, test and list keyword alert rules.")
app.add_typer(dev.app, name="dev", help="Provision and run the local services (Kafka, Elasticsearch, Alertmanager).")
app.add_typer(config.app, name="config", help="Check configuration files; print their reference (docs/CONFIG.md).")

if __name__ == "__main__":
    app()
