"""--since/--from/--to: the one meaning shared by `logpipe query` and `logpipe search` (unit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from logpipe.tools.timerange import TimeRange, TimeSpecError, iso_ms, parse_time, time_range

NOW = datetime(2026, 11, 27, 10, 0, 0, 123_456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("2h", NOW - timedelta(hours=2)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-11-27T09:30:00Z", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
        ("2026-11-27 09:30", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),  # naive is UTC
        ("2026-11-27T10:30:00+01:00", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
        ("2026-11-27T18:00:00+08:00", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
    ],
)
def test_the_forms_of_a_time(text: str, expected: datetime) -> None:
    assert parse_time("--from", text, NOW) == expected


def test_no_options_no_bounds_unless_the_command_has_a_default_start() -> None:
    assert time_range(None, None, None, NOW) == TimeRange(None, None)
    assert time_range(None, None, None, NOW, default_since="15m") == TimeRange(NOW - timedelta(minutes=15), None)


def test_since_is_from_that_long_ago_and_all_has_no_start() -> None:
    assert time_range("90m", None, None, NOW) == time_range(None, "90m", None, NOW)
    assert time_range("all", None, None, NOW, default_since="15m").start is None
    assert time_range(None, "3h", "1h", NOW) == TimeRange(NOW - timedelta(hours=3), NOW - timedelta(hours=1))


@pytest.mark.parametrize(
    ("since", "start", "end", "message"),
    [
        ("1h", "2h", None, "--since and --from both set"),
        (None, "yesterday", None, "--from 'yesterday': not a time"),
        (None, None, "later", "--to 'later': not a time"),
        (None, "1h", "2h", "not after the start"),
        (None, "1h", "1h", "not after the start"),  # [t, t) selects nothing: refused, not silently empty
    ],
)
def test_bad_ranges_name_the_option(since: str | None, start: str | None, end: str | None, message: str) -> None:
    with pytest.raises(TimeSpecError, match=message):
        time_range(since, start, end, NOW)


def test_half_open_in_both_engines() -> None:
    lo, hi = datetime(2026, 11, 27, 9, 0, tzinfo=UTC), datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    r = TimeRange(lo, hi)
    assert r.sql("ts") == (
        "COALESCE(ts >= TIMESTAMPTZ '2026-11-27T09:00:00+00:00'"
        " AND ts < TIMESTAMPTZ '2026-11-27T10:00:00+00:00', false)"
    )
    assert r.to_es() == {"gte": "2026-11-27T09:00:00.000Z", "lt": "2026-11-27T10:00:00.000Z"}
    assert TimeRange(None, None).sql("ts") == "true" and TimeRange().to_es() == {}


def test_an_end_between_milliseconds_keeps_the_millisecond_before_it() -> None:
    """Elasticsearch stores milliseconds: a document at .000 is before an end at .000500, one at .001 is not."""
    end = datetime(2026, 11, 27, 10, 0, 0, 500, tzinfo=UTC)
    assert TimeRange(None, end).to_es() == {"lt": "2026-11-27T10:00:00.001Z"}


def test_iso_ms_is_utc_with_milliseconds() -> None:
    assert iso_ms(datetime(2026, 1, 2, 3, 4, 5, 6_999, tzinfo=UTC)) == "2026-01-02T03:04:05.006Z"
