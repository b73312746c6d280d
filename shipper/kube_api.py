"""This node's pods from the Kubernetes API: one list, then a watch, kept in a small cache.

No client library: two GET requests with aiohttp, as any in-cluster agent does::

    GET /api/v1/pods?fieldSelector=spec.nodeName=<node>                       (list, paginated)
    GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=<rv>&allowWatchBookmarks=true

It needs ``get/list/watch pods`` (``deploy/k8s/base/rbac.yaml``). In a pod the server is
``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`` with the service-account token and
CA; ``api_url`` overrides it (e.g. ``kubectl proxy``'s ``http://127.0.0.1:8001``).

Failures never propagate: the watcher backs off (1 s doubling to 30 s) and retries forever,
``reachable`` says whether the last contact succeeded, and one INFO line is logged when that
changes. The cache only holds what :mod:`shipper.pod_meta` needs (labels, controller, which
containers mount which volume), and keeps deleted pods for ``deleted_pod_retention`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import orjson

if TYPE_CHECKING:
    from shipper.pod_meta import PodMetaConfig

log = logging.getLogger("logpipe.shipper.kube_api")

_WATCH_SECONDS = 290  # the server ends each watch after this; we then resume from the last version


@dataclass(frozen=True, slots=True)
class KubePod:
    """What the shipper keeps of one pod object."""

    uid: str
    namespace: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    controller_kind: str = ""
    controller_name: str = ""
    volume_mounts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # volume -> containers


def pod_from_json(obj: dict[str, Any]) -> KubePod | None:
    """A :class:`KubePod` from a v1 Pod object; None if it lacks a uid."""
    meta = obj.get("metadata") or {}
    uid = meta.get("uid")
    if not isinstance(uid, str) or not uid:
        return None
    ctrl: dict[str, Any] = next((o for o in meta.get("ownerReferences") or () if o.get("controller")), {})
    mounts: dict[str, list[str]] = {}
    spec = obj.get("spec") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for vm in c.get("volumeMounts") or ():
            names = mounts.setdefault(str(vm.get("name", "")), [])
            if c.get("name") not in names:
                names.append(str(c.get("name", "")))
    return KubePod(
        uid=uid,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        controller_kind=str(ctrl.get("kind", "")),
        controller_name=str(ctrl.get("name", "")),
        volume_mounts={k: tuple(v) for k, v in mounts.items()},
    )


class _Gone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): list again."""


class KubePods:
    """A watched cache of the pods on one node. Run :meth:`run` as a task; read with :meth:`get`."""

    def __init__(self, base_url: str, node: str, *, token_path: str | None = None, ca_path: str | None = None,
                 deleted_retention: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.node = node
        self.token_path = token_path
        self.ca_path = ca_path
        self.deleted_retention = deleted_retention
        self.settled = asyncio.Event()  # set after the first list attempt, successful or not
        self.reachable = False
        self._told: bool | None = None  # the reachability last logged
        self._pods: dict[str, KubePod] = {}
        self._deleted: dict[str, float] = {}  # uid -> monotonic time of deletion
        self._session: aiohttp.ClientSession | None = None
        self._version = ""

    @classmethod
    def from_config(cls, cfg: PodMetaConfig, node: str) -> KubePods | None:
        """The watcher the config and environment call for, or None (API off, not in a cluster, no node)."""
        if cfg.kubernetes_api == "off":
            return None
        url = cfg.api_url
        if url is None:
            host = os.environ.get("KUBERNETES_SERVICE_HOST")
            if not host:
                log.debug("not in a Kubernetes cluster: Component derived from pod names")
                return None
            port = os.environ.get("KUBERNETES_SERVICE_PORT_HTTPS") or os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        if not node:
            log.info("no node name: the Kubernetes API is not used (it would list every pod of the cluster)")
            return None
        return cls(url, node, token_path=cfg.token_path, ca_path=cfg.ca_path,
                   deleted_retention=cfg.deleted_pod_retention)

    def get(self, uid: str) -> KubePod | None:
        """The cached pod ``uid`` (deleted ones too, for a while), or None."""
        return self._pods.get(uid)

    def __len__(self) -> int:
        return len(self._pods)

    # -- the watch loop --

    async def run(self) -> None:
        """List then watch, forever; errors back off and retry (cancel the task to stop)."""
        backoff = 1.0
        while True:
            try:
                await self._list()
                self._set_reachable(True, "")
                self.settled.set()
                backoff = 1.0
                while True:
                    await self._watch()
                    backoff = 1.0
            except _Gone:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means "not reachable now": never crash the shipper
                self._set_reachable(False, f"{type(exc).__name__}: {exc}")
                self.settled.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _set_reachable(self, ok: bool, why: str) -> None:
        if ok != self._told:
            self._told = ok
            if ok:
                log.info("kubernetes API reachable: %d pods on node %s, Component from labels", len(self._pods),
                         self.node)
            else:
                log.info("kubernetes API unreachable (%s): Component derived from pod names", why)
        self.reachable = ok

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            ctx: ssl.SSLContext | bool = True
            if self.base_url.startswith("https") and self.ca_path and os.path.exists(self.ca_path):
                ctx = ssl.create_default_context(cafile=self.ca_path)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=2))
        return self._session

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token_path:
            try:
                with open(self.token_path, encoding="utf-8") as f:
                    h["Authorization"] = f"Bearer {f.read().strip()}"
            except OSError:
                pass  # kubectl proxy or a test server: no token needed
        return h

    def _url(self, extra: str) -> str:
        sel = quote(f"spec.nodeName={self.node}", safe="")
        return f"{self.base_url}/api/v1/pods?fieldSelector={sel}{extra}"

    async def _list(self) -> None:
        fresh: dict[str, KubePod] = {}
        cont = ""
        timeout = aiohttp.ClientTimeout(total=30, sock_connect=5)
        while True:
            extra = "&limit=500" + (f"&continue={quote(cont, safe='')}" if cont else "")
            async with self._client().get(self._url(extra), headers=self._headers(), timeout=timeout) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"list pods: HTTP {resp.status}")
                doc = orjson.loads(await resp.read())
            for item in doc.get("items") or ():
                pod = pod_from_json(item)
                if pod is not None:
                    fresh[pod.uid] = pod
            meta = doc.get("metadata") or {}
            cont = meta.get("continue") or ""
            if not cont:
                self._version = str(meta.get("resourceVersion", ""))
                break
        now = time.monotonic()
        for uid in set(self._pods) - set(fresh):  # vanished while we were not watching
            self._deleted.setdefault(uid, now)
            fresh[uid] = self._pods[uid]
        self._pods = fresh
        self._purge(now)

    async def _watch(self) -> None:
        extra = (f"&watch=1&allowWatchBookmarks=true&timeoutSeconds={_WATCH_SECONDS}"
                 f"&resourceVersion={quote(self._version, safe='')}")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=_WATCH_SECONDS + 30)
        async with self._client().get(self._url(extra), headers=self._headers(), timeout=timeout) as resp:
            if resp.status == 410:
                raise _Gone()
            if resp.status != 200:
                raise RuntimeError(f"watch pods: HTTP {resp.status}")
            buf = b""
            async for chunk in resp.content.iter_any():
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._apply(orjson.loads(line))

    def _apply(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        obj = ev.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise RuntimeError(f"watch error: {obj.get('message', obj)}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._version = str(rv)
        if kind == "BOOKMARK":
            return
        pod = pod_from_json(obj)
        if pod is None:
            return
        now = time.monotonic()
        self._pods[pod.uid] = pod
        if kind == "DELETED":
            self._deleted[pod.uid] = now
        else:
            self._deleted.pop(pod.uid, None)
        self._purge(now)

    def _purge(self, now: float) -> None:
        for uid, at in list(self._deleted.items()):
            if now - at > self.deleted_retention:
                del self._deleted[uid]
                self._pods.pop(uid, None)
