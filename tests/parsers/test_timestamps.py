from __future__ import annotations

import pytest

from parsers.timestamps import parse_time, to_iso


@pytest.mark.parametrize(
    ("raw", "iso", "assumed_utc"),
    [
        ("2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z", False),
        ("2026-11-27T10:00:00.123+08:00", "2026-11-27T10:00:00.123+08:00", False),
        ("2026-11-27T10:00:00.123456789-05:00", "2026-11-27T10:00:00.123456-05:00", False),
        ("2026-11-27T10:00:00+0800", "2026-11-27T10:00:00+08:00", False),
        ("2026-11-27 10:00:00,250+01:00", "2026-11-27T10:00:00.250+01:00", False),
        ("27/Nov/2026:10:00:00 +0800", "2026-11-27T10:00:00+08:00", False),
        ("27/Nov/2026:10:00:00 -0130", "2026-11-27T10:00:00-01:30", False),
        ("Fri, 27 Nov 2026 10:00:00 GMT", "2026-11-27T10:00:00Z", False),
        (1795780800, "2026-11-27T12:00:00Z", False),  # seconds
        (1795780800.5, "2026-11-27T12:00:00.500Z", False),
        (1795780800123, "2026-11-27T12:00:00.123Z", False),  # milliseconds
        (1795780800123456, "2026-11-27T12:00:00.123456Z", False),  # microseconds
        (1795780800123456789, "2026-11-27T12:00:00.123457Z", False),  # nanoseconds
        ("1795780800123", "2026-11-27T12:00:00.123Z", False),
        ("2026-11-27 10:00:00", "2026-11-27T10:00:00Z", True),
    ],
)
def test_time_formats_keep_their_offset(raw: object, iso: str, assumed_utc: bool) -> None:
    result = parse_time(raw)
    assert result is not None
    assert (to_iso(result[0]), result[1]) == (iso, assumed_utc)


@pytest.mark.parametrize(
    "raw", ["yesterday", "", "-", True, None, [1], "32/Nov/2026:10:00:00 +0800", "27/Foo/2026:10:00:00 +0800", 1e300]
)
def test_non_times_are_refused(raw: object) -> None:
    assert parse_time(raw) is None
