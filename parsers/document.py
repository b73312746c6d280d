"""A document under construction: nested ECS objects, the source fields from the Kafka headers, flags.

Documents are NESTED objects (``{"http": {"response": {"status_code": 500}}}``), never dotted keys,
so a field has one spelling in ``_source`` and in every consumer of the document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from logpipe.core.envelope import (
    H_COMPONENT,
    H_CONTAINER,
    H_FILE_ID,
    H_FLAGS,
    H_NAMESPACE,
    H_NODE,
    H_OFFSET,
    H_PATH,
    H_POD,
    H_POD_UID,
    H_READ_TS,
)
from parsers.timestamps import epoch_ms_to_iso, to_iso

Path = tuple[str, ...]


def put(doc: dict[str, Any], path: Path, value: Any) -> None:
    """Set ``value`` at a nested ``path`` (a tuple of keys), creating objects on the way."""
    d = doc
    for key in path[:-1]:
        nxt = d.get(key)
        if nxt is None:
            nxt = d[key] = {}
        elif type(nxt) is not dict:  # a scalar in the way (never built by the parsers): replace it
            nxt = d[key] = {}
        d = nxt
    d[path[-1]] = value


Setter = Callable[[dict[str, Any], Any], None]


def setter(path: Path) -> Setter:
    """A function that sets ``path`` in a document: :func:`put` unrolled for paths of 1 to 3 keys
    (compiled once per field, called once per line)."""
    if len(path) == 1:
        (a,) = path

        def set1(doc: dict[str, Any], value: Any) -> None:
            doc[a] = value

        return set1
    if len(path) == 2:
        a, b = path

        def set2(doc: dict[str, Any], value: Any) -> None:
            d = doc.get(a)
            if type(d) is dict:
                d[b] = value
            else:
                doc[a] = {b: value}

        return set2
    if len(path) == 3:
        a, b, c = path

        def set3(doc: dict[str, Any], value: Any) -> None:
            d = doc.get(a)
            if type(d) is not dict:
                doc[a] = {b: {c: value}}
                return
            e = d.get(b)
            if type(e) is dict:
                e[c] = value
            else:
                d[b] = {c: value}

        return set3
    return lambda doc, value: put(doc, path, value)


def get(doc: Mapping[str, Any], path: Path) -> Any:
    """The value at a nested ``path``, or None."""
    d: Any = doc
    for key in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """How far an event's own time may lie from the shipper's read time before it is distrusted.

    A time outside is kept in ``extra`` and the read time is used, flagged ``timestamp_out_of_range``.
    ``None`` disables a bound. By default only the future is bounded (one day, for clock skew): a
    future-dated document (a year-9999 typo) would create a daily index that retention never deletes,
    while old times are legitimate (replays, backfills) and their indices age out.
    """

    max_past_s: float | None = None
    max_future_s: float | None = 86400.0


DEFAULT_WINDOW = TimeWindow()


def _digits(text: str | None) -> int | None:
    if text and text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    return None


def _utc_representable(dt: datetime) -> bool:
    """Whether ``dt`` in UTC is still a datetime (``0001-01-01T00:30+01:00`` is not)."""
    try:
        dt.astimezone(UTC)
    except OverflowError:
        return False
    return True


class Draft:
    """A document being built, its flags, and what the headers said about its source."""

    __slots__ = ("component", "doc", "flags", "read_ts_iso", "read_ts_ms", "window")

    def __init__(self, headers: Mapping[str, str], log_type: str, window: TimeWindow = DEFAULT_WINDOW) -> None:
        h = headers.get
        self.window = window
        self.flags: list[str] = []
        self.component = h(H_COMPONENT) or ""
        kubernetes: dict[str, Any] = {}
        if ns := h(H_NAMESPACE):
            kubernetes["namespace"] = ns
        pod: dict[str, str] = {}
        if name := h(H_POD):
            pod["name"] = name
        if uid := h(H_POD_UID):
            pod["uid"] = uid
        if pod:
            kubernetes["pod"] = pod
        if node := h(H_NODE):
            kubernetes["node"] = {"name": node}
        if container := h(H_CONTAINER):
            kubernetes["container"] = {"name": container}
        log: dict[str, Any] = {}
        if path := h(H_PATH):
            log["file"] = {"path": path}
        offset = _digits(h(H_OFFSET))
        if offset is not None:
            log["offset"] = offset
        else:
            self.flags.append("offset_missing")
        logpipe: dict[str, Any] = {"file_id": h(H_FILE_ID) or "", "type": log_type}
        if not logpipe["file_id"]:
            self.flags.append("file_id_missing")
        doc: dict[str, Any] = {"logpipe": logpipe, "log": log}
        if kubernetes:
            doc["kubernetes"] = kubernetes
        if self.component:
            doc["service"] = {"name": self.component}
        read_ts = _digits(h(H_READ_TS))
        self.read_ts_ms = read_ts
        self.read_ts_iso = epoch_ms_to_iso(read_ts) if read_ts is not None else None
        if self.read_ts_iso is not None:
            doc["event"] = {"created": self.read_ts_iso}
        if shipped := h(H_FLAGS):
            self.flags.extend(f for f in shipped.split(",") if f)
        self.doc = doc

    @property
    def offset(self) -> int | None:
        return self.doc["log"].get("offset")  # type: ignore[no-any-return]

    @property
    def file_id(self) -> str:
        return self.doc["logpipe"]["file_id"]  # type: ignore[no-any-return]

    def put(self, path: Path, value: Any) -> None:
        put(self.doc, path, value)

    def flag(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)

    def event_time(self, dt: datetime, iso: str | None = None) -> bool:
        """Set ``@timestamp`` to the event's own time if it lies within the window around the read
        time; False (flagged ``timestamp_out_of_range``) otherwise. ``iso``: ``to_iso(dt)`` if the
        caller has it already."""
        if dt.year in (1, 9999) and not _utc_representable(dt):
            self.flag("timestamp_out_of_range")  # no UTC day to name its daily index after
            return False
        w = self.window
        if self.read_ts_ms is not None and (w.max_past_s is not None or w.max_future_s is not None):
            return self.event_time_at(dt.timestamp(), iso or to_iso(dt))
        self.doc["@timestamp"] = iso or to_iso(dt)
        return True

    def event_time_at(self, epoch_s: float, iso: str) -> bool:
        """:meth:`event_time` for a time already known as epoch seconds and its ``to_iso`` text
        (``timestamps.utc_rfc3339``: a CRI line's runtime time, without a datetime)."""
        w, read = self.window, self.read_ts_ms
        if read is not None and (w.max_past_s is not None or w.max_future_s is not None):
            delta_s = epoch_s - read / 1000
            if (w.max_future_s is not None and delta_s > w.max_future_s) or (
                w.max_past_s is not None and -delta_s > w.max_past_s
            ):
                self.flag("timestamp_out_of_range")
                return False
        self.doc["@timestamp"] = iso
        return True

    def fallback_time(self) -> None:
        """``@timestamp`` when the event has no usable time: the read time, else now; flagged."""
        self.flag("timestamp_fallback")
        iso = self.read_ts_iso
        if iso is None:
            self.flag("read_ts_missing")
            iso = to_iso(datetime.now(UTC))
        self.doc["@timestamp"] = iso

    def finish(self) -> dict[str, Any]:
        if self.flags:
            self.doc["logpipe"]["flags"] = self.flags
        return self.doc
