"""Bounded ``_bulk`` request bodies: ``index`` actions with deterministic ids, by bytes and by actions.

The ``index`` op (not ``create``) with ``_id = document_id(file_id, offset)`` makes a replayed line
overwrite itself, so a crash or rebalance never duplicates. The daily index is chosen from the
document's ``@timestamp`` (its UTC day) and log type. ``event.ingested`` is stamped every time a
document is (re)serialized, so it tells when the consumer indexed it (``logpipe search -f`` follows
that field).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from consumer.work import Work
from logpipe.core.envelope import LOG_TYPES

_TYPE_SAFE = re.compile(r"[^a-z0-9_]+")


def ingested_now(now: float | None = None) -> str:
    """The current time as ISO 8601 UTC with milliseconds, e.g. ``2026-11-27T09:43:28.123Z``."""
    t = time.time() if now is None else now
    secs = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{int((t - secs) * 1000):03d}Z"


_OFFSET_DAYS: dict[str, str] = {}  # "YYYY-MM-DDTHH" + UTC offset -> UTC day (a line's hour decides its day)


def _offset_day(timestamp: str) -> str | None:
    # Cacheable only for whole-hour offsets (with +05:30 the day can change within an hour).
    whole_hour = len(timestamp) >= 25 and timestamp[-6] in "+-" and timestamp[-3:] == ":00"
    tz = timestamp[-6:] if whole_hour else ""
    key = timestamp[:13] + tz if tz and timestamp[10] == "T" else ""
    if key and (day := _OFFSET_DAYS.get(key)) is not None:
        return day
    try:
        dt = datetime.fromisoformat(timestamp)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        day = dt.astimezone(UTC).strftime("%Y.%m.%d")
    except (ValueError, OverflowError):  # OverflowError: before year 1 or after 9999 in UTC
        return None
    if key:
        if len(_OFFSET_DAYS) > 10_000:
            _OFFSET_DAYS.clear()
        _OFFSET_DAYS[key] = day
    return day


def utc_day(timestamp: Any, fallback: float) -> str:
    """``YYYY.MM.DD`` of an ISO 8601 ``@timestamp`` in UTC; the day of ``fallback`` (epoch s) if unreadable."""
    if isinstance(timestamp, str) and len(timestamp) >= 10:
        # Fast path: already UTC (what the parsers write for most lines).
        if timestamp.endswith("Z") and timestamp[4] == "-" and timestamp[7] == "-":
            return f"{timestamp[0:4]}.{timestamp[5:7]}.{timestamp[8:10]}"
        day = _offset_day(timestamp)
        if day is not None:
            return day
    return time.strftime("%Y.%m.%d", time.gmtime(fallback))


def safe_type(log_type: str) -> str:
    """The log type as it may appear in an index name (known types unchanged)."""
    if log_type in LOG_TYPES:
        return log_type
    cleaned = _TYPE_SAFE.sub("_", log_type.lower()).strip("_")[:32]
    return cleaned or "unknown"


_INDEX_NAMES: dict[tuple[str, str, str], str] = {}  # (prefix, type, UTC date of a "...Z" timestamp) -> name


def index_name(prefix: str, log_type: str, doc: dict[str, Any], now: float) -> str:
    """``<prefix>-<type>-YYYY.MM.DD`` for ``doc``."""
    ts = doc.get("@timestamp")
    if type(ts) is str and len(ts) >= 20 and ts[-1] == "Z" and ts[4] == "-" and ts[7] == "-":
        # Already UTC (most documents): one lookup per document instead of formatting the name.
        key = (prefix, log_type, ts[:10])
        name = _INDEX_NAMES.get(key)
        if name is None:
            if len(_INDEX_NAMES) >= 4096:
                _INDEX_NAMES.clear()
            name = _INDEX_NAMES[key] = f"{prefix}-{safe_type(log_type)}-{utc_day(ts, now)}"
        return name
    return f"{prefix}-{safe_type(log_type)}-{utc_day(ts, now)}"


def stamp_ingested(doc: dict[str, Any], ingested: str) -> None:
    """Set ``event.ingested`` on ``doc`` (nested ECS)."""
    event = doc.get("event")
    if not isinstance(event, dict):
        event = {}
        doc["event"] = event
    event["ingested"] = ingested


_ACTION_HEADS: dict[str, bytes] = {}  # index name -> the action line up to its _id


def encode_item(work: Work, ingested: str) -> bytes:
    """The two NDJSON lines of one ``index`` action for ``work`` (which must hold a document or a
    natively encoded item: re-encoded from its document, so ``event.ingested`` is the new stamp)."""
    doc = work.document()
    assert doc is not None
    work.item = b""
    stamp_ingested(doc, ingested)
    head = _ACTION_HEADS.get(work.index)
    if head is None:
        if len(_ACTION_HEADS) >= 4096:
            _ACTION_HEADS.clear()
        head = _ACTION_HEADS[work.index] = b'{"index":{"_index":' + orjson.dumps(work.index) + b',"_id":"'
    try:
        body = orjson.dumps(doc)
    except TypeError:  # a non-string key somewhere: the option costs ~50 % more, so only when needed
        body = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    return head + work.doc_id.encode() + b'"}}\n' + body + b"\n"


@dataclass(slots=True)
class BulkRequest:
    """One ``_bulk`` body and the work items behind its actions, in the same order."""

    items: list[Work] = field(default_factory=list)
    parts: list[bytes] = field(default_factory=list)
    nbytes: int = 0
    started: float = 0.0  # monotonic time its first item was added

    def body(self) -> bytes:
        return b"".join(self.parts)

    def __len__(self) -> int:
        return len(self.items)


def build_request(items: list[Work], ingested: str | None = None) -> BulkRequest:
    """A request holding exactly ``items`` (used for retries: re-stamped and re-encoded)."""
    stamp = ingested or ingested_now()
    req = BulkRequest(started=time.monotonic())
    for w in items:
        part = encode_item(w, stamp)
        req.items.append(w)
        req.parts.append(part)
        req.nbytes += len(part)
    return req


class BulkBatcher:
    """Accumulates documents into requests bounded by ``max_bytes`` and ``max_actions``.

    ``add`` returns the request it closed when the new item would overflow the current one (the
    item then starts the next request); a single item larger than ``max_bytes`` gets a request
    of its own. ``take`` hands over the open request (for the flush interval, revoke and stop).
    ``monotonic`` times the open request's age (the loop's clock).
    """

    def __init__(self, max_bytes: int, max_actions: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_actions = max_actions
        self._monotonic = monotonic
        self._open = BulkRequest()
        self._stamp = ingested_now()
        self._stamp_at = time.monotonic()

    def stamp(self) -> str:
        """The ``event.ingested`` stamp for items encoded now (refreshed at most every millisecond)."""
        return self._ingested()

    def _ingested(self) -> str:
        now = time.monotonic()
        if now - self._stamp_at >= 0.001:
            self._stamp = ingested_now()
            self._stamp_at = now
        return self._stamp

    def add(self, work: Work) -> BulkRequest | None:
        """Encode ``work`` into the open request (setting ``work.size``); return a request now full, if any.
        A natively encoded ``work.item`` goes in as it is."""
        part = work.item or encode_item(work, self._ingested())
        # Memory held until resolved: the raw line, the encoded body and (about as much) the dict.
        work.size = len(work.raw) + 2 * len(part)
        closed: BulkRequest | None = None
        req = self._open
        if req.items and (req.nbytes + len(part) > self.max_bytes or len(req.items) >= self.max_actions):
            closed = req
            req = self._open = BulkRequest()
        if not req.items:
            req.started = self._monotonic()
        req.items.append(work)
        req.parts.append(part)
        req.nbytes += len(part)
        if closed is None and (req.nbytes >= self.max_bytes or len(req.items) >= self.max_actions):
            closed = req
            self._open = BulkRequest()
        return closed

    def take(self) -> BulkRequest | None:
        """The open request (if it holds anything); a new empty one is opened."""
        if not self._open.items:
            return None
        req = self._open
        self._open = BulkRequest()
        return req

    def age(self) -> float:
        """Seconds since the open request's first item (0 when empty)."""
        return self._monotonic() - self._open.started if self._open.items else 0.0

    @property
    def pending(self) -> int:
        return len(self._open.items)
