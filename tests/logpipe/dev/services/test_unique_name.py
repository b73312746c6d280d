"""The ``unique_name`` fixture: valid as a Kafka topic and an Elasticsearch index, unique per test."""

from __future__ import annotations

import re

import pytest

_SEEN: set[str] = set()


@pytest.mark.parametrize("case", ["Upper Case", "dots.and_underscores", "x" * 300])
def test_unique_name_is_a_valid_topic_and_index_name(unique_name: str, case: str) -> None:
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,100}", unique_name), unique_name
    assert "test-unique-name-is-a-valid" in unique_name
    assert unique_name not in _SEEN
    _SEEN.add(unique_name)
