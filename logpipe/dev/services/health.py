"""Health probes: Kafka answers metadata, Elasticsearch is green or yellow, Alertmanager is ready,
Jaeger's query API answers."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

from logpipe.dev.services.errors import ServiceStartError
from logpipe.dev.services.ports import port_open

T = TypeVar("T")


def _run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when the caller is inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="logpipe-health-probe")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


async def _kafka_metadata(bootstrap: str, timeout: float) -> bool:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return bool(client.cluster.brokers())
    finally:
        await client.close()


def kafka_ready(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when the broker answers a metadata request and lists at least one broker."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not port_open(host or "127.0.0.1", int(port)):
        return False  # skip aiokafka (and its error logging) when nothing listens yet
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return _run_async(lambda: _kafka_metadata(bootstrap, timeout))
    except Exception:
        return False
    finally:
        quiet.setLevel(level)


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def elasticsearch_ready(url: str, timeout: float = 3.0) -> bool:
    """True when the cluster health is green or yellow."""
    try:
        status, body = _get(url.rstrip("/") + "/_cluster/health?timeout=1s", timeout)
        return status == 200 and json.loads(body).get("status") in ("green", "yellow")
    except (OSError, ValueError):
        return False


def alertmanager_ready(url: str, timeout: float = 3.0) -> bool:
    """True when Alertmanager's ``/-/ready`` answers 200."""
    try:
        status, _ = _get(url.rstrip("/") + "/-/ready", timeout)
        return status == 200
    except OSError:
        return False


def jaeger_ready(url: str, timeout: float = 3.0) -> bool:
    """True when Jaeger's query API answers ``/api/services`` (so its storage answers too)."""
    try:
        status, body = _get(url.rstrip("/") + "/api/services", timeout)
        return status == 200 and isinstance(json.loads(body).get("data", []), list | None)
    except (OSError, ValueError, AttributeError):
        return False


PROBES: dict[str, Callable[[str], bool]] = {
    "kafka": kafka_ready,
    "elasticsearch": elasticsearch_ready,
    "alertmanager": alertmanager_ready,
    "jaeger": jaeger_ready,
}


def probe(name: str, endpoint: str) -> bool:
    """One health probe of service ``name`` at ``endpoint``."""
    return PROBES[name](endpoint)


def wait_healthy(
    name: str,
    endpoint: str,
    *,
    timeout: float,
    what: str = "",
    still_running: Callable[[], bool] | None = None,
    log_tail: Callable[[], str] | None = None,
) -> None:
    """Poll until ``name`` is healthy; fail fast when its process died, with its log's last lines."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        if probe(name, endpoint):
            return
        died = still_running is not None and not still_running()
        if died or time.monotonic() > deadline:
            reason = "exited" if died else f"was not healthy within {timeout:.0f} s"
            tail = log_tail() if log_tail else ""
            where = f" ({what})" if what else ""
            raise ServiceStartError(
                f"{name} at {endpoint}{where} {reason}" + (f"; last log lines:\n{tail}" if tail else "")
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def reachable(endpoint: str, timeout: float = 0.5) -> bool:
    """A cheap check (one TCP connect) that something listens at ``host:port`` or ``http://host:port``."""
    host = urlsplit(endpoint).hostname if "://" in endpoint else endpoint.split(",")[0].rsplit(":", 1)[0]
    return port_open(host or "127.0.0.1", endpoint_port(endpoint.split(",")[0]), timeout)


def endpoint_port(endpoint: str) -> int:
    """The port of ``host:port`` or ``http://host:port``."""
    if "://" in endpoint:
        port = urlsplit(endpoint).port
        if port is None:
            raise ValueError(f"no port in {endpoint!r}")
        return port
    return int(endpoint.rsplit(":", 1)[1])
