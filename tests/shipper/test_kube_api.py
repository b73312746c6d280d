"""The pod list+watch against a local HTTP server speaking the API server's list/watch protocol."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from shipper.kube_api import KubePods, pod_from_json
from shipper.pod_meta import PodMetaConfig, PodMetadata

UID1 = "11111111-1111-4111-8111-111111111111"
UID2 = "22222222-2222-4222-8222-222222222222"


def pod_json(uid: str, name: str, rv: str, app: str | None = None) -> dict[str, Any]:
    labels = {"app": app} if app else {}
    return {
        "metadata": {"uid": uid, "name": name, "namespace": "shop", "resourceVersion": rv, "labels": labels,
                     "ownerReferences": [{"kind": "ReplicaSet", "name": name.rsplit("-", 1)[0],
                                          "controller": True}]},
        "spec": {"nodeName": "node-1", "containers": [
            {"name": "app", "volumeMounts": [{"name": "logs", "mountPath": "/logs"}]},
            {"name": "sidecar", "volumeMounts": [{"name": "shared", "mountPath": "/s"}]},
        ], "initContainers": [{"name": "init", "volumeMounts": [{"name": "shared", "mountPath": "/s"}]}]},
    }


@dataclass
class FakeApiServer:
    """Lists ``pods``; each watch request streams what is put on ``events`` (None ends the watch)."""

    pods: list[dict[str, Any]] = field(default_factory=list)
    events: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    requests: list[str] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    fail_lists: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(str(request.rel_url))
        self.auth.append(request.headers.get("Authorization", ""))
        assert request.query["fieldSelector"] == "spec.nodeName=node-1"
        if request.query.get("watch") != "1":
            if self.fail_lists:
                self.fail_lists -= 1
                return web.Response(status=503)
            return web.json_response({"kind": "PodList", "metadata": {"resourceVersion": "100"},
                                      "items": self.pods})
        resp = web.StreamResponse()
        await resp.prepare(request)
        while True:
            ev = await self.events.get()
            if ev is None:
                break
            await resp.write(orjson.dumps(ev) + b"\n")
        return resp


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApiServer, str]]:
    fake = FakeApiServer()
    app = web.Application()
    app.router.add_get("/api/v1/pods", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    fake.events.put_nowait(None)
    await runner.cleanup()


async def wait_for(cond: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_pod_from_json_keeps_labels_controller_and_volume_users() -> None:
    pod = pod_from_json(pod_json(UID1, "web-7d9f8b6c4-x2k9p", "5", app="web"))
    assert pod is not None
    assert (pod.namespace, pod.name, pod.labels) == ("shop", "web-7d9f8b6c4-x2k9p", {"app": "web"})
    assert (pod.controller_kind, pod.controller_name) == ("ReplicaSet", "web-7d9f8b6c4")
    assert pod.volume_mounts == {"logs": ("app",), "shared": ("init", "sidecar")}
    assert pod_from_json({"metadata": {}}) is None


async def test_list_then_watch_adds_and_deletes_pods(api: tuple[FakeApiServer, str], tmp_path: Path) -> None:
    fake, url = api
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    fake.pods = [pod_json(UID1, "web-7d9f8b6c4-x2k9p", "90", app="web")]
    kube = KubePods(url, "node-1", token_path=str(token), deleted_retention=0.2)
    task = asyncio.create_task(kube.run())
    try:
        await asyncio.wait_for(kube.settled.wait(), 5)
        assert kube.reachable and kube.get(UID1) is not None and kube.get(UID1).labels["app"] == "web"  # type: ignore[union-attr]
        assert fake.auth[0] == "Bearer s3cret"
        await wait_for(lambda: any("watch=1" in r for r in fake.requests))
        assert "resourceVersion=100" in fake.requests[-1]
        fake.events.put_nowait({"type": "ADDED", "object": pod_json(UID2, "db-0", "101", app="db")})
        await wait_for(lambda: kube.get(UID2) is not None)
        fake.events.put_nowait({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}})
        fake.events.put_nowait({"type": "DELETED", "object": pod_json(UID1, "web-7d9f8b6c4-x2k9p", "151")})
        fake.events.put_nowait(None)  # the server ends the watch: it resumes from the last version
        await wait_for(lambda: sum("watch=1" in r for r in fake.requests) >= 2)
        assert "resourceVersion=151" in fake.requests[-1]
        assert kube.get(UID1) is not None  # deleted pods are kept a while for files still being read
        await asyncio.sleep(0.3)
        fake.events.put_nowait({"type": "MODIFIED", "object": pod_json(UID2, "db-0", "152", app="db")})
        await wait_for(lambda: kube.get(UID1) is None)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await kube.close()


async def test_410_gone_relists(api: tuple[FakeApiServer, str]) -> None:
    fake, url = api
    kube = KubePods(url, "node-1")
    task = asyncio.create_task(kube.run())
    try:
        await asyncio.wait_for(kube.settled.wait(), 5)
        await wait_for(lambda: any("watch=1" in r for r in fake.requests))
        fake.pods = [pod_json(UID2, "db-0", "200", app="db")]
        fake.events.put_nowait({"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}})
        await wait_for(lambda: kube.get(UID2) is not None)
        assert sum("watch=1" not in r for r in fake.requests) == 2  # listed again
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await kube.close()


async def test_an_unreachable_api_degrades_silently_to_names(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="logpipe.shipper.kube_api")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    cfg = PodMetaConfig(api_url=f"http://127.0.0.1:{port}", initial_sync_timeout=2.0)
    meta = PodMetadata(cfg, node="node-1")
    t0 = asyncio.get_running_loop().time()
    await meta.start()
    try:
        assert asyncio.get_running_loop().time() - t0 < 1.9  # the first failure ends the wait
        assert not meta.api_reachable
        meta.observe_log_dir(f"shop_web-7d9f8b6c4-x2k9p_{UID1}")
        assert meta.info(UID1) is not None and meta.info(UID1).component == "web"  # type: ignore[union-attr]
        # One INFO line when reachability changes; no warning or error, and no line per retry.
        await asyncio.sleep(1.2)
        assert [r.levelname for r in caplog.records if r.name.endswith("kube_api")] == ["INFO"]
    finally:
        await meta.close()


async def test_an_api_error_then_recovery(api: tuple[FakeApiServer, str]) -> None:
    fake, url = api
    fake.fail_lists = 1
    fake.pods = [pod_json(UID1, "web-7d9f8b6c4-x2k9p", "90", app="payments")]
    meta = PodMetadata(PodMetaConfig(api_url=url, initial_sync_timeout=0.5), node="node-1")
    await meta.start()
    try:
        meta.observe_log_dir(f"shop_web-7d9f8b6c4-x2k9p_{UID1}")
        assert meta.info(UID1).component == "web"  # type: ignore[union-attr]  # derived while the API fails
        await wait_for(lambda: meta.api_reachable, timeout=5)  # retried after 1 s
        assert meta.info(UID1).component == "payments"  # type: ignore[union-attr]
    finally:
        await meta.close()
