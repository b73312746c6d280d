"""The whole pipeline as processes: pod log files -> ``logpipe ship`` -> Kafka -> ``logpipe consume`` -> ES.

Shared by ``tests/test_end_to_end.py`` and ``bench/latency_bench.py``. Names (topics, group, index
prefix) derive from one ``name`` so runs never see each other's data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from logpipe.dev.demo.podsim import PodSimulator


class Pipeline:
    """A pod tree, a shipper and a consumer (both ``logpipe`` subprocesses), and where they write."""

    def __init__(self, root: Path, kafka: str, es_url: str, name: str, fast_poll: bool = True) -> None:
        self.root = root
        self.fast_poll = fast_poll  # tests poll files every 50 ms; False keeps the shipper's default
        self.kafka = kafka
        self.es_url = es_url
        self.name = name
        self.sim = PodSimulator(root / "pods", root / "logs", seed=3)
        self.topics = [f"{name}-{t}" for t in ("access", "app", "stdout", "trace")]
        self.procs: list[subprocess.Popen[bytes]] = []

    def shipper_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "node_name": "node-e2e",
            "pods_root": str(self.sim.pods_root),
            "logs_root": str(self.sim.logs_root),
            "registry": {"path": str(self.root / "registry.json"), "flush_interval": "200ms"},
            "kafka": {"bootstrap": self.kafka, "dead_letter_topic": f"{self.name}-ship-dlq", "linger": "5ms"},
            "rules": {"topic_prefix": f"{self.name}-"},
            "discovery": {"rescan_interval": "200ms"},
            "pod_metadata": {"kubernetes_api": "off"},
            "tail": {"poll_interval": "50ms"},
            "http": {"host": "127.0.0.1", "port": 0},
        }
        if not self.fast_poll:
            del cfg["tail"], cfg["discovery"], cfg["kafka"]["linger"]
        return cfg

    def consumer_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "kafka": {
                "bootstrap": self.kafka,
                "group_id": f"{self.name}-group",
                "topics": self.topics,
                "dead_letter_topic": f"{self.name}-dlq",
                "commit_interval": "200ms",
            },
            "elasticsearch": {"url": self.es_url},
            "index": {"prefix": self.name, "retention_days": 36500},
            "bulk": {"flush_interval": "100ms"},
            "http": {"host": "127.0.0.1", "port": 0},
        }
        if not self.fast_poll:
            del cfg["bulk"], cfg["kafka"]["commit_interval"]
        return cfg

    def _spawn(self, verb: str, cfg: dict[str, Any]) -> subprocess.Popen[bytes]:
        path = self.root / f"{verb}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        err = (self.root / f"{verb}.stderr").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "logpipe.cli.main", verb, "--config", str(path)],
            stdout=subprocess.DEVNULL, stderr=err, cwd=self.root, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.procs.append(proc)
        return proc

    def start_shipper(self) -> subprocess.Popen[bytes]:
        return self._spawn("ship", self.shipper_config())

    def start_consumer(self) -> subprocess.Popen[bytes]:
        return self._spawn("consume", self.consumer_config())

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                verb = p.args[4] if isinstance(p.args, list) else "?"
                log = (self.root / f"{verb}.stderr").read_text()[-3000:]
                raise AssertionError(f"logpipe {verb} exited with {p.returncode}:\n{log}")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
