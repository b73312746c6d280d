"""Helpers shared by the parser tests: records as the shipper writes them."""

from __future__ import annotations

from typing import Any

from parsers import LineParser, Many, Parsed, ParseResult
from parsers.document import get


def headers(log_type: str, offset: int = 0, **over: str) -> dict[str, str]:
    """The Kafka headers of a line shipped from one pod's file."""
    h = {
        "lp.node": "node-1",
        "lp.namespace": "shop",
        "lp.pod": "cart-7d9f-abcde",
        "lp.pod_uid": "0f6a-uid",
        "lp.container": "cart",
        "lp.component": "cart",
        "lp.type": log_type,
        "lp.path": f"/var/log/pods/shop_cart/{log_type}.log",
        "lp.offset": str(offset),
        "lp.file_id": "fingerprint::c0ffee",
        "lp.read_ts": "1795780800000",  # 2026-11-27T12:00:00Z
    }
    h.update({k.replace("_", ".", 1) if k.startswith("lp_") else k: v for k, v in over.items()})
    return h


def field(doc: dict[str, Any], dotted: str) -> Any:
    """The value of a nested document field named with dots."""
    return get(doc, tuple(dotted.split(".")))


def parsed(result: ParseResult) -> dict[str, Any]:
    """The document of a result that must be :class:`Parsed` (or the first part of a :class:`Many`:
    a span line's span, before its service document)."""
    if isinstance(result, Many):
        result = result.parts[0]
    assert isinstance(result, Parsed), result
    return result.doc


def parse_doc(line: bytes, log_type: str = "access", parser: LineParser | None = None) -> dict[str, Any]:
    return parsed((parser or LineParser()).parse(line, headers(log_type)))
