"""The consumer's integration fixture: a :class:`ConsumerStory` named after the test, cleaned up after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.consumer.story import ConsumerStory


@pytest.fixture
async def story(kafka_bootstrap: str, es_url: str, unique_name: str) -> AsyncIterator[ConsumerStory]:
    env = ConsumerStory(kafka_bootstrap, es_url, unique_name)
    await env.create_topics(partitions=2)
    try:
        yield env
    finally:
        await env.cleanup()
