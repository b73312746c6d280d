"""The ``logpipe`` console script.

``logpipe query`` parses its own options (``logpipe/tools/query/command.py``) and must start in
milliseconds: it is timed against DuckDB on the same file. Building the typer app imports every
verb's module (~0.3 s), so ``query`` is dispatched before that; every other verb goes through typer.
"""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "query":
        from logpipe.tools.query.command import main as query_main

        sys.exit(query_main(sys.argv[2:]))
    from logpipe.cli.main import app

    app()


if __name__ == "__main__":
    main()
