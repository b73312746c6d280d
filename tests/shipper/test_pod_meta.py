"""Pod metadata: names from /var/log/pods directories, Component from labels or derived from names."""

from __future__ import annotations

import pytest

from shipper.kube_api import KubePod, KubePods
from shipper.pod_meta import (
    PodMetaConfig,
    PodMetadata,
    PodRef,
    component_from_owner,
    derive_component,
    looks_like_uid,
    parse_log_dir,
)
from shipper.target import PodInfo

UID = "0741c7a8-7ce4-4c82-9807-2e8c35bf992d"


@pytest.mark.parametrize(
    ("pod", "component"),
    [
        # Deployment: <name>-<pod-template-hash>-<5 chars>, names with dashes and digits
        ("web-7d9f8b6c4-x2k9p", "web"),
        ("api-v2-backend-7d9f8b6c4-x2k9p", "api-v2-backend"),
        ("svc-12345-6b7c8d9f5-bcdfg", "svc-12345"),
        ("pay-2024-5c6d7f8b9c-zz2k4", "pay-2024"),
        ("nginx-3837372172-3dn7x", "nginx"),  # decimal hash of old clusters
        ("backup-29400000-4m9pz", "backup"),  # CronJob: <name>-<scheduled minute>-<5 chars>
        # StatefulSet: <name>-<ordinal>
        ("redis-0", "redis"),
        ("kafka-controller-12", "kafka-controller"),
        ("redis-v2-0", "redis-v2"),
        ("web-2-0", "web-2"),
        ("mongo-bdfgh2-0", "mongo-bdfgh2"),
        # DaemonSet / Job: <name>-<5 chars>
        ("fluentd-x2k9p", "fluentd"),
        ("node-exporter-bk7wq", "node-exporter"),
        # not generated: kept whole
        ("web-007", "web-007"),  # not an ordinal (leading zeros)
        ("standalone", "standalone"),
        ("my-pod", "my-pod"),
        ("api-v2", "api-v2"),
        ("web-abcde", "web-abcde"),  # vowels: not a generated suffix
    ],
)
def test_component_is_derived_from_the_pod_name(pod: str, component: str) -> None:
    assert derive_component(pod) == component


def test_static_pods_lose_their_node_suffix() -> None:
    assert derive_component("kube-apiserver-node-1", "node-1") == "kube-apiserver"
    assert derive_component("etcd-ip-10-0-0-7", "ip-10-0-0-7") == "etcd"
    assert derive_component("node-1", "node-1") == "node"  # not a static pod: the StatefulSet rule applies


@pytest.mark.parametrize(
    ("kind", "name", "component"),
    [("ReplicaSet", "web-7d9f8b6c4", "web"), ("ReplicaSet", "api-v2-5c6d7f8b9c", "api-v2"),
     ("StatefulSet", "redis-v2", "redis-v2"), ("DaemonSet", "fluentd", "fluentd"),
     ("Job", "backup-29400000", "backup"), ("Job", "migrate", "migrate"), ("ReplicaSet", "x", "x")],
)
def test_component_from_the_controller_reference(kind: str, name: str, component: str) -> None:
    assert component_from_owner(kind, name) == component


def test_log_directory_names_split_exactly() -> None:
    assert parse_log_dir(f"shop_web-7d9f8b6c4-x2k9p_{UID}") == PodRef("shop", "web-7d9f8b6c4-x2k9p", UID)
    assert parse_log_dir(f"kube-system_coredns.v1-0_{UID}") == PodRef("kube-system", "coredns.v1-0", UID)
    for bad in ("shop_web", f"shop_web_x_{UID}", f"Shop_web_{UID}", "shop_web_not-a-uid", f"_web_{UID}"):
        assert parse_log_dir(bad) is None
    assert looks_like_uid(UID) and not looks_like_uid("lost+found")


def test_metadata_from_log_directories_without_the_api() -> None:
    meta = PodMetadata(PodMetaConfig(kubernetes_api="off"), node="node-1")
    assert meta.info(UID) is None
    meta.observe_log_dir(f"shop_pay-5c6d7f8b9c-zz2k4_{UID}", ["pay"])
    assert meta.info(UID, "pay") == PodInfo("shop", "pay-5c6d7f8b9c-zz2k4", UID, "pay", "pay")
    assert meta.emptydir_container(UID, "logs") == "pay"  # the only container that has started
    meta.observe_log_dir(f"shop_pay-5c6d7f8b9c-zz2k4_{UID}", ["pay", "istio-proxy"])
    assert meta.emptydir_container(UID, "logs") == ""  # two containers: cannot tell
    meta.forget_log_dir(f"shop_pay-5c6d7f8b9c-zz2k4_{UID}")
    assert meta.info(UID) is None
    assert meta.partial(UID) == PodInfo("", "", UID, "", "")
    assert not meta.api_reachable


def test_no_api_outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert PodMetadata(PodMetaConfig(), node="n").kube is None
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    kube = PodMetadata(PodMetaConfig(), node="n").kube
    assert kube is not None and kube.base_url == "https://10.96.0.1:443"
    assert PodMetadata(PodMetaConfig(), node="").kube is None  # no node: it would list the whole cluster
    assert PodMetadata(PodMetaConfig(kubernetes_api="off"), node="n").kube is None


class _Cache(KubePods):
    """The API watcher's cache, filled directly (the watch itself is tested in test_kube_api.py)."""

    def __init__(self, *pods: KubePod) -> None:
        super().__init__("http://127.0.0.1:1", "node-1")
        for p in pods:
            self._pods[p.uid] = p


def test_label_component_and_container_from_the_api() -> None:
    pod = KubePod(UID, "shop", "pay-5c6d7f8b9c-zz2k4", labels={"app": "payments", "tier": "web"},
                  controller_kind="ReplicaSet", controller_name="pay-5c6d7f8b9c",
                  volume_mounts={"logs": ("pay",), "tmp": ("pay", "sidecar")})
    meta = PodMetadata(PodMetaConfig(), node="node-1", kube=_Cache(pod))
    assert meta.info(UID) == PodInfo("shop", "pay-5c6d7f8b9c-zz2k4", UID, "payments", "")  # no log dir needed
    assert meta.emptydir_container(UID, "logs") == "pay"
    assert meta.emptydir_container(UID, "tmp") == ""


def test_label_keys_are_configurable_and_fall_back_to_the_controller() -> None:
    pod = KubePod(UID, "shop", "pay-5c6d7f8b9c-zz2k4", labels={"app.kubernetes.io/name": "pay-svc"},
                  controller_kind="ReplicaSet", controller_name="pay-5c6d7f8b9c")
    assert PodMetadata(node="n", kube=_Cache(pod)).component(PodRef("shop", pod.name, UID)) == "pay-svc"
    cfg = PodMetaConfig(component_labels=["component"])
    assert PodMetadata(cfg, node="n", kube=_Cache(pod)).component(PodRef("shop", pod.name, UID)) == "pay"
    bare = KubePod(UID, "shop", "standalone-7d9f8b6c4-x2k9p")
    assert PodMetadata(cfg, node="n", kube=_Cache(bare)).component(PodRef("shop", bare.name, UID)) == "standalone"
