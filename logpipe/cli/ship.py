"""`logpipe ship`."""

from __future__ import annotations

from logpipe.cli.notyet import not_implemented


def ship() -> None:
    not_implemented("ship")
