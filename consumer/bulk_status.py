"""What an Elasticsearch ``_bulk`` response means for each of its items: one pure function.

``_bulk`` answers HTTP 200 even when some items failed; each item carries its own status. Per item:

- 2xx, and 409 (a version conflict: the same deterministic ``_id`` already holds the document, as
  on a replay) -> DELIVERED;
- 429 (write queue full, circuit breaker) and 5xx (shard unavailable, node left) -> ERRORED: retry
  with backoff until it succeeds;
- any other 4xx (mapping errors, malformed documents) -> REJECTED: dead-letter it with the error.

An item whose shape is not understood is ERRORED (retried, never lost), and so is an item refused by
an index *block* (``cluster_block_exception``: an operator's ``index.blocks.write``, the disk
flood-stage watermark), whatever its code: a block is lifted, and the documents must then go in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logpipe.core.delivery import BatchStatus

TRANSIENT_ERRORS = frozenset({"cluster_block_exception"})
"""Error types retried whatever their HTTP code."""


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """The fate of one bulk item: its status, the HTTP code, and for failures the error."""

    status: BatchStatus
    http_status: int
    error_type: str = ""
    reason: str = ""


def status_of_code(code: int) -> BatchStatus:
    """The delivery status of one item's (or a whole request's) HTTP code."""
    if 200 <= code < 300 or code == 409:
        return BatchStatus.DELIVERED
    if code == 429 or code >= 500:
        return BatchStatus.ERRORED
    if 400 <= code < 500:
        return BatchStatus.REJECTED
    return BatchStatus.ERRORED  # 1xx/3xx: not an answer we understand; try again


def _error_text(error: Any) -> tuple[str, str]:
    if isinstance(error, Mapping):
        etype = str(error.get("type", "unknown"))
        reason = str(error.get("reason", ""))
        cause = error.get("caused_by")
        if isinstance(cause, Mapping) and cause.get("reason"):
            reason = f"{reason}: {cause.get('type', '')}: {cause.get('reason')}"
        return etype, reason
    if error is None:
        return "", ""
    return "unknown", str(error)


def bulk_item_outcomes(response: Mapping[str, Any], expected: int) -> list[ItemOutcome]:
    """One :class:`ItemOutcome` per action of a ``_bulk`` response, in request order.

    ``expected`` is the number of actions sent; a response holding fewer items (truncated, or not a
    bulk response at all) marks the missing ones ERRORED so they are retried rather than lost.
    """
    items = response.get("items")
    out: list[ItemOutcome] = []
    if isinstance(items, Sequence):
        for item in items[:expected]:
            body = next(iter(item.values()), None) if isinstance(item, Mapping) and item else None
            if not isinstance(body, Mapping):
                out.append(ItemOutcome(BatchStatus.ERRORED, 0, "malformed_item", f"unexpected item {item!r}"))
                continue
            code = body.get("status")
            if not isinstance(code, int):
                out.append(ItemOutcome(BatchStatus.ERRORED, 0, "malformed_item", "item without status"))
                continue
            status = status_of_code(code)
            if status is BatchStatus.DELIVERED:
                out.append(ItemOutcome(status, code))
            else:
                etype, reason = _error_text(body.get("error"))
                if etype in TRANSIENT_ERRORS:
                    status = BatchStatus.ERRORED
                out.append(ItemOutcome(status, code, etype, reason))
    while len(out) < expected:
        out.append(ItemOutcome(BatchStatus.ERRORED, 0, "missing_item", "the response did not mention this item"))
    return out
