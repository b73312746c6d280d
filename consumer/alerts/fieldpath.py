"""Field names in rules (short like ``status`` or ECS like ``url.path``) resolved over nested ECS docs.

Rules use the names ``logpipe query --where`` accepts: a short name from :data:`logpipe.core.fields.AUTO`
(``status``, ``path``, ``component``), its ECS name (``http.response.status_code``), or any other
dotted ECS path (``logpipe.type``, ``kubernetes.node.name``). Documents are nested objects, so
``url.path`` reads ``doc["url"]["path"]``; a flat ``"url.path"`` key is read as a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from logpipe.core.fields import AUTO, NS_PER_UNIT

Accessor = Callable[[Mapping[str, Any]], Any]

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
SHORT_NAMES: tuple[str, ...] = tuple(f.name for f in AUTO.fields)


def ecs_name(name: str) -> str:
    """The ECS dotted path for a short, ECS or raw field name; unknown names are taken as ECS paths."""
    spec = AUTO.by_name(name)
    return spec.ecs if spec is not None else name


def is_known(name: str) -> bool:
    """True for a name in the field table or any dotted path (an ECS name outside the table)."""
    return AUTO.by_name(name) is not None or "." in name


def label_name(name: str) -> str:
    """The Alertmanager label for a ``group_by`` field as written: dots (and ``@``, ``-``) → ``_``."""
    label = _LABEL_UNSAFE.sub("_", name)
    return label if not label[:1].isdigit() else "_" + label


def path_getter(path: str) -> Accessor:
    """A function reading the dotted ``path`` from a nested doc as stored (None when missing)."""
    parts = tuple(path.split("."))

    def get(doc: Mapping[str, Any]) -> Any:
        d: Any = doc
        for key in parts:
            if isinstance(d, dict):  # the common case, cheaper than the ABC check below
                d = d.get(key)
            elif isinstance(d, Mapping):
                d = d.get(key)
            else:
                d = None
                break
        if d is None and len(parts) > 1:
            return doc.get(path)
        return d

    return get


def accessor(name: str) -> Accessor:
    """A function reading field ``name`` from an ECS doc (None when missing).

    ``request_time`` reads ``event.duration`` (nanoseconds in the index) in **seconds**, as
    ``logpipe query`` shows it; ``event.duration`` itself stays in nanoseconds.
    """
    spec = AUTO.by_name(name)
    get = path_getter(spec.ecs if spec is not None else name)
    if spec is not None and spec.kind == "duration" and name != spec.ecs:
        per_s = NS_PER_UNIT["s"]

        def seconds(doc: Mapping[str, Any]) -> Any:
            v = get(doc)
            if isinstance(v, int | float) and not isinstance(v, bool):
                return v / per_s
            return v

        return seconds
    return get


def text_of(value: Any) -> str:
    """A field value as label text: strings as-is, None as ``""``, other values via ``str``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
