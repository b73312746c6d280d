from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.timestamps import canonical_iso, parse_time, to_iso


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


_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(0)), timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
)


@settings(max_examples=500, deadline=None)
@given(
    dt=st.datetimes(timezones=_ZONES),
    spec=st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
    zulu=st.booleans(),
)
def test_canonical_iso_is_what_to_iso_writes(dt: datetime, spec: str, zulu: bool) -> None:
    text = dt.isoformat(timespec=spec)
    if zulu and text.endswith("+00:00"):
        text = text[:-6] + "Z"
    parsed = parse_time(text)
    assert parsed is not None
    shortcut = canonical_iso(text)
    if shortcut is not None:
        assert shortcut == to_iso(parsed[0])
    if spec == "milliseconds" and dt.microsecond % 1000 == 0 and dt.microsecond:
        assert shortcut is not None  # the common form takes the shortcut


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="0123456789-T:.Z+ W", min_size=19, max_size=34))
def test_canonical_iso_never_disagrees_on_near_misses(text: str) -> None:
    parsed = parse_time(text)
    shortcut = canonical_iso(text)
    if shortcut is not None and parsed is not None and not parsed[1]:
        assert shortcut == to_iso(parsed[0])


@pytest.mark.parametrize(
    "text",
    ["2026-W48-5T10:00:00Z", "2026-11-27T10:00:00.000Z", "2026-11-27T10:00:00.123000+08:00", "2026-11-27T10:00:00.1Z"],
)
def test_canonical_iso_declines_forms_to_iso_rewrites(text: str) -> None:
    assert canonical_iso(text) is None


def test_the_cri_fast_path_gives_what_parse_time_and_to_iso_give() -> None:
    """``utc_rfc3339`` (a CRI line's runtime time without a datetime) against the general path, on
    random stamps around the edges: fraction lengths 0-10, years 1/9999, second 60, other zones."""
    import random

    from parsers.document import Draft, TimeWindow
    from parsers.timestamps import to_iso, utc_rfc3339

    rng = random.Random(5)
    fast_seen = 0
    for _ in range(20_000):
        y = rng.choice([1, 2, 1969, 1970, 2026, 2038, 9998, 9999])
        s = f"{y:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}T{rng.randint(0, 24):02d}:"
        s += f"{rng.randint(0, 59):02d}:{rng.choice([0, 59, 60]):02d}"
        if (k := rng.randint(-1, 10)) >= 0:
            s += "." + "".join(rng.choice("0000123456789") for _ in range(k))
        s += rng.choice(["Z", "Z", "Z", "+00:00", "z", ""])
        fast = utc_rfc3339(s)
        if fast is None:
            continue
        fast_seen += 1
        general = parse_time(s)
        assert general is not None and not general[1], s
        assert fast[1] == to_iso(general[0]) and abs(fast[0] - general[0].timestamp()) < 1e-6, s
        for window in (TimeWindow(), TimeWindow(max_past_s=3600)):
            a, b = (Draft({"lp.read_ts": "1795780800000"}, "stdout", window) for _ in range(2))
            assert a.event_time(general[0]) == b.event_time_at(*fast) and (a.doc, a.flags) == (b.doc, b.flags), s
    assert fast_seen > 2_000
    assert utc_rfc3339("2026-11-27T12:00:00.123456789Z") == (1795780800.123456, "2026-11-27T12:00:00.123456Z")


def test_the_epoch_ms_fast_path_gives_what_parse_time_and_to_iso_give() -> None:
    import random

    from parsers.document import Draft, TimeWindow
    from parsers.timestamps import to_iso, utc_epoch_ms

    rng = random.Random(2)
    for _ in range(20_000):
        whole_second = rng.randrange(10**11, 10**14) // 1000 * 1000
        ms = rng.choice([rng.randrange(10**11, 10**14), 10**11, 10**14 - 1, whole_second,
                         1795780800000 + rng.randrange(-10**8, 10**8)])
        general = parse_time(ms)
        assert general is not None
        fast = utc_epoch_ms(ms)
        assert fast[1] == to_iso(general[0]) and abs(fast[0] - general[0].timestamp()) < 1e-6, ms
        for window in (TimeWindow(), TimeWindow(max_past_s=3600)):
            a, b = (Draft({"lp.read_ts": "1795780800000"}, "app", window) for _ in range(2))
            assert a.event_time(general[0]) == b.event_time_at(*fast) and (a.doc, a.flags) == (b.doc, b.flags), ms
