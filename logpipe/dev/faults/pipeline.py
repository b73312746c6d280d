"""A real pipeline of child processes for fault tests and the soak: files → ``logpipe ship`` → Kafka →
``logpipe consume`` → Elasticsearch, and the checks at its end.

Every line written is unique (``<run> <pod> <file> <n>``), so the documents in Elasticsearch tell
exactly which lines were lost and which were indexed twice (a line indexed under two ids: the
deterministic ids make a plain re-delivery overwrite its own document, which is counted separately
from ``_version``). The processes are the real CLI (``python -m logpipe.cli.main``), started with the
interpreter and ``PYTHONPATH`` of the caller.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from logpipe.dev.scrape import sample_total

LOG_TYPES = ("access", "app", "trace")
# loopback only: never through a proxy from the environment
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class LogTree:
    """A kubelet-shaped tree: ``<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/logs/<file>``.

    Only counters are kept (line ``n`` of a stream is ``<run> <pod> <file> <n>``), so a soak of
    millions of lines costs a few bytes per line to check."""

    root: Path
    run: str
    uids: dict[str, str] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)  # "<pod> <file>" -> lines written
    generations: Counter[str] = field(default_factory=Counter)  # "<pod> <file>" -> rotations

    @property
    def pods_root(self) -> Path:
        return self.root / "pods"

    @property
    def logs_root(self) -> Path:
        return self.root / "logs"

    @property
    def total(self) -> int:
        return sum(self.counters.values())

    def add_pod(self, name: str) -> None:
        uid = f"{len(self.uids):08d}-aaaa-4bbb-8ccc-{abs(hash((self.run, name))) % 10**12:012d}"
        self.uids[name] = uid
        self.volume(name).mkdir(parents=True, exist_ok=True)
        self.logs_root.mkdir(parents=True, exist_ok=True)

    def volume(self, pod: str) -> Path:
        return self.pods_root / self.uids[pod] / "volumes" / "kubernetes.io~empty-dir" / "logs"

    def path(self, pod: str, name: str) -> Path:
        return self.volume(pod) / name

    def write(self, pod: str, name: str, n: int) -> None:
        """Append ``n`` unique lines (app.log: plain text; access.log: JSON with the line as its path)."""
        key = f"{pod} {name}"
        start = self.counters[key]
        self.counters[key] += n
        lines = [f"{self.run} {key} {i}" for i in range(start, start + n)]
        if name.startswith("access"):
            body = b"".join(
                orjson.dumps({"time": "2026-11-27T10:00:00.000+08:00", "method": "GET",
                              "path": "/" + x.replace(" ", "/"), "status": 200, "request_time": 0.01}) + b"\n"
                for x in lines)
        else:
            body = "".join(f"{x}\n" for x in lines).encode()
        with open(self.path(pod, name), "ab") as f:
            f.write(body)

    def rotate(self, pod: str, name: str, copytruncate: bool = False) -> Path | None:
        """Rotate to ``<name>.<generation>`` by rename (or logrotate's copytruncate: only call that once
        the file was read to its end, as it removes bytes nobody read under any agent); the rotated path."""
        path = self.path(pod, name)
        if not path.exists():
            return None
        key = f"{pod} {name}"
        self.generations[key] += 1
        dst = path.with_name(f"{name}.{self.generations[key]}")
        if copytruncate:
            shutil.copyfile(path, dst)
            os.truncate(path, 0)
        else:
            os.replace(path, dst)
        return dst


def message_of(doc: dict[str, Any]) -> str | None:
    """The written line a document came from (app lines: the message; access lines: the URL path)."""
    url = doc.get("url") or {}
    path = url.get("path") if isinstance(url, dict) else None
    if isinstance(path, str) and path.startswith("/"):
        return path[1:].replace("/", " ")
    msg = doc.get("message")
    return msg if isinstance(msg, str) else None


class Child:
    """A ``logpipe ship|consume`` child process: its config file, a log next to it, its HTTP port."""

    def __init__(self, root: Path, kind: str, name: str, cfg: dict[str, Any]) -> None:
        self.kind = kind
        self.config = root / f"{kind}-{name}.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.cfg = cfg
        self.log = root / f"{kind}-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self.peak_rss_mb = 0.0

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until the HTTP endpoint is up (its port is printed at start)."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logpipe.cli.main", self.kind, "--config", str(self.config)],
                stdout=err, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.starts += 1
        pattern = re.compile(rb"http_port=(\d+)|http on [\d.]+:(\d+)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log, "rb") as f:
                f.seek(offset)
                m = pattern.search(f.read())
            if m:
                self.port = int(m.group(1) or m.group(2))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}: {self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not open its HTTP port within {timeout}s: {self.tail()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def http(self, path: str) -> tuple[int, str]:
        """``(status, body)``; ``(0, error)`` when nothing answers."""
        try:
            with _OPENER.open(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def metric(self, name: str) -> float:
        return sample_total(self.http("/metrics")[1], name)

    def rss_mb(self) -> float:
        """Resident memory now (and the running peak in ``peak_rss_mb``)."""
        if not self.running or self.proc is None:
            return 0.0
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                    self.peak_rss_mb = max(self.peak_rss_mb, rss)
                    return rss
        except OSError:
            pass
        return 0.0

    def open_fds(self) -> int:
        if not self.running or self.proc is None:
            return 0
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return 0

    def kill9(self) -> None:
        if self.running and self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def events(self) -> Counter[str]:
        """Counts of the JSON events this process logged, by ``event`` name (over every start)."""
        out: Counter[str] = Counter()
        try:
            text = self.log.read_bytes()
        except OSError:
            return out
        for raw in text.splitlines():
            if raw.startswith(b"{"):
                try:
                    ev = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(ev, dict):
                    out[str(ev.get("event") or ev.get("msg") or "?")] += 1
        return out


def shipper_config(tree: LogTree, bootstrap: str, prefix: str, registry: Path, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "node_name": "node-fault",
        "pods_root": str(tree.pods_root),
        "logs_root": str(tree.logs_root),
        "registry": {"path": str(registry), "flush_interval": "200ms"},
        "kafka": {"bootstrap": bootstrap, "request_timeout": "5s", "partitions": 2},
        "rules": {"topic_prefix": prefix},
        "discovery": {"rescan_interval": "1s"},
        "pod_metadata": {"kubernetes_api": "off"},
        "tail": {"poll_interval": "100ms", "partial_line_timeout": "1s"},
        "pipeline": {"retry_initial": "100ms", "retry_max": "1s"},
        "http": {"host": "127.0.0.1", "port": 0},
        "shutdown_grace": "10s",
    }
    return _merge(cfg, over)


def consumer_config(bootstrap: str, es_url: str, prefix: str, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "kafka": {
            "bootstrap": bootstrap, "group_id": f"{prefix}group", "topics": [f"{prefix}{t}" for t in LOG_TYPES],
            "dead_letter_topic": f"{prefix}deadletter", "commit_interval": "200ms", "session_timeout": "10s",
            "request_timeout": "8s", "probe_timeout": "2s",
            "instance_id": "",
        },
        "elasticsearch": {"url": es_url},
        "index": {"prefix": prefix.rstrip("-"), "retention_days": 36500},
        "bulk": {"flush_interval": "100ms", "retry_max": "1s", "request_timeout": "10s"},
        "http": {"host": "127.0.0.1", "port": 0},
        "shutdown_grace": "5s",
        "trace_dependencies": {"topic": f"{prefix}links", "partitions": 1},
    }
    return _merge(cfg, over)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = _merge(dict(base[k]), v)
        else:
            base[k] = v
    return base


def registry_by_inode(registry: Path) -> dict[int, int]:
    """``{inode: offset}`` of the shipper's registry: whether a file was read (and acknowledged) to its end."""
    try:
        doc = orjson.loads(registry.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {int(f["ino"]): int(f["offset"]) for f in doc.get("files", []) if "ino" in f}


def registry_offsets(registry: Path) -> dict[str, int]:
    """``{path: offset}`` of the shipper's registry (empty when not written yet)."""
    try:
        doc = orjson.loads(registry.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {f["path"]: int(f["offset"]) for f in doc.get("files", [])}


@dataclass
class Outcome:
    """What Elasticsearch holds of the written lines."""

    written: int
    documents: int
    lost: int
    lost_sample: list[str]
    indexed_twice: int  # lines with more than one document (different ids)
    rewritten: int  # documents written more than once under their own id (re-deliveries, harmless)
    unexpected: int  # documents that are none of the written lines

    @property
    def exactly_once(self) -> bool:
        return self.lost == 0 and self.indexed_twice == 0 and self.unexpected == 0

    def describe(self) -> str:
        return (f"{self.written} lines written, {self.documents} documents: {self.lost} lost, "
                f"{self.indexed_twice} indexed twice, {self.unexpected} unexpected, "
                f"{self.rewritten} re-deliveries overwrote their own document")


def outcome(es_url: str, prefix: str, tree: LogTree) -> Outcome:
    """Scroll every document under ``<prefix>*`` and compare with the lines written (by content)."""
    index = prefix.rstrip("-") + "-*"
    _es(es_url, f"/{index}/_refresh?allow_no_indices=true&ignore_unavailable=true", None, method="POST")
    seen = {key: bytearray(n) for key, n in tree.counters.items()}  # times each line was indexed (<= 255)
    rewritten = unexpected = docs = 0
    resp = _es(es_url, f"/{index}/_search?scroll=2m&allow_no_indices=true&ignore_unavailable=true",
               {"size": 10000, "sort": ["_doc"], "version": True, "_source": ["message", "url.path"]})
    while resp.get("hits", {}).get("hits"):
        for hit in resp["hits"]["hits"]:
            docs += 1
            rewritten += hit.get("_version", 1) > 1
            parts = (message_of(hit.get("_source", {})) or "").split(" ")
            marks = seen.get(" ".join(parts[1:3])) if len(parts) == 4 and parts[0] == tree.run else None
            if marks is not None and parts[3].isdigit() and int(parts[3]) < len(marks):
                i = int(parts[3])
                marks[i] = min(255, marks[i] + 1)
            else:
                unexpected += 1
        resp = _es(es_url, "/_search/scroll", {"scroll": "2m", "scroll_id": resp["_scroll_id"]})
    if "_scroll_id" in resp:
        _es(es_url, "/_search/scroll", {"scroll_id": resp["_scroll_id"]}, method="DELETE")
    lost = twice = 0
    sample: list[str] = []
    for key, marks in seen.items():
        zeros = marks.count(0)
        lost += zeros
        if zeros and len(sample) < 5:
            sample.append(f"{tree.run} {key} {marks.index(0)}")
        twice += sum(c - 1 for c in marks if c > 1)
    return Outcome(tree.total, docs, lost, sample, twice, rewritten, unexpected)


def count(es_url: str, prefix: str) -> int:
    index = prefix.rstrip("-") + "-*"
    _es(es_url, f"/{index}/_refresh?allow_no_indices=true&ignore_unavailable=true", None, method="POST")
    return int(_es(es_url, f"/{index}/_count?allow_no_indices=true&ignore_unavailable=true", None)["count"])


async def remove_from_elasticsearch(es_url: str, prefix: str) -> None:
    """Delete the run's indices and the templates its consumer installed."""
    from elasticsearch import AsyncElasticsearch

    from consumer.dependencies.templates import remove_dependency_templates
    from consumer.index_templates import remove_templates

    index_prefix = prefix.rstrip("-")
    es = AsyncElasticsearch(es_url, request_timeout=60)
    try:
        await es.indices.delete(index=f"{index_prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_dependency_templates(es, index_prefix)  # first: they use the settings component
        await remove_templates(es, index_prefix)
    finally:
        await es.close()


def _es(es_url: str, path: str, body: Any, method: str | None = None) -> Any:
    data = None if body is None else orjson.dumps(body)
    req = urllib.request.Request(es_url.rstrip("/") + path, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    with _OPENER.open(req, timeout=60) as r:
        return orjson.loads(r.read() or b"{}")
