"""The `logpipe query` command: its options (one argparse parser) and :func:`run`.

``logpipe query`` (registered with typer in logpipe/cli/main.py, see logpipe/cli/query.py) and
``python -m logpipe.tools.query`` both call :func:`main`. The options are parsed here rather than by
typer because typer builds a pydantic validator per option on every start (about 0.25 s for these
fourteen), which alone would eat the speed budget of a query over a million lines (issue 6: at most
1.2x DuckDB's own time).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logpipe.core.envelope import ACCESS_FORMATS

FORMATS = ("table", "json", "csv")
DIALECTS = ("auto", "nginx", "framework")


@dataclass
class QueryOptions:
    """Every option of `logpipe query`, as given on the command line (None = not given)."""

    files: list[str] = field(default_factory=list)
    where: str | None = None
    by: str | None = None
    agg: str | None = None
    top: int | None = None
    every: str | None = None
    since: str | None = None
    start: str | None = None
    end: str | None = None
    fmt: str | None = None
    sql: str | None = None
    report: bool = False
    dialect: str | None = None
    config: Path | None = None
    access_format: str | None = None


EPILOG = """\
examples:
  logpipe query access.log* --where 'status>=500 and path~"^/api/pay"' --by path --agg count,p99(request_time)
  logpipe query access.log.gz --every 1m --by status --format csv
  logpipe query access.log --report
  kubectl logs deploy/pay-gw | logpipe query --sql "SELECT status, count(*) FROM logs GROUP BY 1"

Field names: short (status, path, request_time [s], time), ECS (url.path, event.duration [ns],
@timestamp) or raw keys of the log (latency, uri, ...). Malformed lines are skipped and counted
on stderr; lines not UTF-8 are decoded with replacement (U+FFFD), counted, and said so on stderr.
Text logs in nginx's combined or ingress-nginx's upstreaminfo format are read with the same fields
(sniffed per file, or chosen with --access-format).
Output is a table on a terminal and JSON lines when piped. Time ranges are
[--from, --to) on the log's own timestamp, the same as in `logpipe search`.
"""


def parser(prog: str = "logpipe query") -> argparse.ArgumentParser:
    """The options of `logpipe query`."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Filter, group and aggregate JSON access-log files (DuckDB inside).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="files or globs (rotated sets read oldest first); '-' or none: stdin"
    )
    p.add_argument("--where", "-w", metavar="EXPR", help="filter, e.g. 'status>=500 and path~\"^/api/pay\"'")
    p.add_argument("--by", metavar="F1,F2", help="group fields, comma-separated")
    p.add_argument(
        "--agg", metavar="A1,A2", help="count, sum(f), avg(f), min(f), max(f), distinct(f), pNN(f); default count"
    )
    p.add_argument("--top", type=int, metavar="N", help="keep the N groups with the largest first aggregate")
    p.add_argument("--every", metavar="DURATION", help="time buckets on the log's own timestamp, e.g. 1m")
    p.add_argument("--since", metavar="DURATION", help="lines of the last DURATION before now, e.g. 1h (= --from 1h)")
    p.add_argument(
        "--from", dest="start", metavar="TIME", help="start, inclusive: ISO 8601 (no offset: UTC), DURATION ago"
    )
    p.add_argument("--to", dest="end", metavar="TIME", help="end, exclusive: ISO 8601 (no offset: UTC), DURATION ago")
    p.add_argument("--format", dest="fmt", choices=FORMATS, help="default: table on a terminal, json lines when piped")
    p.add_argument("--sql", metavar="SELECT", help="SQL over a table named logs (one column per field, raw = the line)")
    p.add_argument("--report", action="store_true", help="one-screen summary: Components, status, paths, per minute")
    p.add_argument("--dialect", choices=DIALECTS, help="field mapping (default: auto, or the config's)")
    p.add_argument(
        "--access-format", choices=ACCESS_FORMATS, metavar="FMT",
        help="the lines' format: auto (JSON, or nginx combined / ingress upstreaminfo text, sniffed per file),"
        " json, combined, upstreaminfo — as a shipper rule's `format`",
    )
    p.add_argument("--config", type=Path, metavar="YAML", help="a file with a 'fields:' section (the consumer's works)")
    return p


def main(argv: list[str] | None = None, prog: str = "logpipe query") -> int:
    """Parse ``argv`` and run; returns the exit code (argparse exits 2 itself on a bad option)."""
    args = parser(prog).parse_args(argv)
    return run(QueryOptions(**vars(args)))


def _fail(message: str) -> int:
    print(f"logpipe query: {message}", file=sys.stderr)
    return 2


def _dialect(dialect: str | None, config: Path | None) -> Any:
    from logpipe.core.config_base import read_yaml, validate_mapping
    from logpipe.core.fields import FieldMappingConfig

    mapping = FieldMappingConfig()
    if config is not None:
        data = read_yaml(config)
        section = data.get("fields") if isinstance(data, dict) else None
        mapping = validate_mapping(FieldMappingConfig, section, f"{config} (fields)")
    if dialect is not None:
        mapping = mapping.model_copy(update={"dialect": dialect})
    return mapping.build()


def run(o: QueryOptions) -> int:
    """Run the query; returns the exit code (0, or 2 with the reason on stderr)."""
    import duckdb

    from logpipe.core.config_base import ConfigError
    from logpipe.core.expr import ExprError, parse
    from logpipe.tools.query.aggregates import SpecError, parse_aggs, parse_by
    from logpipe.tools.query.buckets import bucket_seconds
    from logpipe.tools.query.columns import UnknownField
    from logpipe.tools.query.engine import Engine, Malformed, QuerySpec
    from logpipe.tools.query.inputs import InputError, resolve
    from logpipe.tools.query.output import write
    from logpipe.tools.query.text_inputs import convert_text_inputs
    from logpipe.tools.timerange import TimeSpecError, time_range

    if o.fmt is not None and o.fmt not in FORMATS:
        return _fail(f"--format {o.fmt!r}: use one of {', '.join(FORMATS)}")
    if o.dialect is not None and o.dialect not in DIALECTS:
        return _fail(f"--dialect {o.dialect!r}: use one of {', '.join(DIALECTS)}")
    if o.access_format is not None and o.access_format not in ACCESS_FORMATS:
        return _fail(f"--access-format {o.access_format!r}: use one of {', '.join(ACCESS_FORMATS)}")
    if o.sql is not None and (o.report or o.where or o.by or o.agg or o.every or o.top):
        return _fail("--sql runs alone — fix: put the filter and grouping into the SQL")
    if o.top is not None and o.top < 1:
        return _fail(f"--top {o.top}: use a number of groups, 1 or more")
    if not o.files and sys.stdin.isatty():
        return _fail("no input — fix: give FILES (globs work), or pipe lines in: ... | logpipe query -")
    out_tty = sys.stdout.isatty()
    chosen = o.fmt or ("table" if out_tty else "json")
    inputs = None
    bad = Malformed()
    try:
        spec = QuerySpec(
            where=parse(o.where) if o.where is not None else None,
            by=tuple(parse_by(o.by)),
            aggs=tuple(parse_aggs(o.agg)),
            top=o.top,
            every=bucket_seconds(o.every) if o.every is not None else None,
            range=time_range(o.since, o.start, o.end),
        )
        dialect = _dialect(o.dialect, o.config)
        inputs = resolve(o.files)
        # nginx combined / ingress upstreaminfo files: read as JSON lines
        convert_text_inputs(inputs, o.access_format or "auto")
        progress = sys.stderr.isatty() and inputs.total_bytes > 64 << 20
        engine = Engine(inputs, dialect, progress=progress)
        if o.report:
            from logpipe.tools.query.report import run_report

            bad = run_report(engine, spec, sys.stdout, color=out_tty, as_json=o.fmt == "json")
        elif o.sql is not None:
            from logpipe.tools.query.sqlmode import run_sql

            table, bad = run_sql(engine, o.sql)
            write(table, chosen, sys.stdout, color=out_tty)  # type: ignore[arg-type]
        else:
            table, bad = engine.query(spec)
            write(table, chosen, sys.stdout, color=out_tty)  # type: ignore[arg-type]
    except ExprError as exc:
        return _fail(f"--where: {exc}")
    except (SpecError, TimeSpecError, UnknownField, InputError) as exc:
        return _fail(str(exc))
    except ConfigError as exc:
        return _fail(exc.render())
    except duckdb.Error as exc:
        return _fail(f"DuckDB: {exc}")
    except ValueError as exc:  # FieldMappingConfig.build: unknown field in keys
        return _fail(str(exc))
    finally:
        if inputs is not None:
            inputs.cleanup()
    message = bad.message()
    if message:
        print(message, file=sys.stderr)
    return 0
