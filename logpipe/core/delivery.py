"""Delivery status as a type (as Vector's ``BatchStatus``): what a sink says about a batch."""

from __future__ import annotations

import enum


class BatchStatus(enum.Enum):
    DELIVERED = "delivered"  # the destination has it durably; the checkpoint may move over it
    ERRORED = "errored"  # transient failure (timeout, 429, 5xx, broker down): retry, never checkpoint
    REJECTED = "rejected"  # permanent failure for this input (mapping error, malformed): dead-letter it

    def merge(self, other: BatchStatus) -> BatchStatus:
        """The status of two parts together: any error wins, then any rejection."""
        order = (BatchStatus.ERRORED, BatchStatus.REJECTED, BatchStatus.DELIVERED)
        for s in order:
            if s in (self, other):
                return s
        return BatchStatus.DELIVERED
