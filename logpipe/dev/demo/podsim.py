"""A kubelet-shaped directory tree with pods that write logs, for the demo, tests and benchmarks.

Layout, as on a node::

    <pods_root>/<pod-uid>/volumes/kubernetes.io~empty-dir/logs/access.log   JSON access log
    <pods_root>/<pod-uid>/volumes/kubernetes.io~empty-dir/logs/trace.log    APM spans
    <logs_root>/<namespace>_<pod>_<pod-uid>/<container>/0.log                CRI stdout
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

PATHS = ("/api/pay", "/api/pay/refund", "/api/orders", "/api/orders/list", "/api/users/me", "/healthz")
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")


@dataclass
class SimPod:
    """One simulated pod and the files it writes."""

    namespace: str
    name: str
    uid: str
    container: str
    component: str
    emptydir: Path
    stdout_dir: Path
    written: dict[str, int] = field(default_factory=dict)  # file name -> lines written

    @property
    def access_log(self) -> Path:
        return self.emptydir / "access.log"

    @property
    def trace_log(self) -> Path:
        return self.emptydir / "trace.log"

    @property
    def stdout_log(self) -> Path:
        return self.stdout_dir / "0.log"


class PodSimulator:
    """Creates pods in a kubelet-shaped tree and appends realistic lines to their logs."""

    def __init__(self, pods_root: str | Path, logs_root: str | Path, seed: int = 1) -> None:
        self.pods_root = Path(pods_root)
        self.logs_root = Path(logs_root)
        self.rng = random.Random(seed)
        self.pods: list[SimPod] = []

    def add_pod(self, component: str, namespace: str = "shop", *, container: str | None = None) -> SimPod:
        """A Deployment-style pod (``<component>-<rs-hash>-<5 chars>``) with its directories."""
        rs = "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(9))
        suffix = "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        name = f"{component}-{rs}-{suffix}"
        uid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        container = container or component
        emptydir = self.pods_root / uid / "volumes" / "kubernetes.io~empty-dir" / "logs"
        stdout_dir = self.logs_root / f"{namespace}_{name}_{uid}" / container
        emptydir.mkdir(parents=True, exist_ok=True)
        stdout_dir.mkdir(parents=True, exist_ok=True)
        pod = SimPod(namespace, name, uid, container, component, emptydir, stdout_dir)
        self.pods.append(pod)
        return pod

    def access_line(
        self,
        pod: SimPod,
        when: datetime,
        *,
        status: int | None = None,
        path: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        method: str | None = None,
        request_time: float | None = None,
    ) -> bytes:
        """One single-line JSON access log entry in the in-house framework's dialect."""
        st = status if status is not None else self.rng.choices((200, 201, 304, 404, 500, 503), (80, 5, 5, 5, 3, 2))[0]
        rec = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": "error" if st >= 500 else "info",
            "method": method or self.rng.choice(METHODS),
            "path": path or self.rng.choice(PATHS),
            "status": st,
            "bytes": self.rng.randint(20, 20000),
            "request_time": round(request_time if request_time is not None else self.rng.lognormvariate(-3.5, 0.8), 4),
            "client_ip": "10.{}.{}.{}".format(*(self.rng.randint(1, 254) for _ in range(3))),
            "user_agent": "Mozilla/5.0 (demo)",
            "trace_id": trace_id or f"{self.rng.getrandbits(128):032x}",
            "span_id": span_id or f"{self.rng.getrandbits(64):016x}",
        }
        return orjson.dumps(rec)

    def write_access(
        self,
        pod: SimPod,
        n: int,
        *,
        start: datetime | None = None,
        status: int | None = None,
        path: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        method: str | None = None,
        request_time: float | None = None,
    ) -> None:
        """Append ``n`` access lines to the pod's access.log (one write, as an application would)."""
        t0 = start or datetime.now(UTC)
        lines = [
            self.access_line(
                pod, t0 + timedelta(milliseconds=i), status=status, path=path, trace_id=trace_id, span_id=span_id,
                method=method, request_time=request_time,
            )
            for i in range(n)
        ]
        _append(pod.access_log, b"\n".join(lines) + b"\n")
        pod.written["access.log"] = pod.written.get("access.log", 0) + n

    def write_stdout(self, pod: SimPod, messages: list[str], stream: str = "stdout") -> None:
        """Append CRI-format lines (``<RFC3339Nano> <stream> F <content>``) to the container's 0.log."""
        now = datetime.now(UTC)
        out = [f"{now.strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z {stream} F {m}".encode() for m in messages]
        _append(pod.stdout_log, b"\n".join(out) + b"\n")
        pod.written["0.log"] = pod.written.get("0.log", 0) + len(messages)

    def write_span(
        self,
        pod: SimPod,
        trace_id: str,
        name: str,
        *,
        parent: str | None = None,
        duration_ms: float = 12.0,
        shape: str = "otlp",
    ) -> str:
        """Append one span to the pod's trace.log as a tracer writes it — ``otlp``: an OTLP/JSON
        export request (``{"resourceSpans": ...}``), ``zipkin``: a Zipkin v2 list — and return its
        span id."""
        span_id = f"{self.rng.getrandbits(64):016x}"
        start = int(datetime.now(UTC).timestamp() * 1e9)
        end = start + int(duration_ms * 1e6)
        rec: Any
        if shape == "zipkin":
            rec = [{
                "traceId": trace_id, "id": span_id, **({"parentId": parent} if parent else {}), "name": name,
                "kind": "SERVER" if parent is None else "CLIENT", "timestamp": start // 1000,
                "duration": (end - start) // 1000, "localEndpoint": {"serviceName": pod.component},
            }]
        else:
            span = {
                "traceId": trace_id, "spanId": span_id, "parentSpanId": parent or "", "name": name,
                "kind": 2 if parent is None else 3, "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
                "status": {"code": 1},
            }
            service = {"key": "service.name", "value": {"stringValue": pod.component}}
            rec = {"resourceSpans": [{"resource": {"attributes": [service]}, "scopeSpans": [{"spans": [span]}]}]}
        _append(pod.trace_log, orjson.dumps(rec) + b"\n")
        pod.written["trace.log"] = pod.written.get("trace.log", 0) + 1
        return span_id


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
