"""Text access logs: nginx's ``combined`` and ingress-nginx's ``upstreaminfo``, as dialects of one mapping.

A text line is cut by its format's pattern into the nginx variables it holds (``remote_addr``,
``time_local``, ``request``, ``status``, ``request_time``, ``upstream_response_time``, ...) and that
object goes through the same field mapping as a JSON line (``fieldmap.py``): the same ECS fields,
``$request`` split into method, path and query, ``$time_local`` as the time, the rest in ``extra``.
The format is detected per line, most specific first (``upstreaminfo`` is ``combined`` plus the
ingress fields), unless the shipper's rule chose one (header ``lp.format``): then only that one is
tried. nginx writes bytes of a text line that are not printable ASCII, and ``"`` and ``\\``, as
``\\xHH``: they are decoded back (then UTF-8 with U+FFFD, flagged ``invalid_utf8`` when needed), so
a path or user agent reads as in the JSON format. A line of no known format is indexed with its text
in ``message``, flagged ``unknown_format``.
"""

from __future__ import annotations

import re
from typing import Any

_Q = rb'"((?:[^"\\]|\\.)*)"'  # a quoted nginx variable (\xHH-escaped inside)
_LIST_N = rb"([\d.-]+(?:(?:, | : )[\d.-]+)*)"  # nginx upstream lists: "0.004, 0.002", "0.010 : 0.003"
_LIST_A = rb"(\S+(?:(?:, | : )\S+)*)"

COMBINED_FIELDS = ("remote_addr", "remote_user", "time_local", "request", "status", "body_bytes_sent",
                   "http_referer", "http_user_agent")
_COMBINED = rb"(\S+) - (\S+) \[([^\]]+)\] " + _Q + rb" (\d{3}|-) (\d+|-) " + _Q + rb" " + _Q
UPSTREAMINFO_FIELDS = (*COMBINED_FIELDS, "request_length", "request_time", "proxy_upstream_name",
                       "proxy_alternative_upstream_name", "upstream_addr", "upstream_response_length",
                       "upstream_response_time", "upstream_status", "req_id")
_UPSTREAMINFO = (_COMBINED + rb" (\d+|-) ([\d.]+|-) \[([^\]]*)\] \[([^\]]*)\] " + _LIST_A + rb" " + _LIST_N
                 + rb" " + _LIST_N + rb" " + _LIST_N + rb" (\S+)")

# (name, pattern, field names), most specific first.
FORMATS: tuple[tuple[str, re.Pattern[bytes], tuple[str, ...]], ...] = (
    ("upstreaminfo", re.compile(_UPSTREAMINFO + rb"\s*$"), UPSTREAMINFO_FIELDS),
    ("combined", re.compile(_COMBINED + rb"\s*$"), COMBINED_FIELDS),
)
_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def unescape(value: bytes) -> bytes:
    """nginx's ``\\xHH`` escapes of a text log line back to the bytes."""
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value) if b"\\x" in value else value


FORMAT_NAMES = tuple(name for name, _, _ in FORMATS)


def split_text(line: bytes, only: str | None = None) -> tuple[str, dict[str, bytes]] | None:
    """The format's name and its variables (raw bytes, unescaped), or None when no format matches;
    ``only`` names the one format to try (a shipper rule's choice), else each is tried in turn."""
    for name, pattern, fields in FORMATS:
        if only is not None and name != only:
            continue
        m = pattern.match(line)
        if m is not None:
            return name, {f: unescape(v) for f, v in zip(fields, m.groups(), strict=True)}
    return None


def as_object(values: dict[str, bytes], bad_utf8: list[bool]) -> dict[str, Any]:
    """The variables as the JSON object the field mapping takes (text decoded; ``bad_utf8[0]`` set
    when some value was not UTF-8)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        try:
            out[k] = v.decode()
        except UnicodeDecodeError:
            bad_utf8[0] = True
            out[k] = v.decode("utf-8", "replace")
    return out
