"""`logpipe trace`."""

from __future__ import annotations

from logpipe.cli.notyet import not_implemented


def trace() -> None:
    not_implemented("trace")
