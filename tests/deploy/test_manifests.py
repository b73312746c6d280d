"""The Kubernetes manifests and Dockerfiles under deploy/: they parse, they hang together, and the
config files they ship are valid for the real config models (keys, ports, topics)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumer.alerts.rules import load_rule_file
from consumer.config import ConsumerConfig
from logpipe.core.config_base import load_model
from shipper.config import ShipperConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def manifests(kdir: Path) -> list[Path]:
    """The Kubernetes objects a kustomization lists (its ``resources`` that are files)."""
    k = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    return [kdir / r for r in k.get("resources", []) if (kdir / r).is_file()]


def base_object(kind: str, name: str) -> dict[str, Any]:
    for path in manifests(BASE):
        for d in docs(path):
            if d["kind"] == kind and d["metadata"]["name"] == name:
                return d
    raise AssertionError(f"no {kind}/{name} in deploy/k8s/base")


def config_file(kdir: Path, cm: str, key: str) -> Path:
    """The file behind ConfigMap ``cm``'s ``key`` in kustomization ``kdir`` (overlay first, then base)."""
    for d in (kdir, BASE):
        k = yaml.safe_load((d / "kustomization.yaml").read_text())
        for gen in k.get("configMapGenerator", []):
            if gen["name"] != cm:
                continue
            for f in gen["files"]:
                name, _, src = f.partition("=")
                if (src and name == key) or (not src and Path(name).name == key):
                    return d / (src or name)
    raise AssertionError(f"no ConfigMap {cm} key {key} for {kdir}")


def test_every_yaml_file_parses_and_every_manifest_is_a_kubernetes_object() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 15
    for f in files:
        docs(f)  # raises on a syntax error
    objects = [d for k in KUSTOMIZATIONS for m in manifests(k.parent) for d in docs(m)]
    kinds = {d["kind"] for d in objects}
    assert {"DaemonSet", "Deployment", "PodDisruptionBudget", "ServiceAccount", "ClusterRole",
            "ClusterRoleBinding", "Service", "Namespace"} <= kinds
    for d in objects:
        assert d.get("apiVersion") and d.get("metadata", {}).get("name"), d


@pytest.mark.parametrize("kfile", KUSTOMIZATIONS, ids=lambda p: str(p.parent.relative_to(K8S)))
def test_every_kustomization_refers_to_files_that_exist(kfile: Path) -> None:
    k = yaml.safe_load(kfile.read_text())
    d = kfile.parent
    for r in k.get("resources", []):
        target = (d / r).resolve()
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{kfile}: missing resource {r}"
    for t in k.get("transformers", []):
        assert (d / t).is_file(), f"{kfile}: missing transformer {t}"
    for p in k.get("patches", []):
        assert ("path" in p and (d / p["path"]).is_file()) or "patch" in p, f"{kfile}: bad patch {p}"
    for gen in k.get("configMapGenerator", []):
        for f in gen.get("files", []):
            src = f.partition("=")[2] or f
            assert (d / src).is_file(), f"{kfile}: missing ConfigMap file {src}"


def test_overlays_exist_for_every_environment() -> None:
    assert [p.name for p in OVERLAYS] == ["dev", "prod", "staging"]


def test_shipper_daemonset_mounts_the_kubelet_roots_read_only_and_only_the_registry_writable() -> None:
    ds = base_object("DaemonSet", "logpipe-shipper")
    spec = ds["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    host = {n: v["hostPath"]["path"] for n, v in volumes.items() if "hostPath" in v}
    assert sorted(host.values()) == ["/var/lib/kubelet/pods", "/var/lib/logpipe", "/var/log/pods"]
    for name, path in host.items():
        writable = path == "/var/lib/logpipe"
        assert mounts[name].get("readOnly", False) is not writable, f"{path} readOnly must be {not writable}"
    pods_mount = next(m for n, m in mounts.items() if host.get(n) == "/var/lib/kubelet/pods")
    assert pods_mount["mountPropagation"] == "HostToContainer"
    assert mounts["config"]["readOnly"] is True
    sec = container["securityContext"]
    assert sec["capabilities"] == {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}
    assert sec["readOnlyRootFilesystem"] is True and sec["allowPrivilegeEscalation"] is False
    assert spec["tolerations"] == [{"operator": "Exists"}]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert spec["serviceAccountName"] == "logpipe-shipper"


def test_the_shipper_may_only_read_pods_from_the_api() -> None:
    role = base_object("ClusterRole", "logpipe-shipper")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    binding = base_object("ClusterRoleBinding", "logpipe-shipper")
    assert binding["roleRef"]["name"] == "logpipe-shipper"
    assert binding["subjects"][0]["name"] == "logpipe-shipper"


def test_the_consumer_runs_unprivileged_with_a_disruption_budget() -> None:
    dep = base_object("Deployment", "logpipe-consumer")
    spec = dep["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    pdb = base_object("PodDisruptionBudget", "logpipe-consumer")
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]
    assert dep["spec"]["replicas"] >= 2


def _probe_ports(workload: dict[str, Any]) -> set[int]:
    (c,) = workload["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    ports = set()
    for probe in ("livenessProbe", "readinessProbe"):
        port = c[probe]["httpGet"]["port"]
        ports.add(named[port] if isinstance(port, str) else port)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    return ports


@pytest.mark.parametrize("kdir", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_configs_are_valid_for_the_real_models_and_probes_use_their_ports(kdir: Path) -> None:
    shipper = load_model(ShipperConfig, config_file(kdir, "logpipe-shipper", "shipper.yaml"))
    consumer = load_model(ConsumerConfig, config_file(kdir, "logpipe-consumer", "consumer.yaml"))
    rules_path = config_file(kdir, "logpipe-alert-rules", "alert-rules.yaml")
    load_rule_file(rules_path)
    assert consumer.alerts.rules == f"/etc/logpipe/{rules_path.name}"  # where the projected volume puts it
    assert _probe_ports(base_object("DaemonSet", "logpipe-shipper")) == {shipper.http.port}
    assert _probe_ports(base_object("Deployment", "logpipe-consumer")) == {consumer.http.port}
    services = {d["metadata"]["name"]: d for d in docs(BASE / "services.yaml")}
    assert services["logpipe-shipper-metrics"]["spec"]["ports"][0]["port"] == shipper.http.port
    assert services["logpipe-consumer-metrics"]["spec"]["ports"][0]["port"] == consumer.http.port
    assert shipper.registry.path.startswith("/var/lib/logpipe/")
    assert (shipper.pods_root, shipper.logs_root) == ("/var/lib/kubelet/pods", "/var/log/pods")
    # What the shippers produce is what the consumers read, in every environment.
    produced = {f"{shipper.rules.topic_prefix}{t}" for t in ("access", "app", "stdout", "trace")}
    assert produced == set(consumer.kafka.topics)
    assert shipper.kafka.dead_letter_topic == consumer.kafka.dead_letter_topic
    assert shipper.kafka.bootstrap == consumer.kafka.bootstrap


def test_overlays_differ_where_environments_differ() -> None:
    seen = {}
    for kdir in OVERLAYS:
        consumer = load_model(ConsumerConfig, config_file(kdir, "logpipe-consumer", "consumer.yaml"))
        k = yaml.safe_load((kdir / "kustomization.yaml").read_text())
        seen[kdir.name] = (consumer.index.prefix, consumer.kafka.bootstrap, k["namePrefix"],
                           k["replicas"][0]["count"])
    assert len({v[0] for v in seen.values()}) == 3 and len({v[1] for v in seen.values()}) == 3
    assert seen["prod"][3] > seen["staging"][3] > seen["dev"][3]


def kustomize_command() -> list[str]:
    """`kustomize build`, or `kubectl kustomize`; scripts/test.sh installs kustomize when neither is there."""
    for exe in (shutil.which("kustomize"), str(Path.home() / "go" / "bin" / "kustomize")):
        if exe and Path(exe).exists():
            return [exe, "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail("neither kustomize nor kubectl is installed: run scripts/install-kustomize.sh")


@pytest.mark.parametrize("kdir", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_kustomize_renders_with_references_resolved(kdir: Path) -> None:
    out = subprocess.run([*kustomize_command(), str(kdir)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    objs = [d for d in yaml.safe_load_all(out.stdout) if d]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    (ns,) = by_kind["Namespace"]
    namespaced = [o for o in objs if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding",
                                                        "PriorityClass")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {ns["metadata"]["name"]}
    cms = {o["metadata"]["name"] for o in by_kind["ConfigMap"]}
    (ds,) = by_kind["DaemonSet"]
    (config_volume,) = [v for v in ds["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    assert config_volume["configMap"]["name"] in cms
    (binding,) = by_kind["ClusterRoleBinding"]
    sas = {(o["metadata"]["name"], o["metadata"]["namespace"]) for o in by_kind["ServiceAccount"]}
    assert (binding["subjects"][0]["name"], binding["subjects"][0]["namespace"]) in sas
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] in {n for n, _ in sas}


@pytest.mark.parametrize("name", ["shipper", "consumer"])
def test_dockerfiles_install_the_package_from_sources_that_exist(name: str) -> None:
    text = (DEPLOY / "docker" / f"{name}.Dockerfile").read_text()
    lines = [ln.split() for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == ["FROM", "python:3.11-slim", "AS", "build"]
    root = DEPLOY.parent
    for ln in lines:
        if ln[0] == "COPY" and not ln[1].startswith("--from="):
            for src in ln[1:-1]:
                assert src.endswith("*") or (root / src).exists(), f"{name}.Dockerfile copies missing {src}"
    # The wheel is built in its own stage, then installed with the role's extra in a clean stage; only the
    # consumer's build compiles the C extension of setup.py (LOGPIPE_NATIVE=1), the shipper's skips it.
    build_stage = text.split("\nFROM ")[1]
    assert "setup.py" in build_stage and "pip wheel" in build_stage
    if name == "consumer":
        assert "gcc" in build_stage and "LOGPIPE_NATIVE=1" in build_stage
    else:
        assert "gcc" not in build_stage and "LOGPIPE_NATIVE=0" in build_stage
    assert [ln for ln in lines if ln[0] == "FROM"][-1] == ["FROM", "python:3.11-slim"]
    (install,) = [" ".join(ln) for ln in lines if ln[:3] == ["RUN", "pip", "install"]]
    extras = "${EXTRAS}" if name == "shipper" else name
    assert f'"$(ls /wheels/logpipe-*.whl)[{extras}]"' in install
    if name == "shipper":
        assert ["ARG", "EXTRAS=shipper"] in lines
    ignore = (DEPLOY / "docker" / f"{name}.Dockerfile.dockerignore").read_text().splitlines()
    assert "!setup.py" in ignore
    user = next(ln[1] for ln in lines if ln[0] == "USER")
    assert (user == "0") if name == "shipper" else not user.startswith("0")


def render(kdir: Path) -> list[dict[str, Any]]:
    out = subprocess.run([*kustomize_command(), str(kdir)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def kubernetes_validate() -> list[str]:
    """The ``kubernetes-validate`` CLI (pip, the dev extra) beside this interpreter."""
    exe = Path(sys.executable).with_name("kubernetes-validate")
    found = str(exe) if exe.exists() else shutil.which("kubernetes-validate")
    if not found:
        pytest.fail("kubernetes-validate is not installed: pip install -e '.[dev]'")
    return [found]


@pytest.mark.parametrize("kdir", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_rendered_manifests_pass_kubernetes_validate_strict_for_1_37(kdir: Path, tmp_path: Path) -> None:
    rendered = tmp_path / f"{kdir.name}.yaml"
    rendered.write_text(yaml.safe_dump_all(render(kdir)))
    done = subprocess.run([*kubernetes_validate(), "--strict", "--kubernetes-version", "1.37.0", str(rendered)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout + done.stderr


SECURED = [o for o in OVERLAYS if o.name in ("staging", "prod")]


def _secret_mounts(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the secret volume, for every container of ``workload``."""
    spec = workload["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
    out = {}
    for c in spec["containers"]:
        for m in c.get("volumeMounts", []):
            if m["name"] in secrets:
                assert m.get("readOnly") is True, m
                out[m["mountPath"]] = secrets[m["name"]]
    return out


def _under(path: str | None, mounts: dict[str, dict[str, Any]]) -> bool:
    return path is not None and any(path.startswith(mp.rstrip("/") + "/") for mp in mounts)


def _assert_hardened(workload: dict[str, Any], non_root: bool) -> None:
    spec = workload["spec"]["template"]["spec"]
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        seccomp = sc.get("seccompProfile") or spec.get("securityContext", {}).get("seccompProfile")
        assert seccomp == {"type": "RuntimeDefault"}
    if non_root:
        assert spec["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("kdir", SECURED, ids=lambda p: p.name)
def test_credentials_are_files_from_secrets_referenced_never_contained(kdir: Path) -> None:
    objs = render(kdir)
    assert [o for o in objs if o["kind"] == "Secret"] == []  # referenced, never contained
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet"]
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    ship_mounts, consume_mounts = _secret_mounts(ds), _secret_mounts(deploy)
    for mounts in (ship_mounts, consume_mounts):
        assert mounts
        for secret in mounts.values():
            assert secret["secretName"].startswith("logpipe-")
            assert secret["defaultMode"] & 0o007 == 0  # no access for others
    shipper = load_model(ShipperConfig, config_file(kdir, "logpipe-shipper", "shipper.yaml"))
    consumer = load_model(ConsumerConfig, config_file(kdir, "logpipe-consumer", "consumer.yaml"))
    assert shipper.kafka.security_protocol == consumer.kafka.security_protocol == "SASL_SSL"
    assert shipper.kafka.sasl_password is None and consumer.kafka.sasl_password is None
    assert consumer.elasticsearch.password is None and consumer.elasticsearch.api_key is None
    for path in (shipper.kafka.sasl_password_file, shipper.kafka.ssl_cafile):
        assert _under(path, ship_mounts), path
    for path in (consumer.kafka.sasl_password_file, consumer.kafka.ssl_cafile,
                 consumer.elasticsearch.password_file, consumer.elasticsearch.ca_file):
        assert _under(path, consume_mounts), path
    assert all(u.startswith("https://") for u in consumer.elasticsearch.urls())
    # The hardening holds with the credentials mounted.
    _assert_hardened(ds, non_root=False)
    _assert_hardened(deploy, non_root=True)
    assert deploy["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001
