"""Documents already evaluated, remembered by source identity, so a redelivery is not counted twice.

Kafka delivery is at least once: after a rebalance that hands this process the same partitions
again, records after the last commit are read a second time. Their documents carry the line's
identity (``logpipe.file_id`` + ``log.offset``, the same identity as the Elasticsearch ``_id``);
the engine skips one it evaluated recently, so a window does not count a line twice. Bounded: the
``capacity`` most recent identities (a redelivery is at most a commit interval's worth of records).

One line may carry many spans (an OTLP request, a Zipkin list): every span of it has the line's
identity, so a span's identity adds its trace id, span id and kind (a Zipkin ``shared`` span's
client and server halves have the same span id), as its Elasticsearch ``_id`` does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

Identity = tuple[str, int, str]


def _span_key(doc: Mapping[str, Any]) -> str:
    span = doc.get("span")
    if not isinstance(span, dict):
        return ""
    trace = doc.get("trace")
    trace_id = trace.get("id") if isinstance(trace, dict) else None
    return f"{trace_id}-{span.get('id')}-{span.get('kind') or ''}"


def identity(doc: Mapping[str, Any]) -> Identity | None:
    """``(file_id, offset, span)`` of a document (``span`` empty for a log line), or None when it
    carries no source identity."""
    lp = doc.get("logpipe")
    lg = doc.get("log")
    if not isinstance(lp, dict) or not isinstance(lg, dict):
        return None
    file_id = lp.get("file_id")
    offset = lg.get("offset")
    if not file_id or not isinstance(offset, int):
        return None
    return file_id, offset, _span_key(doc)


class RecentIds:
    """The last ``capacity`` identities seen; :meth:`seen` records one and says if it was known."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[Identity, None] = OrderedDict()

    def seen(self, key: Identity) -> bool:
        """True if ``key`` was recorded recently; records it otherwise."""
        if key in self._ids:
            return True
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False
