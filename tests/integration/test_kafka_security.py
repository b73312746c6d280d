"""``logpipe ship`` and ``logpipe consume`` against a real Kafka that demands SASL over TLS or mutual TLS.

The broker is the secured dev broker (``secure_kafka`` fixture: a CA and broker certificate made at
provisioning, SCRAM users created by ``kafka-storage format --add-scram``). Right credentials ship
and index end to end; each wrong setting fails at start-up within seconds with one line naming the
broker, the mechanism and the fix, while ``/readyz`` answers 503 and the process keeps retrying.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import AsyncElasticsearch

from consumer.dependencies.templates import remove_dependency_templates
from consumer.index_templates import remove_templates
from logpipe.dev.services.kafka_secure import SecureKafka
from tests.end_to_end import Pipeline
from tests.shipper.live import Shipper, Tree, collect

pytestmark = pytest.mark.integration


def sasl(sk: SecureKafka, mechanism: str = "SCRAM-SHA-512", **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap": sk.sasl_ssl,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_username": sk.username,
        "sasl_password_file": str(sk.password_file),
        "ssl_cafile": str(sk.ca_file),
    }
    cfg.update(over)
    return {k: v for k, v in cfg.items() if v is not None}


def mtls(sk: SecureKafka) -> dict[str, Any]:
    return {
        "bootstrap": sk.mtls,
        "security_protocol": "SSL",
        "ssl_cafile": str(sk.ca_file),
        "ssl_certfile": str(sk.client_cert.cert),
        "ssl_keyfile": str(sk.client_cert.key),
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "mTLS"])
async def test_shipper_delivers_over_sasl_ssl_and_mutual_tls(
    tmp_path: Path, secure_kafka: SecureKafka, unique_name: str, mechanism: str
) -> None:
    tree = Tree(tmp_path, unique_name)
    tree.add_pod("pay-gw-7d9c-x1")
    written = tree.write_lines("pay-gw-7d9c-x1", "access.log", 40)
    kafka = mtls(secure_kafka) if mechanism == "mTLS" else sasl(secure_kafka, mechanism)
    shipper = Shipper(tree, secure_kafka.sasl_ssl, f"{unique_name}-", kafka=kafka)
    try:
        shipper.start()
        shipper.wait_ready(30)
        # Read back over the broker's loopback plaintext listener: what arrived went through TLS.
        got = await collect(secure_kafka.plaintext, f"{unique_name}-", set(written), timeout=60, types=("access",))
    finally:
        shipper.stop()
    assert got.lost(written) == []
    assert "Traceback" not in shipper.stderr.read_text()


class SecurePipeline(Pipeline):
    """The end-to-end pipeline with both processes talking SASL_SSL to the secured broker."""

    def __init__(self, root: Path, sk: SecureKafka, es_url: str, name: str) -> None:
        super().__init__(root, sk.sasl_ssl, es_url, name)
        self.security = sasl(sk)

    def shipper_config(self) -> dict[str, Any]:
        cfg = super().shipper_config()
        cfg["kafka"] |= self.security
        return cfg

    def consumer_config(self) -> dict[str, Any]:
        cfg = super().consumer_config()
        cfg["kafka"] |= self.security
        return cfg


@pytest.fixture
async def secure_pipeline(
    tmp_path: Path, secure_kafka: SecureKafka, es_url: str, unique_name: str
) -> AsyncIterator[SecurePipeline]:
    p = SecurePipeline(tmp_path, secure_kafka, es_url, unique_name)
    try:
        yield p
    finally:
        await asyncio.to_thread(p.stop)
        es = AsyncElasticsearch(es_url)
        try:
            await es.indices.delete(index=f"{unique_name}-*", allow_no_indices=True, ignore_unavailable=True)
            await remove_dependency_templates(es, unique_name)  # they use the component templates
            await remove_templates(es, unique_name)
        finally:
            await es.close()


async def test_pod_lines_reach_elasticsearch_through_sasl_ssl(secure_pipeline: SecurePipeline, es_url: str) -> None:
    p = secure_pipeline
    pod = p.sim.add_pod("order-svc")
    p.sim.write_access(pod, 120)
    p.start_consumer()
    p.start_shipper()
    es = AsyncElasticsearch(es_url)
    try:
        deadline = time.monotonic() + 90
        count = 0
        while time.monotonic() < deadline and count < 120:
            p.check_alive()
            await es.indices.refresh(index=f"{p.name}-access-*", allow_no_indices=True, ignore_unavailable=True)
            got = await es.count(index=f"{p.name}-access-*", allow_no_indices=True, ignore_unavailable=True)
            count = int(got["count"])
            await asyncio.sleep(0.5)
    finally:
        await es.close()
    assert count == 120
    for verb in ("ship", "consume"):
        assert "Traceback" not in (p.root / f"{verb}.stderr").read_text()


# --- start-up failures: one line, within seconds, /readyz 503 -------------------------------------


def _wrong_cases(sk: SecureKafka, tmp: Path) -> dict[str, tuple[dict[str, Any], str]]:
    from logpipe.dev.services.tls import ensure_ca

    wrong_pw = tmp / "wrong-password"
    wrong_pw.write_text("not-the-password\n")
    other_ca, _ = ensure_ca(tmp / "other-ca", "some other CA")
    port = sk.sasl_ssl.rsplit(":", 1)[1]
    return {
        "wrong-password": (sasl(sk, sasl_password_file=str(wrong_pw)), "authentication failed for user 'logpipe'"),
        "untrusted-ca": (sasl(sk, ssl_cafile=str(other_ca)), "TLS certificate is not trusted"),
        "wrong-host-name": (sasl(sk, bootstrap=f"127.0.0.1:{port}"), "is not for host '127.0.0.1'"),
        "plaintext-on-tls-port": ({"bootstrap": sk.sasl_ssl}, "this port probably expects TLS"),
        "no-client-certificate": (mtls(sk) | {"ssl_certfile": None, "ssl_keyfile": None},
                                  "requires a client certificate"),
    }


CASES = ["wrong-password", "untrusted-ca", "wrong-host-name", "plaintext-on-tls-port", "no-client-certificate"]


def _http(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


@pytest.mark.parametrize("case", CASES)
def test_shipper_names_a_wrong_security_setting_at_start(
    tmp_path: Path, secure_kafka: SecureKafka, unique_name: str, case: str
) -> None:
    kafka, expected = _wrong_cases(secure_kafka, tmp_path)[case]
    kafka = {k: v for k, v in kafka.items() if v is not None}
    tree = Tree(tmp_path, unique_name)
    shipper = Shipper(tree, secure_kafka.sasl_ssl, f"{unique_name}-", kafka=kafka)
    try:
        t0 = time.monotonic()
        shipper.start()
        line = _wait_for_line(shipper.stderr, "kafka: broker", timeout=15)
        elapsed = time.monotonic() - t0
        assert shipper.http("/readyz")[0] == 503
        assert shipper.proc is not None and shipper.proc.poll() is None  # still retrying, not crashed
    finally:
        shipper.stop()
    assert elapsed < 15
    assert expected in line
    assert "fix:" in line
    assert any(b.rsplit(":", 1)[1] in line for b in (secure_kafka.sasl_ssl, secure_kafka.mtls))  # names the broker
    assert "Traceback" not in shipper.stderr.read_text()


def _wait_for_line(path: Path, needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        for ln in text.splitlines():
            if needle in ln:
                return ln
        time.sleep(0.1)
    raise AssertionError(f"no line with {needle!r} within {timeout}s:\n{path.read_text()[-3000:]}")


@pytest.fixture
def consumer_proc(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait(10)


@pytest.mark.parametrize("case", ["wrong-password", "untrusted-ca", "plaintext-on-tls-port"])
def test_consumer_names_a_wrong_security_setting_at_start(
    tmp_path: Path, secure_kafka: SecureKafka, es_url: str, unique_name: str, case: str,
    consumer_proc: list[subprocess.Popen[bytes]],
) -> None:
    kafka, expected = _wrong_cases(secure_kafka, tmp_path)[case]
    cfg = {
        "kafka": kafka | {"group_id": unique_name, "topics": [f"{unique_name}-access"],
                          "dead_letter_topic": f"{unique_name}-dlq"},
        "elasticsearch": {"url": es_url},
        "index": {"prefix": unique_name, "install_templates": False},
        "http": {"host": "127.0.0.1", "port": 0},
    }
    path = tmp_path / "consume.yaml"
    path.write_text(yaml.safe_dump(cfg))
    stderr = tmp_path / "consume.stderr"
    t0 = time.monotonic()
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "logpipe.cli.main", "consume", "--config", str(path)],
                                stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    consumer_proc.append(proc)
    line = _wait_for_line(stderr, "kafka: broker", timeout=20)
    elapsed = time.monotonic() - t0
    port_line = _wait_for_line(stderr, "HttpListening", timeout=5)
    port = int(yaml.safe_load(port_line)["port"])
    assert _http(port, "/readyz") == 503
    assert proc.poll() is None
    assert elapsed < 20  # includes the interpreter's start-up
    assert expected in line
    assert "Traceback" not in stderr.read_text()
