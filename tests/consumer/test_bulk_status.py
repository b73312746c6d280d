"""Canned ``_bulk`` responses -> per-item delivery status (429/5xx retry, other 4xx dead-letter, 409 ok)."""

from __future__ import annotations

from consumer.bulk_status import bulk_item_outcomes, status_of_code
from logpipe.core.delivery import BatchStatus

MIXED = {
    "took": 30,
    "errors": True,
    "items": [
        {"index": {"_index": "logpipe-access-2026.11.27", "_id": "a", "status": 201, "result": "created"}},
        {"index": {"_index": "logpipe-access-2026.11.27", "_id": "b", "status": 200, "result": "updated"}},
        {
            "index": {
                "_index": "logpipe-access-2026.11.27",
                "_id": "c",
                "status": 429,
                "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution of bulk"},
            }
        },
        {
            "index": {
                "_index": "logpipe-access-2026.11.27",
                "_id": "d",
                "status": 400,
                "error": {
                    "type": "document_parsing_exception",
                    "reason": "[1:50] failed to parse field [client.ip] of type [ip]",
                    "caused_by": {
                        "type": "illegal_argument_exception",
                        "reason": "'nope' is not an IP string literal.",
                    },
                },
            }
        },
        {
            "index": {
                "_index": "logpipe-access-2026.11.27",
                "_id": "e",
                "status": 503,
                "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"},
            }
        },
        {
            "create": {
                "_index": "logpipe-access-2026.11.27",
                "_id": "f",
                "status": 409,
                "error": {"type": "version_conflict_engine_exception", "reason": "document already exists"},
            }
        },
    ],
}


def test_each_item_gets_its_own_status_in_request_order() -> None:
    outcomes = bulk_item_outcomes(MIXED, expected=6)

    assert [o.status for o in outcomes] == [
        BatchStatus.DELIVERED,
        BatchStatus.DELIVERED,
        BatchStatus.ERRORED,
        BatchStatus.REJECTED,
        BatchStatus.ERRORED,
        BatchStatus.DELIVERED,
    ]
    assert [o.http_status for o in outcomes] == [201, 200, 429, 400, 503, 409]


def test_a_mapping_error_keeps_its_type_and_cause_for_the_dead_letter() -> None:
    rejected = bulk_item_outcomes(MIXED, expected=6)[3]

    assert rejected.error_type == "document_parsing_exception"
    assert "client.ip" in rejected.reason
    assert "not an IP string literal" in rejected.reason


def test_items_missing_from_a_short_response_are_retried_not_lost() -> None:
    short = {"errors": True, "items": MIXED["items"][:2]}

    outcomes = bulk_item_outcomes(short, expected=4)

    assert [o.status for o in outcomes] == [
        BatchStatus.DELIVERED,
        BatchStatus.DELIVERED,
        BatchStatus.ERRORED,
        BatchStatus.ERRORED,
    ]
    assert outcomes[3].error_type == "missing_item"


def test_a_response_that_is_not_a_bulk_response_retries_everything() -> None:
    outcomes = bulk_item_outcomes({"error": "something odd"}, expected=3)

    assert {o.status for o in outcomes} == {BatchStatus.ERRORED}
    assert len(outcomes) == 3


def test_malformed_items_are_retried() -> None:
    outcomes = bulk_item_outcomes({"items": [{}, {"index": {"_id": "x"}}, "junk"]}, expected=3)

    assert [o.status for o in outcomes] == [BatchStatus.ERRORED] * 3


def test_codes_map_as_documented() -> None:
    assert status_of_code(201) is BatchStatus.DELIVERED
    assert status_of_code(409) is BatchStatus.DELIVERED
    assert status_of_code(429) is BatchStatus.ERRORED
    assert status_of_code(500) is BatchStatus.ERRORED
    assert status_of_code(502) is BatchStatus.ERRORED
    assert status_of_code(400) is BatchStatus.REJECTED
    assert status_of_code(404) is BatchStatus.REJECTED
    assert status_of_code(302) is BatchStatus.ERRORED


def test_an_index_block_is_retried_whatever_its_code() -> None:
    blocked = {
        "errors": True,
        "items": [
            {
                "index": {
                    "_index": "logpipe-access-2026.11.27",
                    "status": 403,
                    "error": {
                        "type": "cluster_block_exception",
                        "reason": "index [logpipe-access-2026.11.27] blocked by: [FORBIDDEN/8/index write (api)];",
                    },
                }
            }
        ],
    }

    (outcome,) = bulk_item_outcomes(blocked, expected=1)

    assert outcome.status is BatchStatus.ERRORED
    assert outcome.http_status == 403
