"""`logpipe query`: analyse JSON access-log files (filter, group, aggregate, report, SQL).

The options are parsed by :func:`logpipe.tools.query.command.parser` (argparse), not by typer: see that
module for why. main.py registers this command with ``ignore_unknown_options``/``allow_extra_args``
and without typer's ``--help``, so every argument reaches that parser (``--help`` included).
Heavy imports (DuckDB) happen inside the command so other verbs start fast.
"""

from __future__ import annotations

import typer

CONTEXT_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
"""Pass every argument through to the query's own parser."""


def query(ctx: typer.Context) -> None:
    """Filter, group and aggregate JSON access logs; `logpipe query --help` lists the options."""
    from logpipe.tools.query.command import main

    code = main(list(ctx.args))
    if code:
        raise typer.Exit(code)
