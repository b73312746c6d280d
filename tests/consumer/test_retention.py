"""Retention without ILM: which daily indices are old enough to delete (by the day in their name)."""

from __future__ import annotations

from datetime import date

from consumer.retention import expired_indices


def test_only_days_before_the_cutoff_of_this_prefix_are_expired() -> None:
    names = [
        "logpipe-access-2026.11.19",
        "logpipe-access-2026.11.20",
        "logpipe-stdout-2026.11.01",
        "logpipe-app-2026.11.27",
        "logpipe-staging-access-2026.01.01",  # another environment's prefix
        "other-access-2020.01.01",
        "logpipe-access-latest",
        "logpipe-access-2026.13.01",  # not a date
    ]

    expired = expired_indices(names, "logpipe", retention_days=7, today=date(2026, 11, 27))

    assert expired == ["logpipe-access-2026.11.19", "logpipe-stdout-2026.11.01"]


def test_jaegers_indices_with_their_own_day_layout_are_expired_too() -> None:
    names = [
        "logpipe-jaeger-span-2026-11-19",
        "logpipe-jaeger-service-2026-11-01",
        "logpipe-jaeger-dependencies-2026-11-19",
        "logpipe-jaeger-span-2026-11-20",
        "logpipe-staging-jaeger-span-2026-01-01",  # another environment's prefix
        "logpipe-jaeger-sampling-2026-01-01",  # not ours to manage
        "logpipe-jaeger-span-2026.11.01",
    ]

    expired = expired_indices(names, "logpipe", retention_days=7, today=date(2026, 11, 27))

    assert expired == [
        "logpipe-jaeger-dependencies-2026-11-19", "logpipe-jaeger-service-2026-11-01", "logpipe-jaeger-span-2026-11-19"]


def test_the_trace_stages_indices_are_expired_by_their_day() -> None:
    names = ["logpipe-traces-2026.11.19", "logpipe-tracedeps-2026.11.19", "logpipe-traces-2026.11.20"]

    expired = expired_indices(names, "logpipe", retention_days=7, today=date(2026, 11, 27))

    assert expired == ["logpipe-tracedeps-2026.11.19", "logpipe-traces-2026.11.19"]
