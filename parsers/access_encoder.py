"""The consumer's fast path for access lines: a Kafka record straight to its ``_bulk`` item, in C.

:class:`AccessEncoder` turns one record of type ``access`` (value + shipper headers) into the two
NDJSON lines of its ``index`` action — the same document, index and ``_id`` as the Python path
(``LineParser.parse`` -> ``consumer.bulk.index_name`` / ``document_id`` / ``encode_item``) — without
building a dict per line: the C extension ``parsers._access_encoder`` scans the JSON once and writes
the document as it goes (~2 µs instead of ~25 µs, which is what lets the consumer keep up with the
Elasticsearch beside it on a small node).

It is a fast path, never a second parser: whenever a line holds anything outside the plain case
(nested values, floats where the Python code would format them, non-ASCII where case or whitespace
rules apply, a time not already in RFC 3339 form, IPv6, escapes it does not handle, invalid JSON,
missing headers, ...) ``encode`` returns None and the caller runs the Python parser, which decides.
The differential tests (``tests/parsers/test_access_encoder.py``) hold the two to the same output:
for any input, ``encode`` is None or equal to the Python path's document, index and id.

The field mapping stays in Python: for each new key layout (the tuple of a line's keys in order,
cached in C) the extension calls :meth:`AccessEncoder.plan`, which describes per key what to do, from
the same :meth:`parsers.fieldmap.FieldMap.choose` the Python path uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from logpipe.core.envelope import document_id as envelope_document_id
from parsers.document import DEFAULT_WINDOW, TimeWindow
from parsers.extra import extra_key_name
from parsers.fieldmap import FieldMap, to_ip, to_keyword, to_level, to_long, to_status, trace_from

try:
    import parsers._access_encoder as _native
except ImportError:  # not built (e.g. a source tree without a compiler): the Python path does everything
    _native = None  # type: ignore[assignment]

NATIVE_AVAILABLE = _native is not None

# Actions: what the C code does with a key's value (the Python handler it stands for, fieldmap.py).
KEYWORD, LONG, STATUS, IP, LEVEL, TRACE, TIME, DURATION, PATH, KEEP, FROM_HEADER = range(1, 12)
# Slots: the document fields a step may set (ECS names shared by every dialect).
SLOTS: dict[str, int] = {
    "http.request.method": 0,
    "url.path": 1,
    "url.query": 2,
    "http.response.status_code": 3,
    "http.response.body.bytes": 4,
    "event.duration": 5,
    "client.ip": 6,
    "user_agent.original": 7,
    "trace.id": 8,
    "span.id": 9,
    "log.level": 10,
    "service.name": 11,
    "kubernetes.namespace": 12,
    "kubernetes.pod.name": 13,
    "url.domain": 14,
}
NO_SLOT = -1
# FROM_HEADER's argument: which header the line's value is compared with.
HEADER_OF: dict[str, int] = {"component": 0, "namespace": 1, "pod": 2}

# Fields converted by one function of the value alone (FieldMap.simple) -> the action doing the same.
_BY_CONVERTER: dict[object, int] = {
    to_keyword: KEYWORD, to_long: LONG, to_status: STATUS, to_ip: IP, to_level: LEVEL, trace_from: TRACE,
}

Step = tuple[int, int, int, int, str]
"""(key position, action, slot, argument, flag when the value is invalid)."""
Plan = tuple[tuple[Step, ...], tuple[int, ...], tuple[bytes, ...]]
"""(steps in order, positions of the keys left for ``extra`` in order, each key's ``extra`` name as JSON)."""


EncodeFn = Callable[[bytes, Sequence[tuple[str, bytes]] | None, str], tuple[bytes, str, str] | None]
"""``encode(value, headers, ingested)`` -> ``(bulk item, index name, _id)`` or None."""


def _native_document_id(file_id: str, offset: int | str) -> str:
    return _native.blake2b16_hex(f"{file_id}@{offset}".encode())


document_id: Callable[[str, int | str], str] = _native_document_id if _native is not None else envelope_document_id
"""``logpipe.core.envelope.document_id`` (the same ids), with the C extension's BLAKE2b when it is
built: ~1 µs less per document on the Python path (hashlib's object per call)."""


class AccessEncoder:
    """Access records -> ``_bulk`` items for index ``<prefix>-access-YYYY.MM.DD``; see the module doc.

    ``encode(value, headers, ingested)`` returns ``(item bytes, index name, _id)`` or None (use the
    Python path). ``headers`` are the record's raw Kafka headers; ``ingested`` is the
    ``event.ingested`` stamp (``consumer.bulk.ingested_now``).
    """

    def __init__(
        self,
        fieldmap: FieldMap,
        prefix: str,
        *,
        window: TimeWindow = DEFAULT_WINDOW,
    ) -> None:
        if _native is None:
            raise RuntimeError("the C extension parsers._access_encoder is not built — fix: pip install -e .")
        self.fieldmap = fieldmap
        self.limits = fieldmap.limits  # the Python path bounds ``extra`` with the FieldMap's limits too
        self._slots: list[int] = []
        self._actions: list[tuple[int, int]] = []
        for i, f in enumerate(fieldmap.fields):
            self._actions.append(self._action_of(i))
            self._slots.append(SLOTS.get(".".join(f.ecs), NO_SLOT))
        self._native = _native.Encoder(
            self.plan,
            prefix,
            window.max_future_s,
            window.max_past_s,
            self.limits.max_keys,
            self.limits.max_value_chars,
        )
        self.encode: EncodeFn = self._native.encode

    def _action_of(self, idx: int) -> tuple[int, int]:
        """(action, argument) for field ``idx`` — mirrors ``FieldMap._handler``; 0 = never native."""
        fm = self.fieldmap
        name = fm.fields[idx].name
        convert = fm.simple[idx]
        if convert is not None:
            return _BY_CONVERTER.get(convert, 0), 0
        if name == "time":
            return TIME, 0
        if name == "request_time":
            return DURATION, 0  # the unit depends on the raw key: set per plan
        if name == "path":
            return PATH, 0
        if name == "msg":
            return KEEP, 0  # access lines: ``message`` is the whole line, a msg key stays in extra
        if name in HEADER_OF:
            return FROM_HEADER, HEADER_OF[name]
        return 0, 0

    def plan(self, keys: tuple[str, ...]) -> Plan | None:
        """What to do with each key of lines with exactly these keys in this order; None: never
        native for this layout (the Python path maps it)."""
        if len(keys) > 64 or len(set(keys)) != len(keys):
            return None
        names: list[str] = []
        for key in keys:
            if len(key) > self.limits.max_key_chars:
                return None
            names.append(extra_key_name(key))
        if len(set(names)) != len(names):  # "a.b" and "a_b" would be one key of extra
            return None
        fm = self.fieldmap
        chosen, unknown = fm.choose(keys)
        if "request" in unknown and fm.i_method not in chosen and fm.i_path not in chosen:
            return None  # nginx's $request line: split by the Python path
        set_query = fm.i_query not in chosen
        position = {k: i for i, k in enumerate(keys)}
        steps: list[Step] = []
        for idx, (_, key) in chosen.items():
            action, arg = self._actions[idx]
            slot = self._slots[idx]
            if action == 0 or (slot == NO_SLOT and action not in (TIME, KEEP)):
                return None
            if action == DURATION:
                arg = fm.ns_per[key]
            elif action == PATH:
                arg = int(set_query)
            steps.append((position[key], action, slot, arg, "invalid_" + fm.fields[idx].name))
        return (
            tuple(steps),
            tuple(position[k] for k in unknown),
            tuple(orjson.dumps(n) for n in names),
        )


__all__ = ["NATIVE_AVAILABLE", "AccessEncoder", "EncodeFn", "document_id"]
