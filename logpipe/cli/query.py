"""`logpipe query`: analyse JSON access-log files (filter, group, aggregate, report, SQL).

Examples::

    logpipe query access.log* --where 'status>=500 and path~"^/api/pay"' --by path --agg count,p99(request_time)
    logpipe query access.log.gz --every 1m --by status --format csv
    logpipe query access.log --report
    kubectl logs deploy/pay-gw | logpipe query --sql "SELECT status, count(*) FROM logs GROUP BY 1"

Heavy imports (DuckDB) happen inside the command so other verbs start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

_FORMATS = ("table", "json", "csv")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"logpipe query: {message}", err=True)
    return typer.Exit(2)


def _dialect(dialect: str | None, config: Path | None) -> Any:
    from logpipe.config_base import read_yaml, validate_mapping
    from logpipe.fields import FieldMappingConfig

    mapping = FieldMappingConfig()
    if config is not None:
        data = read_yaml(config)
        section = data.get("fields") if isinstance(data, dict) else None
        mapping = validate_mapping(FieldMappingConfig, section, f"{config} (fields)")
    if dialect is not None:
        mapping = mapping.model_copy(update={"dialect": dialect})
    return mapping.build()


def query(
    files: list[str] = typer.Argument(
        None, help="Files or globs (rotated sets like 'access.log*' read oldest first); '-' or none: stdin."
    ),
    where: str = typer.Option(None, "--where", "-w", help="Filter, e.g. 'status>=500 and path~\"^/api/pay\"'."),
    by: str = typer.Option(None, "--by", help="Group fields, comma-separated: short, ECS or raw names."),
    agg: str = typer.Option(
        None, "--agg", help="count, sum(f), avg(f), min(f), max(f), distinct(f), pNN(f); default count."
    ),
    top: int = typer.Option(None, "--top", min=1, help="Keep the N groups with the largest first aggregate."),
    every: str = typer.Option(None, "--every", help="Time buckets on the log's timestamp, e.g. 1m, 5m, 1h."),
    since: str = typer.Option(None, "--since", help="Only lines of the last DURATION (before now), e.g. 1h."),
    from_: str = typer.Option(None, "--from", help="Start (inclusive): ISO 8601 (no offset = UTC) or DURATION ago."),
    to: str = typer.Option(None, "--to", help="End (exclusive): ISO 8601 or DURATION ago."),
    fmt: str = typer.Option(
        None, "--format", help="table | json | csv. Default: table on a terminal, json lines when piped."
    ),
    sql: str = typer.Option(None, "--sql", help="Run SQL over a table named logs (one column per field)."),
    report: bool = typer.Option(False, "--report", help="A one-screen summary per Component, status and path."),
    dialect: str = typer.Option(None, "--dialect", help="auto | nginx | framework (default: auto, or the config's)."),
    config: Path = typer.Option(None, "--config", help="YAML with a 'fields:' section (the consumer's config works)."),
) -> None:
    """Filter, group and aggregate JSON access logs; malformed lines are skipped and counted on stderr."""
    from logpipe.config_base import ConfigError
    from logpipe.expr import ExprError, parse
    from logpipe.query.aggregates import SpecError, parse_aggs, parse_by
    from logpipe.query.columns import UnknownField
    from logpipe.query.engine import Engine, QuerySpec
    from logpipe.query.inputs import InputError, resolve
    from logpipe.query.timerange import TimeSpecError, bucket_seconds, time_range

    if fmt is not None and fmt not in _FORMATS:
        raise _fail(f"--format {fmt!r}: use one of {', '.join(_FORMATS)}")
    if dialect is not None and dialect not in ("auto", "nginx", "framework"):
        raise _fail(f"--dialect {dialect!r}: use auto, nginx or framework")
    if sql is not None and (report or where or by or agg or every or top):
        raise _fail("--sql runs alone — fix: put the filter and grouping into the SQL")
    out_tty = sys.stdout.isatty()
    chosen = fmt or ("table" if out_tty else "json")
    inputs = None
    try:
        spec = QuerySpec(
            where=parse(where) if where is not None else None,
            by=tuple(parse_by(by)),
            aggs=tuple(parse_aggs(agg)),
            top=top,
            every=bucket_seconds(every) if every is not None else None,
            range=time_range(since, from_, to),
        )
        dia = _dialect(dialect, config)
        inputs = resolve(files or [])
        progress = sys.stderr.isatty() and inputs.total_bytes > 64 << 20
        engine = Engine(inputs, dia, progress=progress)
        if report:
            from logpipe.query.report import run_report

            bad = run_report(engine, spec, sys.stdout, color=out_tty)
        elif sql is not None:
            from logpipe.query.sqlmode import run_sql

            table, bad = run_sql(engine, sql)
            _write(table, chosen, out_tty)
        else:
            table, bad = engine.query(spec)
            _write(table, chosen, out_tty)
    except ExprError as exc:
        raise _fail(f"--where: {exc}") from None
    except (SpecError, TimeSpecError, UnknownField, InputError) as exc:
        raise _fail(str(exc)) from None
    except ConfigError as exc:
        raise _fail(exc.render()) from None
    except ValueError as exc:  # FieldMappingConfig.build: unknown field in keys
        raise _fail(str(exc)) from None
    except _duckdb_error() as exc:
        raise _fail(f"DuckDB: {exc}") from None
    finally:
        if inputs is not None:
            inputs.cleanup()
    message = bad.message()
    if message:
        typer.echo(message, err=True)


def _write(table: Any, fmt: str, color: bool) -> None:
    from logpipe.query.output import write

    write(table, fmt, sys.stdout, color=color)  # type: ignore[arg-type]


def _duckdb_error() -> type[Exception]:
    import duckdb

    return duckdb.Error
