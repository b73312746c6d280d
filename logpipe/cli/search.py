"""`logpipe search`."""

from __future__ import annotations

from logpipe.cli.notyet import not_implemented


def search() -> None:
    not_implemented("search")
