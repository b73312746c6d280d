"""Fixtures of the search tests: a store of log indices under a unique prefix, removed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from elasticsearch import AsyncElasticsearch

from tests.logpipe.tools.search.stories import LogStore


@pytest.fixture
async def store(es_url: str, unique_name: str) -> AsyncIterator[LogStore]:
    """Templates of the consumer installed for a unique prefix; indices and templates deleted at the end."""
    es = AsyncElasticsearch(es_url, request_timeout=30)
    s = LogStore(es, unique_name)
    await s.install()
    try:
        yield s
    finally:
        await s.cleanup()
        await es.close()


@pytest.fixture
async def manual_refresh_store(es_url: str, unique_name: str) -> AsyncIterator[LogStore]:
    """Like ``store``, but documents become visible only when the test refreshes (refresh_interval -1)."""
    es = AsyncElasticsearch(es_url, request_timeout=30)
    s = LogStore(es, unique_name, refresh_interval="-1")
    await s.install()
    try:
        yield s
    finally:
        await s.cleanup()
        await es.close()
