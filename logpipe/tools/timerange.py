"""``--since``/``--from``/``--to``: the one meaning of a time range, for ``logpipe query`` and ``logpipe search``.

- A time is ISO 8601 (``2026-11-27T10:00``, ``2026-11-27 10:00:00.250``; an offset or ``Z`` allowed,
  none means UTC), ``now``, or a duration ago (``90s``, ``15m``, ``2h``, ``1d``).
- The range is half-open, ``[from, to)``: ``--from`` is inclusive, ``--to`` exclusive, so
  ``--from 10:00 --to 11:00`` and ``--from 11:00 --to 12:00`` share no line and miss none.
- ``--since D`` is ``--from D`` (the last D before now, like ``kubectl logs --since``);
  ``--since all`` sets no start. ``--since`` and ``--from`` exclude each other, and ``--to`` must be
  after the start.

Each command chooses only its default start (search: the last 15 minutes; query: none) and renders
the same range in its own engine: :meth:`TimeRange.sql` for DuckDB, :meth:`TimeRange.to_es` for an
Elasticsearch ``range``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from logpipe.core.durations import parse_duration

FORMS = "ISO 8601 like 2026-11-27T10:00:00+08:00 (no offset = UTC), 'now', or a duration ago like 15m, 2h, 1d"


class TimeSpecError(ValueError):
    """A time option that cannot be read or a range that selects nothing; the message names the option."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``start <= t < end`` in UTC; either bound may be open (None)."""

    start: datetime | None = None
    end: datetime | None = None

    @property
    def empty(self) -> bool:
        """True when neither bound is set (every line is in range)."""
        return self.start is None and self.end is None

    def sql(self, ts: str) -> str:
        """A DuckDB condition on the TIMESTAMPTZ expression ``ts`` (false when the line has no time)."""
        parts = []
        if self.start is not None:
            parts.append(f"{ts} >= TIMESTAMPTZ '{self.start.isoformat()}'")
        if self.end is not None:
            parts.append(f"{ts} < TIMESTAMPTZ '{self.end.isoformat()}'")
        return "COALESCE(" + " AND ".join(parts) + ", false)" if parts else "true"

    def to_es(self) -> dict[str, str]:
        """The bounds as an Elasticsearch ``range`` body (ISO 8601, millisecond precision)."""
        body: dict[str, str] = {}
        if self.start is not None:
            body["gte"] = iso_ms(self.start)
        if self.end is not None:
            # Rounded up to the next millisecond, as ``@timestamp`` holds milliseconds: ``lt`` then
            # keeps every document before ``end`` and none at or after it.
            body["lt"] = iso_ms(_ceil_ms(self.end))
        return body


def iso_ms(t: datetime) -> str:
    """``2026-11-27T09:40:01.123Z`` (UTC, milliseconds truncated)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _ceil_ms(t: datetime) -> datetime:
    rest = t.microsecond % 1000
    return t + timedelta(microseconds=1000 - rest) if rest else t


def parse_time(option: str, text: str, now: datetime) -> datetime:
    """One time (see the module docstring) as an aware UTC datetime; ``option`` names it in errors."""
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimeSpecError(f"{option} {text!r}: not a time — fix: use {FORMS}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def time_range(
    since: str | None,
    start: str | None,
    end: str | None,
    now: datetime | None = None,
    default_since: str | None = None,
) -> TimeRange:
    """The range the three options select; ``default_since`` applies when neither start option is set."""
    now = now or datetime.now(UTC)
    if since is not None and start is not None:
        raise TimeSpecError("--since and --from both set the start — fix: use one of them")
    lo: datetime | None = None
    if start is not None:
        lo = parse_time("--from", start, now)
    else:
        chosen = since if since is not None else default_since
        if chosen is not None and chosen.strip().lower() != "all":
            lo = parse_time("--since", chosen, now)
    hi = parse_time("--to", end, now) if end is not None else None
    if lo is not None and hi is not None and hi <= lo:
        raise TimeSpecError(
            f"--to ({iso_ms(hi)}) is not after the start ({iso_ms(lo)}) — fix: swap them (--to is exclusive)"
        )
    return TimeRange(lo, hi)
