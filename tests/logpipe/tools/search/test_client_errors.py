"""Error messages from Elasticsearch answers and transport failures (unit, canned bodies)."""

from __future__ import annotations

import socket

import elasticsearch

from logpipe.tools.search.client import es_reason, transport_detail

SHARD_FAILURE = {
    "error": {
        "root_cause": [
            {"type": "query_shard_exception", "reason": "failed to create query: For input string: \"abc\""}
        ],
        "type": "search_phase_execution_exception",
        "reason": "all shards failed",
        "failed_shards": [
            {
                "shard": 0,
                "reason": {
                    "type": "query_shard_exception",
                    "reason": "failed to create query: For input string: \"abc\"",
                    "caused_by": {"type": "number_format_exception", "reason": "For input string: \"abc\""},
                },
            }
        ],
    },
    "status": 400,
}


def test_reason_digs_into_shard_failures_without_repeating_itself() -> None:
    assert es_reason(SHARD_FAILURE) == 'failed to create query: For input string: "abc"'


def test_reason_joins_outer_and_inner_causes() -> None:
    body = {"error": {"type": "x", "reason": "[1:20] failed to parse", "caused_by": {"reason": "unexpected token"}}}
    assert es_reason(body) == "[1:20] failed to parse: unexpected token"
    assert es_reason({"error": {"root_cause": [{"type": "t", "reason": "no such index [x]"}], "type": "t"}}) == (
        "no such index [x]"
    )
    assert es_reason("plain") == "plain"


def test_transport_detail_finds_the_root_cause() -> None:
    refused = elasticsearch.ConnectionError("Cannot connect", errors=(ConnectionRefusedError(111, "refused"),))
    assert transport_detail(refused) == "connection refused"
    dns = elasticsearch.ConnectionError("x", errors=(socket.gaierror(-2, "Name or service not known"),))
    assert transport_detail(dns) == "host name not resolved (Name or service not known)"
    assert transport_detail(elasticsearch.ConnectionTimeout("slow")) == "timed out"
