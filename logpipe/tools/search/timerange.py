"""The time range of a search: ``--since 15m`` or ``--from``/``--to`` as absolute or relative times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from logpipe.core.durations import parse_duration
from logpipe.tools.search.errors import BadArgument


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``start <= @timestamp <= end``; either bound may be open (None)."""

    start: datetime | None
    end: datetime | None

    def to_es(self) -> dict[str, str]:
        """The bounds as an Elasticsearch ``range`` body (ISO 8601, millisecond precision)."""
        body: dict[str, str] = {}
        if self.start is not None:
            body["gte"] = iso_ms(self.start)
        if self.end is not None:
            body["lte"] = iso_ms(self.end)
        return body


def iso_ms(t: datetime) -> str:
    """``2026-11-27T09:40:01.123Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(text: str, now: datetime) -> datetime:
    """An absolute ISO 8601 time (naive means UTC), ``now``, or a duration ago such as ``15m``/``2h``."""
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadArgument(
            f"invalid time {text!r}: use ISO 8601 (2026-11-27T09:30:00Z, 2026-11-27 09:30), "
            "'now', or a duration ago (15m, 2h, 1d)"
        ) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def resolve_range(
    since: str | None, from_: str | None, to: str | None, now: datetime, default_since: str = "15m"
) -> TimeRange:
    """The range the flags describe; with neither ``--since`` nor ``--from``, the last 15 minutes.

    ``--since all`` removes the lower bound.
    """
    if since is not None and from_ is not None:
        raise BadArgument("--since and --from both set the start: use one of them")
    if from_ is not None:
        start: datetime | None = parse_time(from_, now)
    elif since is not None and since.strip().lower() == "all":
        start = None
    else:
        start = parse_time(since if since is not None else default_since, now)
    end = parse_time(to, now) if to is not None else None
    if start is not None and end is not None and end < start:
        raise BadArgument(f"--to ({iso_ms(end)}) is before the start ({iso_ms(start)})")
    return TimeRange(start, end)
