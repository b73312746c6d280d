"""`logpipe consume`."""

from __future__ import annotations

from logpipe.cli.notyet import not_implemented


def consume() -> None:
    not_implemented("consume")
