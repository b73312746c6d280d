"""Unknown fields of a log line, kept under one object ``extra`` whose size and shape are bounded.

Bounds (so that no log line can explode the index mapping): at most ``max_keys`` keys and array
elements in all, objects nested at most ``max_depth`` deep (deeper values are kept as their JSON
text), strings cut to ``max_value_chars``. Every leaf is a string (numbers and booleans in their
JSON spelling), so one ``keyword`` mapping (or ``flattened``) fits every ``extra.*`` field whatever
type a line uses. Dots in keys become ``_`` (Elasticsearch would read them as more nesting) and empty
keys become ``_``. Anything dropped or cut sets the flag ``extra_truncated``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

TRUNCATED = "extra_truncated"


@dataclass(frozen=True, slots=True)
class ExtraLimits:
    """Bounds of the ``extra`` object (and of span ``labels``)."""

    max_keys: int = 64
    max_depth: int = 3
    max_value_chars: int = 1024
    max_key_chars: int = 128


class ExtraBuilder:
    """Collects unknown fields one by one within the limits; ``truncated`` tells whether any was cut."""

    __slots__ = ("budget", "limits", "obj", "truncated")

    def __init__(self, limits: ExtraLimits) -> None:
        self.limits = limits
        self.budget = limits.max_keys
        self.obj: dict[str, Any] = {}
        self.truncated = False

    def add(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key`` (top level of ``extra``) if the budget allows."""
        if value is None:
            return
        if self.budget <= 0:
            self.truncated = True
            return
        self.budget -= 1
        self.obj[self._key(key)] = self._value(value, 1)

    def add_all(self, items: Iterable[tuple[str, Any]]) -> None:
        for k, v in items:
            self.add(k, v)

    def _key(self, key: str) -> str:
        if len(key) > self.limits.max_key_chars:
            key = key[: self.limits.max_key_chars]
            self.truncated = True
        if "." in key:
            key = key.replace(".", "_")
        if not key.strip():
            key = "_" + key
        return key

    def _text(self, s: str) -> str:
        if len(s) > self.limits.max_value_chars:
            self.truncated = True
            return s[: self.limits.max_value_chars]
        return s

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, dict):
            if depth >= self.limits.max_depth:
                return self._text(orjson.dumps(value).decode())
            out: dict[str, Any] = {}
            for k, v in value.items():
                if v is None:
                    continue
                if self.budget <= 0:
                    self.truncated = True
                    break
                self.budget -= 1
                out[self._key(str(k))] = self._value(v, depth + 1)
            return out
        if isinstance(value, list):
            items: list[Any] = []
            for v in value:
                if v is None:
                    continue
                if self.budget <= 0:
                    self.truncated = True
                    break
                self.budget -= 1
                # Objects and arrays inside arrays are kept as JSON text: a mix of objects and strings
                # in one array is a mapping error in Elasticsearch.
                if isinstance(v, dict | list):
                    items.append(self._text(orjson.dumps(v).decode()))
                else:
                    items.append(self._value(v, depth))
            return items
        return self._text(str(value))


_PLAIN_KEYS: dict[str, str] = {}  # raw key -> its name in ``extra`` (keys that need no truncation)


def extra_key_name(key: str) -> str:
    """The name ``key`` gets in ``extra`` (dots would read as nesting; blank keys get a ``_``)."""
    if "." in key:
        key = key.replace(".", "_")
    if not key.strip():
        key = "_" + key
    return key


def bounded_extra(obj: dict[str, Any], keys: Iterable[str], limits: ExtraLimits) -> tuple[dict[str, Any], bool]:
    """``extra`` for ``keys`` of ``obj`` (in order) and whether anything was cut: the same result as
    :class:`ExtraBuilder`, with a fast path for the usual case of short string values."""
    out: dict[str, Any] = {}
    budget = limits.max_keys
    max_chars, max_key = limits.max_value_chars, limits.max_key_chars
    for key in keys:
        value = obj[key]
        if value is None:
            continue
        if type(value) is not str or len(value) > max_chars or budget <= 0 or len(key) > max_key:
            break
        name = _PLAIN_KEYS.get(key)
        if name is None:
            name = extra_key_name(key)
            if len(_PLAIN_KEYS) < 4096:
                _PLAIN_KEYS[key] = name
        out[name] = value
        budget -= 1
    else:
        return out, False
    builder = ExtraBuilder(limits)  # a value that needs bounding: start over the careful way
    for key in keys:
        builder.add(key, obj[key])
    return builder.obj, builder.truncated
