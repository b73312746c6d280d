"""No secret value ever leaves a process: ship, consume, search, alerts and config check run with
sentinel secrets (the right ones and wrong ones), then every byte they wrote is searched.

What is searched: stdout and stderr of every process (which include the JSON logs), the shipper's
and consumer's ``/metrics`` pages, every record on the dead-letter topics (value and headers), and
the alert notifications as Alertmanager holds them. Secrets: the secured Kafka's SASL password,
Elasticsearch's password and API key, Alertmanager's password, a WeCom robot ``key=`` and wrong
passwords of each kind.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from elasticsearch import AsyncElasticsearch

from consumer.alerts.restore import fetch_alerts
from consumer.dependencies.templates import remove_dependency_templates
from consumer.index_templates import remove_templates
from logpipe.core.http_auth import HttpClientAuth
from logpipe.dev.services.alertmanager_secure import SecuredAlertmanager
from logpipe.dev.services.es_proxy import SecuredEs
from logpipe.dev.services.kafka_secure import SecureKafka
from tests.end_to_end import Pipeline

pytestmark = pytest.mark.integration

WRONG = "Wr0ng-Sentinel-7f3a9c"
WECOM_KEY = "WeComKey-Sentinel-51d2e8"


class Leaks:
    """Everything the processes wrote, gathered for one search at the end."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, bytes]] = []

    def add(self, where: str, data: bytes | str) -> None:
        self.parts.append((where, data.encode() if isinstance(data, str) else data))

    def hits(self, sentinels: list[str]) -> list[str]:
        return [f"{s[:6]}... in {where}" for where, data in self.parts for s in sentinels if s.encode() in data]


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def _port_from(stderr: Path, needle: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in stderr.read_text(errors="replace").splitlines():
            if needle in line and line.startswith("{"):
                return int(orjson.loads(line)["port"])
            if needle in line and "http on" in line:
                return int(line.rsplit(":", 1)[1])
        time.sleep(0.2)
    raise AssertionError(f"no {needle!r} in {stderr}: {stderr.read_text()[-2000:]}")


class LeakPipeline(Pipeline):
    def __init__(self, root: Path, sk: SecureKafka, es: SecuredEs, am: SecuredAlertmanager, name: str) -> None:
        super().__init__(root, sk.sasl_ssl, es.url, name)
        self.kafka_sec = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
                          "sasl_username": sk.username, "sasl_password_file": str(sk.password_file),
                          "ssl_cafile": str(sk.ca_file)}
        self.es = es
        rules = {
            "channels": {
                "alertmanager": {"type": "alertmanager", "url": am.url, "username": am.username,
                                 "password_file": str(am.password_file), "ca_file": str(am.ca_file)},
                # Nothing listens there: each failed delivery is logged, and must not show the key.
                "robot": {"type": "wecom", "webhook": f"http://127.0.0.1:9/cgi-bin/webhook/send?key={WECOM_KEY}",
                          "retries": 1, "backoff": "100ms"},
            },
            "rules": [{"name": f"{name}-panic", "severity": "critical", "match": {"keywords": ["panic"]},
                       "condition": {"count": 1, "within": "1m"}, "channels": ["alertmanager", "robot"],
                       "annotations": {"summary": "{{count}} panics"}}],
            "engine": {"tick_interval": "200ms"},
        }
        root.mkdir(parents=True, exist_ok=True)
        self.rules = root / "rules.yaml"
        self.rules.write_text(yaml.safe_dump(rules))

    def shipper_config(self) -> dict[str, Any]:
        cfg = super().shipper_config()
        cfg["kafka"] |= self.kafka_sec
        cfg["tail"] = {**cfg.get("tail", {}), "max_line_bytes": 4096, "long_lines": "dead_letter"}
        return cfg

    def consumer_config(self) -> dict[str, Any]:
        cfg = super().consumer_config()
        cfg["kafka"] |= self.kafka_sec
        cfg["elasticsearch"] |= {"username": self.es.username, "password_file": str(self.es.password_file),
                                 "ca_file": str(self.es.ca_file)}
        cfg["alerts"] = {"rules": str(self.rules)}
        return cfg


def _run(args: list[str], leaks: Leaks, env: dict[str, str] | None = None, timeout: float = 60) -> int:
    done = subprocess.run([sys.executable, "-m", "logpipe.cli.main", *args], capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    leaks.add(f"{args[0]} stdout", done.stdout)
    leaks.add(f"{args[0]} stderr", done.stderr)
    return done.returncode


async def _topic_bytes(bootstrap: str, topics: list[str]) -> bytes:
    """Every record's value and headers on ``topics``, from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                metadata_max_age_ms=500)
    await consumer.start()
    out = bytearray()
    try:
        consumer.subscribe(topics=topics)  # no group: every partition is assigned
        idle = 0
        deadline = time.monotonic() + 20
        while idle < 4 and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=500)
            idle = 0 if got else idle + 1
            for msgs in got.values():
                for m in msgs:
                    out += (m.value or b"") + b"".join(k.encode() + v for k, v in (m.headers or ()))
    finally:
        await consumer.stop()
    return bytes(out)


def _wait_docs(es: SecuredEs, index: str, n: int, p: Pipeline, timeout: float = 90) -> int:
    async def count() -> int:
        client = AsyncElasticsearch(es.url, ca_certs=str(es.ca_file),
                                    basic_auth=(es.username, es.password_file.read_text().strip()))
        try:
            await client.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
            got = await client.count(index=index, allow_no_indices=True, ignore_unavailable=True)
            return int(got["count"])
        finally:
            await client.close()

    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        p.check_alive()
        seen = asyncio.run(count())
        if seen >= n:
            return seen
        time.sleep(0.5)
    return seen


def test_no_secret_appears_in_anything_the_processes_write(
    tmp_path: Path, secure_kafka: SecureKafka, secure_es: SecuredEs, secure_alertmanager: SecuredAlertmanager,
    es_url: str, unique_name: str,
) -> None:
    sk, es, am = secure_kafka, secure_es, secure_alertmanager
    sentinels = [sk.password_file.read_text().strip(), es.password_file.read_text().strip(),
                 es.api_key_file.read_text().strip(), am.password_file.read_text().strip(), WRONG, WECOM_KEY]
    leaks = Leaks()
    wrong_file = tmp_path / "wrong-password"
    wrong_file.write_text(WRONG)

    # 1. The whole pipeline with the right secrets: lines indexed, one dead letter each side, an alert.
    p = LeakPipeline(tmp_path / "run", sk, es, am, unique_name)
    pod = p.sim.add_pod("pay-gw")
    p.sim.write_access(pod, 30)
    p.sim.write_stdout(pod, ["panic: card declined", "x" * 5000])  # an alert, and an over-long line
    try:
        p.start_consumer()
        p.start_shipper()
        assert _wait_docs(es, f"{unique_name}-*", 31, p) >= 31
        alerts = asyncio.run(fetch_alerts(am.url, auth=HttpClientAuth(
            username=am.username, password_file=str(am.password_file), ca_file=str(am.ca_file))))
        assert any(a["labels"].get("alertname") == f"{unique_name}-panic" for a in alerts)
        leaks.add("alert notifications in Alertmanager", orjson.dumps(alerts))
        consume_port = _port_from(p.root / "consume.stderr", "HttpListening")
        leaks.add("consume /metrics", _metrics(consume_port))
        time.sleep(1.5)  # the robot channel's failed attempts get logged
    finally:
        p.stop()
    for verb in ("ship", "consume"):
        leaks.add(f"{verb} stderr (pipeline)", (p.root / f"{verb}.stderr").read_bytes())
    dlq = asyncio.run(_topic_bytes(sk.plaintext, [f"{unique_name}-dlq", f"{unique_name}-ship-dlq"]))
    assert dlq, "the over-long line should be on the shipper's dead-letter topic"
    leaks.add("dead-letter topics", dlq)

    # 2. A shipper with a wrong Kafka password: its error lines and /metrics.
    wrong_ship = p.shipper_config() | {"http": {"host": "127.0.0.1", "port": 0}}
    wrong_ship["kafka"] = wrong_ship["kafka"] | {"sasl_password_file": str(wrong_file)}
    leaks.add("ship (wrong password)", _run_for(tmp_path / "wrong-ship", "ship", wrong_ship, seconds=6))

    # 3. A consumer with a wrong Elasticsearch password (inline, to test the config path too).
    wrong_consume = p.consumer_config()
    wrong_consume["elasticsearch"] = {"url": es.url, "username": es.username, "password": WRONG,
                                      "ca_file": str(es.ca_file)}
    leaks.add("consume (wrong password)", _run_for(tmp_path / "wrong-consume", "consume", wrong_consume, seconds=6))

    # 4. search and trace, right and wrong; 5. alerts list, right and wrong.
    es_flags = ["--es-url", es.url, "--es-ca-file", str(es.ca_file), "--index-prefix", unique_name]
    assert _run(["search", "--since", "all", "--limit", "5", *es_flags], leaks,
                env={"LOGPIPE_ES_API_KEY": es.api_key_file.read_text().strip()}) == 0
    assert _run(["search", "--since", "all", *es_flags, "--es-user", es.username], leaks,
                env={"LOGPIPE_ES_PASSWORD": WRONG}) == 2
    assert _run(["trace", "4bf92f3577b34da6a3ce929d0e0e4736", *es_flags, "--es-user", es.username,
                 "--es-password-file", str(wrong_file)], leaks) == 2
    am_flags = ["--alertmanager-url", am.url, "--alertmanager-ca-file", str(am.ca_file),
                "--alertmanager-user", am.username]
    assert _run(["alerts", "list", *am_flags, "--alertmanager-password-file", str(am.password_file)], leaks) == 0
    assert _run(["alerts", "list", *am_flags], leaks, env={"LOGPIPE_ALERTMANAGER_PASSWORD": WRONG}) == 2
    assert _run(["alerts", "validate", str(p.rules)], leaks) == 0

    # 6. config check of files holding the secrets inline (valid and invalid).
    inline = tmp_path / "inline-consumer.yaml"
    inline.write_text(yaml.safe_dump({"kafka": p.consumer_config()["kafka"] | {
        "sasl_password_file": None, "sasl_password": sentinels[0]},
        "elasticsearch": {"url": es.url, "username": "u", "password": sentinels[1]}}))
    assert _run(["config", "check", str(inline), str(p.rules)], leaks) == 0
    bad = tmp_path / "bad-consumer.yaml"
    bad.write_text(yaml.safe_dump({"kafka": {"sasl_password": WRONG, "sasl_username": "u"},
                                   "elasticsearch": {"url": es.url, "password": WRONG, "api_key": WRONG}}))
    assert _run(["config", "check", str(bad)], leaks) == 1

    asyncio.run(_cleanup(es_url, unique_name))
    probe = Leaks()
    probe.add("self-test", f"x {WRONG} y")
    assert probe.hits(sentinels) != []  # the search itself finds a sentinel where there is one
    found = leaks.hits(sentinels)
    assert found == [], found
    assert len(leaks.parts) >= 20  # the search covered every output listed above


def _run_for(folder: Path, verb: str, cfg: dict[str, Any], seconds: float) -> bytes:
    """Run ``logpipe <verb>`` with ``cfg`` for ``seconds`` (it keeps retrying), then its stderr,
    stdout and /metrics page."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{verb}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    err, out = folder / f"{verb}.stderr", folder / f"{verb}.stdout"
    with open(err, "wb") as e, open(out, "wb") as o:
        proc = subprocess.Popen([sys.executable, "-m", "logpipe.cli.main", verb, "--config", str(path)],
                                stdout=o, stderr=e, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        time.sleep(seconds)
        port = None
        for line in (err.read_text(errors="replace") + out.read_text(errors="replace")).splitlines():
            if "HttpListening" in line and line.startswith("{"):
                port = int(orjson.loads(line)["port"])
            elif line.startswith("http_port="):
                port = int(line.split("=", 1)[1])
        assert port, f"logpipe {verb} did not say its port: {err.read_text()[-2000:]}"
        metrics = _metrics(port).encode()
        assert proc.poll() is None  # still retrying
    finally:
        proc.kill()
        proc.wait(10)
    assert b"kafka: broker" in err.read_bytes() or b"Unreachable" in err.read_bytes() or b"401" in err.read_bytes()
    return err.read_bytes() + out.read_bytes() + metrics


async def _cleanup(es_url: str, prefix: str) -> None:
    es = AsyncElasticsearch(es_url)
    try:
        await es.indices.delete(index=f"{prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_dependency_templates(es, prefix)  # they use the component templates
        await remove_templates(es, prefix)
    finally:
        await es.close()
