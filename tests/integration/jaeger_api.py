"""A small client of Jaeger's query HTTP API (``/api/...``) for the tests, and a private Jaeger.

``private_jaeger(es_url, prefix)`` runs the cached Jaeger binary on spare ports over one index
prefix (a test's own), through the same :class:`JaegerService` that ``logpipe dev up jaeger`` uses.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from logpipe.dev.services.jaeger import JaegerService
from logpipe.dev.services.manager import ServiceManager
from logpipe.dev.services.paths import DevPaths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_jaeger(es_url: str, prefix: str, state: Path) -> Iterator[str]:
    """A Jaeger query service reading ``<prefix>-jaeger-*``; yields its base URL, stops it after."""
    paths = DevPaths(cache=DevPaths.from_env().cache, state=state)
    svc = JaegerService(paths, port=free_port(), grpc_port=free_port(), es_url=es_url, index_prefix=prefix)
    manager = ServiceManager(paths, [svc])
    manager.up()
    try:
        yield svc.endpoint
    finally:
        manager.down()


def get(base: str, path: str, **params: Any) -> Any:
    """GET ``base + path`` with query ``params`` (dicts as JSON); the decoded answer."""
    query = urllib.parse.urlencode({k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()})
    url = f"{base}{path}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")


def wait_for_trace(base: str, trace_id: str, spans: int, timeout: float = 30.0) -> dict[str, Any]:
    """``/api/traces/{id}`` once it has ``spans`` spans."""
    deadline = time.monotonic() + timeout
    while True:
        answer = get(base, f"/api/traces/{trace_id}")
        data = answer.get("data") or []
        if data and len(data[0]["spans"]) >= spans:
            return data[0]  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"trace {trace_id} has not {spans} spans in Jaeger after {timeout} s: {answer}")
        time.sleep(0.3)


def search(base: str, **params: Any) -> list[dict[str, Any]]:
    """``/api/traces`` over the last hour with ``params`` (service, operation, tags, minDuration...)."""
    now_us = int(time.time() * 1_000_000)
    params.setdefault("start", now_us - 3_600_000_000)
    params.setdefault("end", now_us + 60_000_000)
    params.setdefault("limit", 20)
    answer = get(base, "/api/traces", **params)
    assert not answer.get("errors"), answer
    return answer.get("data") or []


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags") or ()}
