"""Retention without ILM: delete daily indices ``<prefix>-<type>-YYYY.MM.DD`` older than N days,
and Jaeger's ``<prefix>-jaeger-{span,service,dependencies}-YYYY-MM-DD`` (Jaeger's day layout).

Used only when the cluster has no index lifecycle management (see ``index_templates.ilm_available``).
The day is read from the index *name*, so an index is deleted once its whole day is older than the
retention, and indices that do not follow the naming scheme are never touched.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta

from elasticsearch import AsyncElasticsearch, NotFoundError

from consumer.telemetry import IndexDeleted, log

_DAY = re.compile(r"-(\d{4})\.(\d{2})\.(\d{2})$")
_JAEGER_DAY = re.compile(r"^jaeger-(?:span|service|dependencies)-(\d{4})-(\d{2})-(\d{2})$")


def _day(rest: str) -> re.Match[str] | None:
    """The date groups of ``<type>-YYYY.MM.DD`` or ``jaeger-<kind>-YYYY-MM-DD`` (after the prefix)."""
    m = _JAEGER_DAY.match(rest)
    if m:
        return m
    m = _DAY.search(rest)
    if not m or m.start() == 0 or "-" in rest[: m.start()]:
        return None  # not <type>-<day>: another prefix's index (e.g. prefix-foo-<type>-<day>)
    return m


def expired_indices(names: list[str], prefix: str, retention_days: int, today: date) -> list[str]:
    """The names among ``names`` that are ``<prefix>-<type>-<day>`` (or Jaeger's
    ``<prefix>-jaeger-<kind>-<day>``) with ``day < today - retention_days``."""
    cutoff = today - timedelta(days=retention_days)
    out: list[str] = []
    for name in names:
        if not name.startswith(prefix + "-"):
            continue
        m = _day(name[len(prefix) + 1 :])
        if m is None:
            continue
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            continue
        if day < cutoff:
            out.append(name)
    return sorted(out)


async def delete_expired(es: AsyncElasticsearch, prefix: str, retention_days: int) -> list[str]:
    """Delete the expired daily indices of ``prefix``; returns the names deleted."""
    resp = await es.indices.get(index=f"{prefix}-*", expand_wildcards="open,closed", allow_no_indices=True)
    names = list(resp.body.keys())
    today = datetime.now(UTC).date()
    deleted: list[str] = []
    for name in expired_indices(names, prefix, retention_days, today):
        try:
            await es.indices.delete(index=name)
        except NotFoundError:
            continue  # another replica deleted it first
        IndexDeleted(index=name, retention_days=retention_days).emit()
        deleted.append(name)
    return deleted


async def run_retention(es: AsyncElasticsearch, prefix: str, retention_days: int, every_s: float = 3600.0) -> None:
    """Delete expired indices now and every ``every_s`` seconds, until cancelled."""
    while True:
        try:
            await delete_expired(es, prefix, retention_days)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Elasticsearch down: try again next round
            log.warning("RetentionFailed", extra={"fields": {"error": repr(exc)}})
        await asyncio.sleep(every_s)
