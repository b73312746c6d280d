"""`logpipe demo`: the whole pipeline on one machine, end to end, with real services.

pod logs (a generated kubelet-shaped tree) → ``logpipe ship`` → Kafka (or, with ``--sink sls``, the
local SLS server through an SLS consumer group) → ``logpipe consume`` →
Elasticsearch (+ an alert rule evaluated on the stream → Alertmanager) → ``logpipe search``,
``logpipe query``, ``logpipe trace`` and ``logpipe alerts list`` on the results.

Each step runs the real CLI as a subprocess, so what the demo prints is what an operator would type.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from consumer.config import DEFAULT_TOPICS, ConsumerConfig
from consumer.dependencies.stage import links_group_id
from logpipe.dev.demo.checkout import write_checkout
from logpipe.dev.demo.group_start import GroupStart, ensure_topics, start_group_at_end
from logpipe.dev.demo.podsim import PodSimulator
from logpipe.dev.scrape import sample_total
from logpipe.dev.services import open_backend
from shipper.config import ShipperConfig

RULES = """\
channels:
  alertmanager: {type: alertmanager, url: http://127.0.0.1:9093}
rules:
  - name: demo-pay-5xx
    description: payment gateway errors with a refused upstream connection
    severity: critical
    match:
      components: [pay-gw]
      keywords: ["connection refused"]
    condition: {count: 3, within: 1m}
    group_by: [service.name]
    realert: 5m
    labels: {team: pay, demo: "%(run)s"}
    annotations: {summary: "{{count}} refused upstream connections in {{service.name}}"}
    channels: [alertmanager]
"""


@dataclass
class Demo:
    """One run of the demo in its own work folder, with a consumer group of its own.

    The group starts at the end the shared topics had when the run began (``group_start.py``), so
    the run reads only what it writes, however much earlier runs left in the topics.
    """

    work: Path
    say: Callable[[str], None] = print
    sink: str = "kafka"
    """``kafka``, or ``sls``: the shipper's SLS sink and the consumer's SLS source through the local SLS."""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%d%H%M%S"))

    @property
    def group(self) -> str:
        return f"logpipe-demo-{self.run_id}"

    @property
    def node(self) -> str:
        """This run's node name: every document of the run carries it, so counts ignore earlier runs."""
        return f"demo-node-{self.run_id}"

    def logpipe(self, *args: str, check: bool = False, quiet: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "logpipe.cli.main", *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        return self._show(args, res, check=check, quiet=quiet)

    def steps(self, steps: list[tuple[str, tuple[str, ...]]]) -> None:
        """Run independent commands side by side (each is a Python start-up), then show them in order."""
        procs = [
            (title, args, subprocess.Popen([sys.executable, "-m", "logpipe.cli.main", *args],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for title, args in steps
        ]
        for title, args, p in procs:
            out, err = p.communicate(timeout=120)
            self.say(title)
            self._show(args, subprocess.CompletedProcess(p.args, p.returncode, out, err))

    def _show(
        self, args: tuple[str, ...], res: subprocess.CompletedProcess[str], check: bool = False, quiet: bool = False
    ) -> subprocess.CompletedProcess[str]:
        self.say("$ logpipe " + " ".join(_quote(a) for a in args))
        if not quiet:
            out = res.stdout.rstrip()
            if out:
                self.say(out)
        if res.returncode not in (0, 1) or (check and res.returncode != 0):
            self.say(res.stderr.rstrip())
            raise RuntimeError(f"logpipe {args[0]} exited {res.returncode}")
        return res

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}.log", "wb")
        self.say(f"$ logpipe {' '.join(_quote(a) for a in args)} &   # log: {self.work / (name + '.log')}")
        p = subprocess.Popen([sys.executable, "-m", "logpipe.cli.main", *args], stdout=log, stderr=log)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    def run(self) -> int:
        say = self.say
        say("== 1. local services (Kafka 4 KRaft, Elasticsearch 9, Alertmanager, Jaeger v2)")
        _show_service_progress()  # a first run downloads and starts them: say so rather than sit silent
        backend = open_backend()
        kafka = backend.ensure("kafka")
        es = backend.ensure("elasticsearch")
        am = backend.ensure("alertmanager")
        jaeger = backend.ensure("jaeger")  # a first run builds it (~7 min): it reads our span indices
        say(f"   kafka {kafka}   elasticsearch {es}   alertmanager {am}   jaeger {jaeger}")

        pods_root, logs_root = self.work / "pods", self.work / "logs"
        sim = PodSimulator(pods_root, logs_root, seed=int(self.run_id[-6:]))
        pay = sim.add_pod("pay-gw")
        orders = sim.add_pod("orders")
        users = sim.add_pod("users", namespace="accounts")
        rules = self.work / "rules.yaml"
        rules.write_text(RULES % {"run": self.run_id})

        say("\n== 2. the shipper (node agent) and the consumer (indexer + alert rules)")
        consumer_port = _free_port()
        if self.sink == "sls":
            self._ship_and_consume_through_sls(pods_root, logs_root, es, am, rules, consumer_port)
        else:
            self._ship_and_consume_through_kafka(pods_root, logs_root, kafka, es, am, rules, consumer_port)
        return self._write_and_check(sim, pay, orders, users, es, am, jaeger, rules, pods_root, consumer_port)

    def _ship_and_consume_through_kafka(
        self, pods_root: Path, logs_root: Path, kafka: str, es: str, am: str, rules: Path, consumer_port: int
    ) -> None:
        for start in asyncio.run(_start_groups(kafka, self.group)):
            self.say("   " + start.describe())
        self.spawn(
            "shipper",
            "ship",
            "--pods-root",
            str(pods_root),
            "--logs-root",
            str(logs_root),
            "--registry",
            str(self.work / "registry.json"),
            "--kafka-bootstrap",
            kafka,
            "--node-name",
            self.node,
            "--http-port",
            "0",
        )
        # The demo's trace summaries (what `trace find` searches) come 2 s after a trace's last span,
        # not the default 10 s: the demo shows them right away.
        config = self.work / "consumer.yaml"
        config.write_text(orjson.dumps({"trace_dependencies": {"horizon": 2.0, "flush_interval": 1.0}}).decode())
        self.spawn(
            "consumer",
            "consume",
            "--config",
            str(config),
            "--kafka-bootstrap",
            kafka,
            "--es-url",
            es,
            "--group-id",
            self.group,
            "--http-port",
            str(consumer_port),
            "--rules",
            str(rules),
            "--alertmanager-url",
            am,
        )

    def _ship_and_consume_through_sls(
        self, pods_root: Path, logs_root: Path, es: str, am: str, rules: Path, consumer_port: int
    ) -> None:
        # Port 80 of a loopback address of its own: the SDK addresses an SLS endpoint by host name or bare IP.
        host = _free_loopback_on_port_80()
        args = ["--host", host, "--port", "80", "--shards", "2"]
        self.say(f"$ python -m logpipe.dev.services.sls {' '.join(args)} &")
        log = open(self.work / "sls.log", "wb")
        self.procs.append(
            subprocess.Popen([sys.executable, "-m", "logpipe.dev.services.sls", *args], stdout=log, stderr=log)
        )
        _wait_for_port(host, 80, timeout=15)
        self.say(f"   local SLS on {host}:80 (project logpipe-demo, logstores logpipe-<type>, 2 shards each)")
        config = self.work / "shipper-sls.yaml"
        config.write_text(
            orjson.dumps(
                {"node_name": self.node, "pods_root": str(pods_root), "logs_root": str(logs_root),
                 "registry": {"path": str(self.work / "registry.json")}, "http": {"port": 0},
                 "sink": {"type": "sls", "endpoint": f"http://{host}:80", "project": "logpipe-demo"}}
            ).decode()  # JSON is YAML
        )
        self.spawn("shipper", "ship", "--config", str(config))
        self.spawn(
            "consumer", "consume", "--source", "sls", "--sls-endpoint", host, "--sls-project", "logpipe-demo",
            "--sls-consumer-group", self.group, "--sls-consumer-name", "demo-consumer", "--es-url", es,
            "--http-port", str(consumer_port), "--rules", str(rules), "--alertmanager-url", am,
        )

    def _write_and_check(
        self, sim: PodSimulator, pay: Any, orders: Any, users: Any, es: str, am: str, jaeger: str, rules: Path,
        pods_root: Path, consumer_port: int,
    ) -> int:
        """Steps 3-8: the pods write, every line is checked in Elasticsearch, the tools run; 0 when all is well."""
        say = self.say
        say("\n== 3. pods write logs")
        for pod in (pay, orders, users):
            sim.write_access(pod, 200)
        traces = write_checkout(sim, pay, orders)  # real tracers: the OpenTelemetry SDK and py_zipkin
        trace_id = traces.paid.trace_id
        sim.write_stdout(orders, ["INFO started orders service", '{"level":"warn","msg":"slow query","ms":812}'])
        sim.write_stdout(
            pay, [f"ERROR upstream bank-api: connection refused (attempt {i})" for i in range(1, 6)], stream="stderr"
        )
        expected = sum(sum(p.written.values()) for p in (pay, orders, users))
        say(f"   3 pods, {expected} lines (access, CRI stdout, spans) under {self.work}")
        say(f"   traced requests: {trace_id} (paid: pay-gw -> orders), {traces.failed.trace_id} (failed: bank-api)")

        say("\n== 4. waiting until every line is searchable in Elasticsearch")
        got = _wait_for_count(es, self.node, expected, timeout=120)
        say(f"   {got} documents from node {self.node} for {expected} lines written")
        source = "SLS" if self.sink == "sls" else "Kafka"
        say(f"   the consumer read {_records_consumed(consumer_port)} records from {source}")
        if got != expected:
            say("   lines lost or duplicated: see shipper.log and consumer.log in " + str(self.work))
            return 1

        access_logs = str(pods_root / "*/volumes/kubernetes.io~empty-dir/logs/access.log")
        self.steps([
            ("\n== 5. search one Component's logs",
             ("search", "connection refused", "--component", "pay-gw", "--since", "15m", "--limit", "3",
              "--es-url", es)),
            ("\n== 6. analyse the access logs on disk",
             ("query", access_logs, "--where", "status>=200", "--by", "path", "--agg", "count,p99(request_time)",
              "--top", "4", "--format", "table")),
            ("\n== 7. one trace across Components", ("trace", trace_id, "--es-url", es)),
        ])
        url = f"{jaeger}/api/traces/{trace_id}"
        say(f"   the same trace in Jaeger's API: {url}  ({_jaeger_spans(url, 3)} spans)")
        stats = ("\n== 9. calls, errors and latency of one Component, from its spans",
                 ("trace", "stats", "-c", "pay-gw", "--since", "15m", "--es-url", es))
        if self.sink == "sls":
            say("\n== 8. the failing requests: `logpipe trace find` reads the trace summaries of the dependency"
                " stage, which joins spans through Kafka — not in the SLS demo")
            self.steps([stats])
        else:
            # The summary is written once the trace is quiet (the stage's horizon): wait for it.
            if _wait_for_summary(es, traces.failed.trace_id, timeout=60) is None:
                say("   the failing trace has no summary after 60 s: see consumer.log")
                return 1
            self.steps([
                ("\n== 8. the failing requests, as whole traces (root, duration, errors, services)",
                 ("trace", "find", "--errors", "-c", "pay-gw", "--since", "15m", "--limit", "5", "--es-url", es)),
                stats,
            ])
        say("\n== 10. the keyword alert, as Alertmanager has it")
        fired = _wait_for_alert(am, "demo-pay-5xx", self.run_id, timeout=60)
        self.logpipe("alerts", "list", "--rules", str(rules), "--alertmanager-url", am)
        if not fired:
            say("   the alert did not reach Alertmanager: see consumer.log")
            return 1
        say("\nThe pipeline works end to end. Services keep running; `logpipe dev down` stops them.")
        return 0


async def _start_groups(kafka: str, group: str) -> list[GroupStart]:
    """The consumer's group and its dependency stage's (the trace links topic) both start at the end."""
    await ensure_topics(kafka, DEFAULT_TOPICS, ShipperConfig().kafka.partitions)
    cfg = ConsumerConfig.model_validate({"kafka": {"group_id": group}})
    links = cfg.trace_dependencies
    await ensure_topics(kafka, [links.topic], links.partitions)
    return [
        await start_group_at_end(kafka, group, DEFAULT_TOPICS),
        await start_group_at_end(kafka, links_group_id(cfg), [links.topic]),
    ]


def _show_service_progress() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("   %(message)s"))
    manager_log = logging.getLogger("logpipe.dev.services.manager")
    manager_log.addHandler(handler)
    manager_log.setLevel(logging.INFO)


def _jaeger_spans(url: str, expected: int, timeout: float = 15.0) -> int:
    """How many spans Jaeger's ``/api/traces/{id}`` returns (waiting a little for a refresh)."""
    deadline, count = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        try:
            data = _http_json(url).get("data") or []
            count = len(data[0]["spans"]) if data else 0
        except (OSError, ValueError, KeyError, IndexError):
            count = 0
        if count >= expected:
            break
        time.sleep(0.5)
    return count


def _quote(a: str) -> str:
    return a if a and all(c.isalnum() or c in "-_./:=,@" for c in a) else "'" + a.replace("'", "'\\''") + "'"


def _http_json(url: str, body: Mapping[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url, data=orjson.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return orjson.loads(resp.read())


def _free_loopback_on_port_80() -> str:
    """An address in 127.0.0.0/8 whose port 80 is free (root may bind it)."""
    for _ in range(50):
        host = f"127.{os.getpid() % 200 + 20}.{int(time.time() * 1000) % 250 + 1}.{os.urandom(1)[0] % 250 + 1}"
        with socket.socket() as s:
            try:
                s.bind((host, 80))
            except OSError:
                continue
            return host
    raise RuntimeError("no free port 80 on a loopback address: the SLS demo needs root")


def _wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the local SLS did not listen on {host}:{port}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records_consumed(port: int) -> int | str:
    """The consumer's own count of the Kafka records it fetched (its /metrics), or "?" if it does not answer."""
    name = "logpipe_consumer_records_consumed_total"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return "?"
    return int(sample_total(text, name + "{"))


def _wait_for_count(es: str, node: str, expected: int, timeout: float) -> int:
    """Documents of this run (by node name) once ``expected`` arrived and a second passed with no more."""
    deadline = time.monotonic() + timeout
    count = 0
    query = {"query": {"term": {"kubernetes.node.name": node}}}
    while time.monotonic() < deadline:
        try:
            res = _http_json(f"{es}/logpipe-*/_count?ignore_unavailable=true", query)
            count = int(res["count"]) if isinstance(res, dict) else 0
        except OSError:
            count = 0
        if count >= expected:
            time.sleep(1.5)  # a duplicate would still be on its way: give it the time to show
            res = _http_json(f"{es}/logpipe-*/_count?ignore_unavailable=true", query)
            return int(res["count"])
        time.sleep(0.25)
    return count


def _wait_for_summary(es: str, trace_id: str, timeout: float) -> float | None:
    """Seconds until the trace's summary was searchable in ``logpipe-traces-*``, None if it never was."""
    began = time.monotonic()
    query = {"query": {"term": {"trace_id": trace_id}}}
    while time.monotonic() - began < timeout:
        try:
            res = _http_json(f"{es}/logpipe-traces-*/_count?ignore_unavailable=true&allow_no_indices=true", query)
            if isinstance(res, dict) and int(res.get("count", 0)) > 0:
                return time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.25)
    return None


def _wait_for_alert(am: str, name: str, run_id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            alerts = _http_json(f"{am}/api/v2/alerts?filter=alertname%3D%22{name}%22")
        except OSError:
            alerts = []
        if isinstance(alerts, list) and any(a.get("labels", {}).get("demo") == run_id for a in alerts):
            return True
        time.sleep(0.5)
    return False


def main(work_dir: str | None = None, keep: bool = False, sink: str = "kafka") -> int:
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="logpipe-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    demo = Demo(work, sink=sink)
    try:
        return demo.run()
    finally:
        demo.stop_all()
        if not keep and work_dir is None and os.environ.get("LOGPIPE_DEMO_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
