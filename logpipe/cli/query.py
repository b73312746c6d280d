"""`logpipe query`."""

from __future__ import annotations

from logpipe.cli.notyet import not_implemented


def query() -> None:
    not_implemented("query")
