"""``--every``: the width of the time buckets of ``logpipe query``, on the log's own timestamp."""

from __future__ import annotations

from logpipe.core.durations import parse_duration
from logpipe.tools.timerange import TimeSpecError


def bucket_seconds(every: str) -> float:
    """``--every 1m`` -> 60.0; at least one millisecond."""
    try:
        seconds = parse_duration(every)
    except ValueError as exc:
        raise TimeSpecError(f"--every: {exc}") from None
    if seconds < 0.001:
        raise TimeSpecError(f"--every {every!r}: too small — fix: use e.g. 1s, 1m, 1h")
    return seconds
