"""The interface between the shipper's pipeline and a destination: a new sink is one folder.

The pipeline hands a sink batches of :class:`LineRecord` and awaits one :class:`BatchStatus` per
batch; only a DELIVERED batch may move a file's checkpoint (see ``shipper/registry.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRecord, LineRun


class Sink(Protocol):
    """A destination for batches of lines.

    ``send`` may be called again before an earlier call returned (several batches in flight).
    """

    name: str

    async def start(self) -> None:
        """Connect; raises when the destination cannot be reached at all."""
        ...

    async def send(self, batch: Sequence[LineRecord]) -> BatchStatus:
        """Deliver ``batch`` and return once its fate is known.

        DELIVERED: every record was durably acknowledged (Kafka ``acks=all``; SLS HTTP 200).
        ERRORED: a transient failure; nothing may be checkpointed and the caller sends again.
        REJECTED: the destination refuses these records for good (e.g. too large); the caller
        dead-letters them. Cancelling the call leaves the batch unacknowledged (it is resent).
        """
        ...

    @property
    def connected(self) -> bool:
        """Whether the last contact with the destination succeeded (drives ``/readyz``)."""
        ...

    async def close(self) -> None:
        """Flush what is in flight (bounded by the caller's grace period) and disconnect."""
        ...


class RunSink(Sink, Protocol):
    """A sink with the optional fast path: runs of lines instead of one :class:`LineRecord` per line.

    The pipeline calls ``send_runs`` when a sink has it (same contract as ``send``); a REJECTED
    batch is then split into single lines through ``send``.
    """

    async def send_runs(self, runs: Sequence[LineRun]) -> BatchStatus:
        """Deliver the lines of ``runs`` (see :class:`~logpipe.core.envelope.LineRun`); like ``send``."""
        ...
