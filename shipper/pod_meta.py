"""Pod metadata of a file: pod uid -> namespace, pod name, Component (and container when it can tell).

Two sources, used in this order:

1. The Kubernetes API (optional, :mod:`shipper.kube_api`): this node's pods, listed and watched.
   Component is the first of ``component_labels`` (default ``app``, then
   ``app.kubernetes.io/name``) the pod carries; without such a label it is derived from the pod's
   controller (ReplicaSet ``web-7d9f8b6c4`` -> ``web``, StatefulSet/DaemonSet/Job by name). The API
   also tells which container mounts an EmptyDir volume: if exactly one does, it is the container.
2. The node's ``/var/log/pods/<namespace>_<pod>_<uid>/`` directory names (always available, fed
   by discovery). Component is then derived from the pod name by :func:`derive_component`.

When the API is not configured, not reachable or does not know a pod, everything degrades silently
to (2): one INFO log line when reachability changes, never an error.

An EmptyDir file whose pod uid is in neither source yet (its ``/var/log/pods`` directory not seen,
the API not aware) gets no metadata from :meth:`PodMetadata.info`; discovery retries and, after its
``metadata_wait``, ships it with :meth:`PodMetadata.partial`: the uid, empty namespace, pod and
Component (nothing to derive it from; the record key is then empty: no per-service order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from logpipe.core.config_base import StrictModel
from logpipe.core.durations import Duration
from logpipe.core.workloads import SAFE as _SAFE
from logpipe.core.workloads import derive_component
from shipper.kube_api import KubePod, KubePods
from shipper.target import PodInfo

log = logging.getLogger("logpipe.shipper.pod_meta")

_RS_HASH = re.compile(rf"^(?P<name>.+)-[{_SAFE}0-9]{{6,10}}$")
_CRON_JOB = re.compile(r"^(?P<name>.+)-[0-9]{8,10}$")
_UID = re.compile(r"^[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$")
_DNS = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")

__all__ = ["derive_component"]


def component_from_owner(kind: str, name: str) -> str:
    """The workload name from a pod's controller reference (ReplicaSet -> its Deployment's name)."""
    if kind == "ReplicaSet":
        m = _RS_HASH.match(name)
        return m.group("name") if m else name
    if kind == "Job":
        m = _CRON_JOB.match(name)
        return m.group("name") if m else name
    return name


@dataclass(frozen=True, slots=True)
class PodRef:
    """A pod as named by its ``/var/log/pods`` directory."""

    namespace: str
    pod: str
    uid: str


def parse_log_dir(name: str) -> PodRef | None:
    """``<namespace>_<pod>_<uid>`` -> PodRef; None if the name does not have that shape.

    Namespaces and pod names cannot contain ``_`` (DNS labels/subdomains), so the split is exact.
    """
    parts = name.split("_")
    if len(parts) != 3:
        return None
    ns, pod, uid = parts
    if not (_DNS.match(ns) and _DNS.match(pod) and _UID.match(uid)):
        return None
    return PodRef(ns, pod, uid)


def looks_like_uid(name: str) -> bool:
    """Whether a ``<pods_root>`` entry name is a pod uid."""
    return _UID.match(name) is not None


class PodMetaConfig(StrictModel):
    """Where pod metadata comes from (the ``pod_metadata:`` section of the shipper config)."""

    component_labels: list[str] = Field(default_factory=lambda: ["app", "app.kubernetes.io/name"])
    """Pod labels naming the Component, first present wins; without one it is derived from the name."""
    kubernetes_api: Literal["auto", "off"] = "auto"
    """auto: use the API when in a cluster (``KUBERNETES_SERVICE_HOST``) or ``api_url`` is set; off: never."""
    api_url: str | None = None
    """API server URL overriding the in-cluster one, e.g. ``http://127.0.0.1:8001`` (``kubectl proxy``)."""
    token_path: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    """Bearer token file (re-read on every request: projected tokens rotate); skipped if absent."""
    ca_path: str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    """CA bundle of the API server (https only)."""
    initial_sync_timeout: Duration = 3.0
    """How long start-up waits for the first pod list, so early files get their label Component."""
    deleted_pod_retention: Duration = 600.0
    """How long a deleted pod's metadata is kept, for its files still being read or found late."""


class PodMetadata:
    """The index of this node's pods: uid -> namespace, name, Component, EmptyDir container."""

    def __init__(self, config: PodMetaConfig | None = None, node: str = "", kube: KubePods | None = None,
                 ) -> None:
        self.config = config or PodMetaConfig()
        self.node = node
        self._from_dirs: dict[str, PodRef] = {}
        self._containers: dict[str, tuple[str, ...]] = {}
        self.kube = kube if kube is not None else KubePods.from_config(self.config, node)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching the API (if any) and wait up to ``initial_sync_timeout`` for its first list
        (or its first failure: an unreachable API does not delay start-up further)."""
        if self.kube is None or self._task is not None:
            return
        self._task = asyncio.create_task(self.kube.run(), name="kube-pods-watch")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.kube.settled.wait(), self.config.initial_sync_timeout)

    async def close(self) -> None:
        """Stop the API watch."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.kube is not None:
            await self.kube.close()

    # -- the /var/log/pods index (fed by discovery) --

    def observe_log_dir(self, dirname: str, containers: Iterable[str] = ()) -> PodRef | None:
        """Record a ``<namespace>_<pod>_<uid>`` directory and the container directories in it."""
        ref = parse_log_dir(dirname)
        if ref is not None:
            self._from_dirs[ref.uid] = ref
            self._containers[ref.uid] = tuple(sorted(containers))
        return ref

    def forget_log_dir(self, dirname: str) -> None:
        """The directory is gone (the pod was deleted)."""
        ref = parse_log_dir(dirname)
        if ref is not None and self._from_dirs.get(ref.uid) == ref:
            del self._from_dirs[ref.uid]
            self._containers.pop(ref.uid, None)

    def log_dirs(self) -> list[str]:
        """The ``/var/log/pods`` directory names currently recorded."""
        return [f"{r.namespace}_{r.pod}_{r.uid}" for r in self._from_dirs.values()]

    # -- lookups --

    def _kube_pod(self, uid: str) -> KubePod | None:
        return self.kube.get(uid) if self.kube is not None else None

    def ref(self, uid: str) -> PodRef | None:
        """Namespace and name of pod ``uid``, from its log directory or the API."""
        ref = self._from_dirs.get(uid)
        if ref is not None:
            return ref
        kp = self._kube_pod(uid)
        return PodRef(kp.namespace, kp.name, uid) if kp is not None else None

    def component(self, ref: PodRef) -> str:
        """Component of a pod: a configured label, else its controller, else derived from its name."""
        kp = self._kube_pod(ref.uid)
        if kp is not None:
            for key in self.config.component_labels:
                value = kp.labels.get(key)
                if value:
                    return value
            if kp.controller_kind:
                return component_from_owner(kp.controller_kind, kp.controller_name)
        return derive_component(ref.pod, self.node)

    def emptydir_container(self, uid: str, volume: str) -> str:
        """The container that writes EmptyDir ``volume`` if it can be told, else ``""``.

        From the API: the only container mounting the volume. Without it: the only container of
        the pod that has started (has a ``/var/log/pods`` directory) when the file is found.
        """
        kp = self._kube_pod(uid)
        if kp is not None:
            mounts = kp.volume_mounts.get(volume, ())
            return mounts[0] if len(mounts) == 1 else ""
        seen = self._containers.get(uid, ())
        return seen[0] if len(seen) == 1 else ""

    def info(self, uid: str, container: str = "") -> PodInfo | None:
        """Full metadata of pod ``uid``, or None while its namespace and name are unknown."""
        ref = self.ref(uid)
        if ref is None:
            return None
        return PodInfo(ref.namespace, ref.pod, uid, self.component(ref), container)

    def partial(self, uid: str, container: str = "") -> PodInfo:
        """What is known of a pod nobody has named yet: its uid only."""
        return PodInfo("", "", uid, "", container)

    @property
    def api_reachable(self) -> bool:
        """Whether the last contact with the Kubernetes API succeeded (False when not configured)."""
        return self.kube is not None and self.kube.reachable
