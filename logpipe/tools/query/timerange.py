"""``--since``/``--from``/``--to`` and ``--every``: time on the log's own timestamp, in UTC.

``--since 1h`` means the last hour before now (like ``kubectl logs --since``); ``--from``/``--to``
take ISO 8601 (``2026-11-27T10:00``, an offset or ``Z`` allowed, none = UTC) or a duration ago
(``--from 2h --to 1h``). ``--from`` is inclusive, ``--to`` exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from logpipe.core.durations import parse_duration


class TimeSpecError(ValueError):
    """A time or duration option that cannot be read; the message names the option and the forms."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open interval [start, end) in UTC; either end may be open."""

    start: datetime | None = None
    end: datetime | None = None

    @property
    def empty(self) -> bool:
        return self.start is None and self.end is None

    def sql(self, ts: str) -> str:
        """A condition on the TIMESTAMPTZ expression ``ts`` (false when the line has no time)."""
        parts = []
        if self.start is not None:
            parts.append(f"{ts} >= TIMESTAMPTZ '{self.start.isoformat()}'")
        if self.end is not None:
            parts.append(f"{ts} < TIMESTAMPTZ '{self.end.isoformat()}'")
        return "COALESCE(" + " AND ".join(parts) + ", false)" if parts else "true"


def parse_instant(option: str, text: str, now: datetime) -> datetime:
    """ISO 8601 (naive = UTC) or a duration before ``now``."""
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise TimeSpecError(
            f"{option} {text!r}: not a time — fix: use ISO 8601 like 2026-11-27T10:00:00+08:00,"
            " or a duration ago like 2h"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def time_range(since: str | None, start: str | None, end: str | None, now: datetime | None = None) -> TimeRange:
    """The range the three options select; ``--since`` and ``--from`` exclude each other."""
    now = now or datetime.now(UTC)
    if since is not None and start is not None:
        raise TimeSpecError("--since and --from both set — fix: use one of them")
    lo = parse_instant("--since", since, now) if since is not None else None
    if start is not None:
        lo = parse_instant("--from", start, now)
    hi = parse_instant("--to", end, now) if end is not None else None
    if lo is not None and hi is not None and hi <= lo:
        raise TimeSpecError(f"--to ({hi.isoformat()}) is not after the start ({lo.isoformat()}) — fix: swap them")
    return TimeRange(lo, hi)


def bucket_seconds(every: str) -> float:
    """``--every 1m`` -> 60.0; at least one millisecond."""
    try:
        seconds = parse_duration(every)
    except ValueError as exc:
        raise TimeSpecError(f"--every: {exc}") from None
    if seconds < 0.001:
        raise TimeSpecError(f"--every {every!r}: too small — fix: use e.g. 1s, 1m, 1h")
    return seconds
