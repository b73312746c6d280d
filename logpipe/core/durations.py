"""Durations written as ``500ms``, ``30s``, ``5m``, ``1h``, ``7d`` (or a bare number of seconds)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: str | float | int) -> float:
    """Seconds in ``value``; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return float(value)
    m = _RE.match(value)
    if not m:
        raise ValueError(f"invalid duration {value!r}: use a number and a unit, e.g. 500ms, 30s, 5m, 1h, 7d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _validate(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h")


Duration = Annotated[float, BeforeValidator(_validate)]
"""A config field holding seconds, written in YAML as ``30s``/``5m``/``1h``."""
