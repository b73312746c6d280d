"""Signature version 1 of SLS requests, checked the way the service checks it.

The client signs ``METHOD\\nContent-MD5\\nContent-Type\\nDate\\n`` + every ``x-log-*``/``x-acs-*``
header (lower-case name, sorted, ``name:value\\n``; ``x-log-meta-*`` and ``x-log-date``, which the
SDK adds after signing as a copy of ``Date``, excluded) + the resource (path, then ``?k=v&...``
sorted by key, not URL-encoded) with HMAC-SHA1 and the AccessKey secret, base64-encoded, and sends
``Authorization: LOG <AccessKeyId>:<signature>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_SKEW_S = 15 * 60


@dataclass(frozen=True, slots=True)
class AuthError:
    """Why a request is refused: HTTP status, SLS error code and message."""

    status: int
    code: str
    message: str


def string_to_sign(method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The canonical string; ``headers`` with lower-case names."""
    parts = [
        method,
        headers.get("content-md5", ""),
        headers.get("content-type", ""),
        headers.get("date") or headers.get("x-log-date", ""),
    ]
    canonical = "".join(
        f"{k}:{headers[k]}\n"
        for k in sorted(headers)
        if (k.startswith("x-log-") or k.startswith("x-acs-")) and not k.startswith("x-log-meta-") and k != "x-log-date"
    )
    resource = path
    if params:
        resource += "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return "\n".join(parts) + "\n" + canonical + resource


def sign(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    keys: Mapping[str, str],
    now: datetime | None = None,
) -> AuthError | None:
    """None when the request is signed by a known key; else the refusal the service would answer."""
    auth = headers.get("authorization", "")
    if not auth.startswith("LOG ") or ":" not in auth:
        return AuthError(401, "Unauthorized", "missing or malformed Authorization header (expected 'LOG id:sig')")
    key_id, _, signature = auth[4:].partition(":")
    secret = keys.get(key_id)
    if secret is None:
        return AuthError(401, "Unauthorized", f"AccessKeyId not found: {key_id}")
    date = headers.get("date") or headers.get("x-log-date", "")
    try:
        sent = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return AuthError(400, "RequestTimeInvalid", f"invalid Date header {date!r}")
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs(((now or datetime.now(UTC)) - sent).total_seconds()) > MAX_SKEW_S:
        return AuthError(400, "RequestTimeTooSkewed", f"the request time {date} is too far from the server's")
    expected = sign(secret, string_to_sign(method, path, params, headers))
    if not hmac.compare_digest(expected, signature):
        return AuthError(401, "SignatureNotMatch", f"signature {signature} not match")
    return None
