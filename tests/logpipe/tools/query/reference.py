"""Generated access logs in mixed dialects, and plain-Python answers to check `logpipe query` against.

The reference reads lines with orjson and computes every answer by hand (no DuckDB, no
logpipe.tools.query code): the field a short name means, timestamps in their three notations,
percentiles with linear interpolation.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

START = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
COMPONENTS = ("pay-gw", "order-svc", "user-svc")
PATHS = ("/api/pay/create", "/api/pay/query", "/api/order/list", "/healthz")
STATUSES = (200, 200, 200, 201, 404, 429, 500, 503)
MALFORMED = ('{"status": 500, "path": "/trunc', "not json at all", "[1, 2, 3]", '{"a": 1}{"b": 2}', "null")


@dataclass(frozen=True)
class Rec:
    """What a line means, canonically: the reference's view of one valid line."""

    time: datetime | None
    component: str | None
    path: str | None
    status: float | None
    request_time: float | None  # seconds
    bytes: float | None
    raw: dict[str, Any]


def _framework(rng: random.Random, t: datetime) -> dict[str, Any]:
    return {
        "ts": t.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="milliseconds"),
        "service": rng.choice(COMPONENTS),
        "path": rng.choice(PATHS),
        "status": rng.choice(STATUSES),
        "latency": rng.randrange(1, 3000),  # ms
        "bytes": rng.randrange(100, 5000),
        "trace_id": f"{rng.getrandbits(64):016x}",
    }


def _nginx(rng: random.Random, t: datetime) -> dict[str, Any]:
    return {
        "time_local": t.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "component": rng.choice(COMPONENTS),
        "request_uri": rng.choice(PATHS) + f"?id={rng.randrange(100)}",
        "status": str(rng.choice(STATUSES)),  # nginx writes numbers as strings
        "request_time": f"{rng.randrange(1, 3000) / 1000:.3f}",  # seconds
        "body_bytes_sent": rng.randrange(100, 5000),
    }


def _epoch(rng: random.Random, t: datetime) -> dict[str, Any]:
    ms = rng.random() < 0.5
    stamp = int(t.timestamp() * 1000) if ms else int(t.timestamp())
    return {
        "time": stamp,
        "app": rng.choice(COMPONENTS),
        "url": rng.choice(PATHS),
        "code": rng.choice(STATUSES),
        "duration": rng.randrange(1, 3000),  # ms
    }


def _sparse(rng: random.Random, t: datetime) -> dict[str, Any]:
    """A line missing most fields (no status, no duration, sometimes no path)."""
    doc: dict[str, Any] = {"@timestamp": t.isoformat().replace("+00:00", "Z"), "service": rng.choice(COMPONENTS)}
    if rng.random() < 0.5:
        doc["path"] = rng.choice(PATHS)
    return doc


def generate_lines(
    n: int, seed: int = 7, malformed_every: int = 0, blank_every: int = 0, spread_s: int = 600
) -> list[str]:
    """``n`` lines over ``spread_s`` seconds from START in four dialects; optional malformed/blank lines."""
    rng = random.Random(seed)
    makers = (_framework, _nginx, _epoch, _sparse)
    lines = []
    for i in range(n):
        if malformed_every and i % malformed_every == malformed_every - 1:
            lines.append(rng.choice(MALFORMED))
            continue
        if blank_every and i % blank_every == blank_every - 1:
            lines.append("   ")
            continue
        t = START + timedelta(seconds=rng.randrange(spread_s))
        lines.append(orjson.dumps(rng.choice(makers)(rng, t)).decode())
    return lines


# ----------------------------------------------------------------------------------------- reference


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _time(v: Any) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, int | float):
        return datetime.fromtimestamp(v / 1000 if v >= 1e11 else v, UTC)
    if "/" in v:
        return datetime.strptime(v, "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
    parsed = datetime.fromisoformat(v)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _first(doc: dict[str, Any], *keys: str, absent: tuple[Any, ...] = (None, "", "-")) -> Any:
    return next((doc[k] for k in keys if doc.get(k) not in absent), None)


def to_rec(doc: dict[str, Any]) -> Rec:
    """The canonical reading of one decoded line (mirrors logpipe.core.fields' auto dialect by hand)."""
    path = _first(doc, "path", "uri", "url", "request_uri", "request_path", absent=(None, "-"))  # "" is a path
    if "request_time" in doc:
        rt = _num(doc["request_time"])
    elif "latency" in doc:
        rt = _num(doc["latency"]) / 1000  # type: ignore[operator]
    elif "duration" in doc:
        rt = _num(doc["duration"]) / 1000  # type: ignore[operator]
    else:
        rt = None
    return Rec(
        time=_time(_first(doc, "time", "@timestamp", "ts", "timestamp", "time_iso8601", "time_local")),
        component=_first(doc, "service", "component", "app"),
        path=path.split("?", 1)[0] if path is not None else None,
        status=_num(_first(doc, "status", "status_code", "code", "http_status")),
        request_time=rt,
        bytes=_num(_first(doc, "bytes", "body_bytes_sent", "bytes_sent", "size")),
        raw=doc,
    )


def read(lines: Iterable[str]) -> tuple[list[Rec], int, int | None]:
    """Valid records, the malformed count, and the 1-based line of the first malformed line."""
    recs: list[Rec] = []
    bad = 0
    first = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            bad += 1
            first = first or number
            continue
        recs.append(to_rec(doc))
    return recs, bad, first


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (DuckDB quantile_cont, numpy 'linear')."""
    if not values:
        return None
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def group(
    recs: Iterable[Rec], key: Callable[[Rec], Any], keep: Callable[[Rec], bool] = lambda r: True
) -> dict[Any, list[Rec]]:
    out: dict[Any, list[Rec]] = {}
    for r in recs:
        if keep(r):
            out.setdefault(key(r), []).append(r)
    return out


def matches(pattern: str, value: str | None) -> bool:
    return value is not None and re.search(pattern, value) is not None


def vals(rs: Iterable[Rec], attr: str) -> list[float]:
    return [v for r in rs if (v := getattr(r, attr)) is not None]


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)
