"""A :class:`~logpipe.core.fields.Dialect` compiled once into lookup tables, and its use on one JSON object.

The same dialect (``logpipe/core/fields.py``) drives ``logpipe query``, so a field users type there is the
field indexed here. The object's keys are resolved once per key layout into a plan (raw key ->
the field's handler), cached: lines of one application share a layout, so per line only the values
are converted. When several raw keys of one field are present the first in the dialect's order wins
and the others are kept in ``extra``. A value of the wrong type (``"status": "abc"``) is kept in ``extra``
and flags the document ``invalid_<field>``; absent markers (``null``, ``"-"``, and ``""`` for numbers,
times, addresses, levels and ids) are dropped, and a ``"-"`` for a number (nginx's "no value") also
flags the document ``missing_<field>``. An empty string of a text field (``url.path`` of a
request nginx answered 400 before parsing its URI, an empty ``$args``) is kept as ``""``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from socket import AF_INET, inet_pton
from typing import Any
from urllib.parse import urlsplit

from logpipe.core.fields import NS_PER_UNIT, Dialect, FieldMappingConfig, keeps_empty
from parsers.document import Draft, Path, Setter, setter
from parsers.extra import TRUNCATED, ExtraLimits, bounded_extra
from parsers.timestamps import canonical_iso, parse_time, utc_epoch_ms

_INVALID = object()
_ABSENT = (None, "", "-")
_ABSENT_TEXT = (None, "-")  # text fields keep an empty string
_ABSENT_NUMBER = (None, "")  # numbers: "-" is flagged missing_<field> by the handler
MAX_KEYWORD_CHARS = 8191  # Elasticsearch refuses keyword terms over 32766 bytes (4 bytes per char)
MAX_LONG = (1 << 63) - 1
# pino/bunyan write numeric levels.
_NUMERIC_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
# Fields the pod's own metadata (Kafka headers) decides; the line's value is kept only if it differs.
_FROM_HEADERS: dict[str, str] = {"component": "service", "namespace": "namespace", "pod": "pod"}
_SPECIAL = frozenset({"time", "request_time", "path", "msg", *_FROM_HEADERS})
# What a field's handler did with a value: mapped (or absent), keep it in ``extra``, a valid event time.
_OK, _KEEP, _TIME = 0, 1, 2
Handler = Callable[[Any, Draft], int]
# Plans are cached per key layout (an application writes the same keys in the same order on every line).
_MAX_PLANS = 512
_MAX_HANDLERS = 4096
_MAX_PLAN_KEYS = 64


def _valid_ip(text: str) -> str | None:
    """``text`` as a canonical IP address, or None."""
    try:
        # The common case, ~20x cheaper than ipaddress: inet_pton takes exactly the dotted quads that
        # ipaddress takes (no leading zeros, 4 parts, <= 255), which are then already canonical.
        inet_pton(AF_INET, text)
        return text
    except (OSError, ValueError):
        pass
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def to_keyword(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_KEYWORD_CHARS else _INVALID
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _INVALID


def to_long(value: Any) -> Any:
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int):
        return value if 0 <= value <= MAX_LONG else _INVALID
    if isinstance(value, float):
        return int(value) if value.is_integer() and 0 <= value <= MAX_LONG else _INVALID
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return _INVALID


def to_status(value: Any) -> Any:
    out = to_long(value)
    return out if out is _INVALID or out <= 999 else _INVALID


def to_number(value: Any) -> float | None:
    """A non-negative number from a JSON number or numeric string (``"0.004"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        if "," in value or ":" in value:
            # nginx $upstream_response_time with retries ("0.004, 0.002") and after an internal redirect
            # ("0.010 : 0.003"): the SUM, the time spent in upstreams; the list itself stays in the line.
            parts = [to_number(p.strip()) for p in value.replace(":", ",").split(",") if p.strip() not in _ABSENT]
            return sum(p for p in parts if p is not None) if parts and None not in parts else None
        t = value.strip()
        if t and t.replace(".", "", 1).isdigit() and t.isascii():
            return float(t)
    return None


def ns_of(num: float, per: int) -> int:
    """``round(num * per)`` nanoseconds, or -1 when that is not a long (never raises: an overflowing
    duration is a bad value, flagged, not a bad line)."""
    x = num * per
    return round(x) if 0 <= x < 9223372036854775808.0 else -1


def to_ip(value: Any) -> Any:
    if not isinstance(value, str) or len(value) > 256:
        return _INVALID
    if "," in value:  # X-Forwarded-For: the client is the first hop
        value = value.split(",", 1)[0]
    ip = _valid_ip(value.strip())
    return ip if ip is not None else _INVALID


def to_level(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower() if 0 < len(value) <= 32 else _INVALID
    if isinstance(value, int) and not isinstance(value, bool) and value in _NUMERIC_LEVELS:
        return _NUMERIC_LEVELS[value]
    return _INVALID


def trace_from(value: Any) -> Any:
    """A trace id, also out of a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``)."""
    v = to_keyword(value)
    if isinstance(v, str) and len(v) == 55 and v[2] == "-" and v[35] == "-" and v[52] == "-":
        return v[3:35]
    return v


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    ecs: Path
    kind: str
    set: Setter


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to map objects with one key layout: the winning raw key of each field and its handler
    (fields in the order their first key appears), the keys left for ``extra``, and whether to try
    nginx's ``request`` line."""

    steps: tuple[tuple[str, Handler, tuple[Any, ...]], ...]  # (raw key, handler, its absent markers)
    unknown: tuple[str, ...]
    request: bool
    set_query: bool


class FieldMap:
    """A dialect compiled for the hot path; :meth:`apply` maps one decoded JSON object into a draft."""

    def __init__(self, mapping: FieldMappingConfig | None = None, limits: ExtraLimits | None = None) -> None:
        dialect: Dialect = (mapping or FieldMappingConfig()).build()
        self.dialect = dialect
        self.limits = limits or ExtraLimits()
        self.fields = tuple(
            _Compiled(f.name, tuple(f.ecs.split(".")), f.kind, setter(tuple(f.ecs.split(".")))) for f in dialect.fields
        )
        index = {f.name: i for i, f in enumerate(self.fields)}
        self.i_method, self.i_path, self.i_query = index["method"], index["path"], index["query"]
        # raw key -> (field index, rank); the first field naming a raw key owns it.
        self.table: dict[str, tuple[int, int]] = {}
        # raw duration key -> nanoseconds per unit.
        self.ns_per: dict[str, int] = {}
        for i, f in enumerate(dialect.fields):
            for rank, key in enumerate(f.keys):
                self.table.setdefault(key, (i, rank))
                if f.kind == "duration":
                    self.ns_per[key] = NS_PER_UNIT[dialect.unit_of(key)]
        # Lines written by ECS logging libraries use the ECS names as (dotted) keys: they rank after
        # the dialect's own keys, and ECS ``event.duration`` is in nanoseconds whatever the dialect.
        for i, f in enumerate(dialect.fields):
            if f.ecs not in self.table:
                self.table[f.ecs] = (i, len(f.keys))
                if f.kind == "duration":
                    self.ns_per[f.ecs] = 1
        # Fields converted by one function of the value alone (the rest need the key or the draft).
        by_kind: dict[str, Callable[[Any], Any]] = {"keyword": to_keyword, "long": to_long, "ip": to_ip}
        by_name: dict[str, Callable[[Any], Any]] = {"status": to_status, "trace_id": trace_from, "level": to_level}
        self.simple: tuple[Callable[[Any], Any] | None, ...] = tuple(
            None if f.name in _SPECIAL else by_name.get(f.name) or by_kind.get(f.kind, to_keyword) for f in self.fields
        )
        self._plans: dict[bool, dict[tuple[str, ...], _Plan]] = {False: {}, True: {}}
        self._handlers: dict[tuple[int, str, bool, bool], Handler] = {}

    def apply(self, obj: dict[str, Any], draft: Draft, *, use_msg: bool) -> bool:
        """Map ``obj`` into ``draft``; returns whether the object carried a valid event time.

        ``use_msg``: put the line's ``msg``/``message`` into ``message`` (app logs); otherwise
        (access logs, whose ``message`` is the whole line) it stays in ``extra``.
        """
        keys = tuple(obj)
        plans = self._plans[use_msg]
        plan = plans.get(keys)
        if plan is None:
            plan = self._plan(keys, use_msg)
            if len(keys) <= _MAX_PLAN_KEYS:
                if len(plans) >= _MAX_PLANS:
                    plans.clear()
                plans[keys] = plan
        has_time = False
        keep: list[str] = []
        for key, handle, absent in plan.steps:
            value = obj[key]
            if value in absent:
                continue
            outcome = handle(value, draft)
            if outcome:
                if outcome == _TIME:
                    has_time = True
                else:
                    keep.append(key)
        unknown = plan.unknown
        if plan.request and self._request_line(obj["request"], draft, set_query=plan.set_query):
            unknown = tuple(k for k in unknown if k != "request")
        if unknown or keep:
            extra, truncated = bounded_extra(obj, (*unknown, *keep), self.limits)
            if extra:
                draft.doc["extra"] = extra
            if truncated:
                draft.flag(TRUNCATED)
        return has_time

    def choose(self, keys: tuple[str, ...]) -> tuple[dict[int, tuple[int, str]], list[str]]:
        """Which raw key feeds which field for objects with exactly these keys in this order: when
        several raw keys of one field are present the first in the dialect's order wins, the others
        go to ``extra``. Returns field index -> (rank, raw key), in the order fields are first met,
        and the keys left for ``extra``. (Also the plan of the native encoder, ``access_encoder.py``.)"""
        table = self.table
        chosen: dict[int, tuple[int, str]] = {}
        unknown: list[str] = []
        for key in keys:
            hit = table.get(key)
            if hit is None:
                unknown.append(key)
                continue
            idx, rank = hit
            cur = chosen.get(idx)
            if cur is None:
                chosen[idx] = (rank, key)
            elif rank < cur[0]:
                unknown.append(cur[1])
                chosen[idx] = (rank, key)
            else:
                unknown.append(key)
        return chosen, unknown

    def _absent(self, idx: int) -> tuple[Any, ...]:
        """The values of field ``idx`` that mean "no value" and are skipped before its handler."""
        if self.keeps_empty(idx):
            return _ABSENT_TEXT
        if self.fields[idx].kind in ("long", "duration"):
            return _ABSENT_NUMBER  # "-" reaches the handler: flagged missing_<field>
        return _ABSENT

    def keeps_empty(self, idx: int) -> bool:
        """Whether field ``idx`` indexes an empty string as ``""`` (text fields) rather than dropping it."""
        return keeps_empty(self.dialect.fields[idx])

    def _plan(self, keys: tuple[str, ...], use_msg: bool) -> _Plan:
        """The handlers for objects with exactly these keys in this order (see :meth:`choose`)."""
        chosen, unknown = self.choose(keys)
        set_query = self.i_query not in chosen
        handlers = self._handlers
        steps: list[tuple[str, Handler, tuple[Any, ...]]] = []
        for idx, (_, key) in chosen.items():
            # Handlers are shared by the plans (a plan then costs a few tuples, whatever the layout).
            hkey = (idx, key, use_msg, set_query)
            handle = handlers.get(hkey)
            if handle is None:
                if len(handlers) >= _MAX_HANDLERS:
                    handlers.clear()
                handle = handlers[hkey] = self._handler(idx, key, use_msg, set_query)
            steps.append((key, handle, self._absent(idx)))
        request = "request" in unknown and self.i_method not in chosen and self.i_path not in chosen
        return _Plan(tuple(steps), tuple(unknown), request, set_query)

    def _handler(self, idx: int, key: str, use_msg: bool, set_query: bool) -> Handler:
        """The function mapping the value of raw ``key`` into field ``idx`` (compiled once per plan)."""
        f = self.fields[idx]
        put_value, name = f.set, f.name
        invalid = "invalid_" + name
        missing = "missing_" + name
        convert = self.simple[idx]
        if convert is to_keyword:

            def keyword(value: Any, draft: Draft) -> int:
                if type(value) is str and len(value) <= MAX_KEYWORD_CHARS:
                    put_value(draft.doc, value)
                    return _OK
                out = to_keyword(value)
                if out is _INVALID:
                    draft.flag(invalid)
                    return _KEEP
                put_value(draft.doc, out)
                return _OK

            return keyword
        if convert is to_long or convert is to_status:
            top = 999 if convert is to_status else MAX_LONG
            conv_long = convert

            def long_value(value: Any, draft: Draft) -> int:
                if type(value) is int and 0 <= value <= top:  # a JSON integer (not a bool): as is
                    put_value(draft.doc, value)
                    return _OK
                if value == "-":  # nginx's "no value" for a number: flagged, nothing indexed
                    draft.flag(missing)
                    return _OK
                out = conv_long(value)
                if out is _INVALID:
                    draft.flag(invalid)
                    return _KEEP
                put_value(draft.doc, out)
                return _OK

            return long_value
        if convert is not None:
            conv = convert

            def simple(value: Any, draft: Draft) -> int:
                out = conv(value)
                if out is _INVALID:
                    draft.flag(invalid)
                    return _KEEP
                put_value(draft.doc, out)
                return _OK

            return simple
        if name == "time":

            def event_time(value: Any, draft: Draft) -> int:
                if type(value) is int and 100_000_000_000 <= value < 100_000_000_000_000:  # epoch ms
                    return _TIME if draft.event_time_at(*utc_epoch_ms(value)) else _KEEP
                parsed = parse_time(value)
                if parsed is None:
                    draft.flag(invalid)
                    return _KEEP
                iso = canonical_iso(value) if not parsed[1] and type(value) is str else None
                if not draft.event_time(parsed[0], iso):
                    return _KEEP  # out of the window: kept in extra, flagged by event_time
                if parsed[1]:
                    draft.flag("timestamp_no_tz")
                return _TIME

            return event_time
        if name == "request_time":
            per = self.ns_per[key]

            def duration(value: Any, draft: Draft) -> int:
                if value == "-":
                    draft.flag(missing)
                    return _OK
                num = to_number(value)
                ns = ns_of(num, per) if num is not None else -1
                if 0 <= ns <= MAX_LONG:
                    put_value(draft.doc, ns)
                    return _OK
                draft.flag(invalid)
                return _KEEP

            return duration
        if name == "path":

            def path(value: Any, draft: Draft) -> int:
                if type(value) is str and len(value) <= MAX_KEYWORD_CHARS and "?" not in value and "://" not in value:
                    put_value(draft.doc, value)  # a bare path (most lines): nothing to split
                    return _OK
                out = self._path(value, draft, set_query=set_query)
                if out is _INVALID:
                    draft.flag(invalid)
                    return _KEEP
                put_value(draft.doc, out)
                return _OK

            return path
        if name == "msg":

            def msg(value: Any, draft: Draft) -> int:
                if not use_msg:
                    return _KEEP
                if isinstance(value, str):
                    put_value(draft.doc, value)
                    return _OK
                draft.flag(invalid)
                return _KEEP

            return msg
        # component, namespace, pod (and any other special field): the headers decide when they carry it.

        def from_headers(value: Any, draft: Draft) -> int:
            out = to_keyword(value)
            if name in _FROM_HEADERS:
                current = self._header_value(draft, name)
                if current:
                    return _KEEP if out != current else _OK
            if out is _INVALID:
                draft.flag(invalid)
                return _KEEP
            put_value(draft.doc, out)
            return _OK

        return from_headers

    @staticmethod
    def _header_value(draft: Draft, name: str) -> str | None:
        if name == "component":
            return draft.component
        k = draft.doc.get("kubernetes")
        if not k:
            return None
        if name == "namespace":
            return k.get("namespace")  # type: ignore[no-any-return]
        pod = k.get("pod")
        return pod.get("name") if pod else None

    def _path(self, value: Any, draft: Draft, *, set_query: bool = True) -> Any:
        """``url.path`` (and ``url.query`` when the raw value carries one); returns the path."""
        if not isinstance(value, str) or len(value) > MAX_KEYWORD_CHARS:
            return _INVALID
        if "://" in value:
            try:
                parts = urlsplit(value)
            except ValueError:
                return _INVALID
            if parts.hostname:
                draft.put(("url", "domain"), parts.hostname)
            if parts.query and set_query:
                draft.put(("url", "query"), parts.query)
            return parts.path or "/"
        if "?" in value:
            path, query = value.split("?", 1)
            if query and set_query:
                draft.put(("url", "query"), query)
            return path
        return value

    def _request_line(self, value: Any, draft: Draft, *, set_query: bool) -> bool:
        """nginx ``$request``: ``GET /a?b=1 HTTP/1.1`` when no method/path field was logged."""
        if not isinstance(value, str):
            return False
        parts = value.split(" ")
        if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/"):
            return False
        path = self._path(parts[1], draft, set_query=set_query)
        if path is _INVALID:
            return False
        draft.put(("http", "request", "method"), parts[0])
        draft.put(("url", "path"), path)
        draft.put(("http", "version"), parts[2][5:])
        return True
