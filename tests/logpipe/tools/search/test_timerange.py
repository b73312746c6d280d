"""--since/--from/--to (unit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from logpipe.tools.search.errors import BadArgument
from logpipe.tools.search.timerange import iso_ms, parse_time, resolve_range

NOW = datetime(2026, 11, 27, 10, 0, 0, 123_456, tzinfo=UTC)


def test_default_is_the_last_15_minutes() -> None:
    r = resolve_range(None, None, None, NOW)
    assert (r.start, r.end) == (NOW - timedelta(minutes=15), None)


def test_since_all_has_no_lower_bound() -> None:
    assert resolve_range("all", None, None, NOW).start is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("2h", NOW - timedelta(hours=2)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-11-27T09:30:00Z", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
        ("2026-11-27 09:30", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),  # naive is UTC
        ("2026-11-27T10:30:00+01:00", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
    ],
)
def test_times(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


def test_from_to_and_their_errors() -> None:
    r = resolve_range(None, "3h", "1h", NOW)
    assert (r.start, r.end) == (NOW - timedelta(hours=3), NOW - timedelta(hours=1))
    assert r.to_es() == {"gte": "2026-11-27T07:00:00.123Z", "lte": "2026-11-27T09:00:00.123Z"}
    with pytest.raises(BadArgument, match="--since and --from"):
        resolve_range("1h", "2h", None, NOW)
    with pytest.raises(BadArgument, match="before the start"):
        resolve_range(None, "1h", "2h", NOW)
    with pytest.raises(BadArgument, match="invalid time 'yesterday'"):
        parse_time("yesterday", NOW)


def test_iso_ms_is_utc_with_milliseconds() -> None:
    assert iso_ms(datetime(2026, 1, 2, 3, 4, 5, 6_999, tzinfo=UTC)) == "2026-01-02T03:04:05.006Z"
