"""Stack traces printed by real programs become one document each, across a kill -9 of the shipper.

Java (compiled with javac here), Python, Go and Node.js programs fail; their stderr goes into a
pod's CRI file (as the kubelet writes it: stderr records, a long stdout line split into ``P``/``F``
fragments, ordinary stdout lines between the traces) and into an app log file (a logback-style
line followed by its exception, ordinary lines around). ``logpipe ship`` is killed with SIGKILL
while a trace is half written and started again; in Elasticsearch every exception is exactly one
document holding the whole trace, every ordinary line one document, nothing lost, no partial copy.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from logpipe.dev.demo.podsim import SimPod
from tests.end_to_end import Pipeline
from tests.shipper.real_traces import real_traces
from tests.test_end_to_end import pipeline, wait_count  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration

FLUSH = "4s"  # the shipper is killed well within it, while the half-written trace is held


def logpipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logpipe.cli.main", *args], capture_output=True, text=True,
                          timeout=60)


def append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def cri(stream: str, content: bytes, tag: str = "F") -> bytes:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").encode()
    return stamp + b"000Z " + stream.encode() + b" " + tag.encode() + b" " + content + b"\n"


class Writer:
    """Appends to the pod's CRI file and app file, and remembers the events a reader expects."""

    def __init__(self, pod: SimPod) -> None:
        self.cri_path = pod.stdout_log
        self.app_path = pod.emptydir / "app.log"
        self.cri_events: list[bytes] = []  # the content of each event (a joined trace: its lines)
        self.app_events: list[bytes] = []

    def stdout(self, text: bytes) -> None:
        append(self.cri_path, cri("stdout", text))
        self.cri_events.append(text)

    def stdout_fragments(self, text: bytes, size: int) -> None:
        parts = [text[i:i + size] for i in range(0, len(text), size)]
        append(self.cri_path, b"".join(cri("stdout", p, "P") for p in parts[:-1]) + cri("stdout", parts[-1]))
        self.cri_events.append(text)

    def stderr_trace(self, trace: bytes, upto: int | None = None, *, expect: bool = True) -> None:
        lines = trace.split(b"\n")
        append(self.cri_path, b"".join(cri("stderr", ln) for ln in lines[:upto]))
        if expect:
            self.cri_events.append(trace)

    def app(self, data: bytes, event: bytes | None = None) -> None:
        append(self.app_path, data)
        if event is not None:
            self.app_events.append(event)


async def messages(es: AsyncElasticsearch, index: str) -> list[tuple[int, str]]:
    await es.indices.refresh(index=index)
    resp = await es.search(index=index, size=1000, query={"match_all": {}}, sort=[{"log.offset": "asc"}])
    return [(h["_source"]["log"]["offset"], h["_source"]["message"]) for h in resp["hits"]["hits"]]


async def test_real_stack_traces_are_one_document_each_across_a_shipper_kill9(
    pipeline: Pipeline, es_url: str, tmp_path: Path  # noqa: F811
) -> None:
    traces = await asyncio.to_thread(real_traces, tmp_path / "programs")
    pod = pipeline.sim.add_pod("pay-gw")
    w = Writer(pod)
    cfg: dict[str, Any] = pipeline.shipper_config()
    auto = {"mode": "auto", "flush_timeout": FLUSH}
    cfg["rules"]["emptydir"] = [{"match": ["*.log"], "type": "app", "multiline": auto}]
    cfg["rules"]["cri"] = [{"match": ["*.log"], "type": "stdout", "multiline": auto}]
    pipeline.shipper_config = lambda: cfg  # type: ignore[method-assign]

    # Before the kill: every language's trace, whole, between ordinary lines.
    for i, name in enumerate(("java", "python", "go", "node")):
        w.stdout(f"request {i} ok".encode())
        w.stderr_trace(traces[name])
        line = f"2026-12-01 21:00:0{i}.000 INFO [main] pay.App - request {i} ok".encode()
        w.app(line + b"\n", line)
    w.stdout_fragments(b"a long stdout line " + b"x" * 300, 100)
    # logback writes the exception as Throwable.toString() and its frames (no "Exception in thread").
    thrown = traces["java"].split(b'Exception in thread "main" ', 1)[1]
    logback = b"2026-12-01 21:00:05.000 ERROR [main] pay.App - checkout failed\n" + thrown
    w.app(logback + b"\n", logback)
    w.stdout(b"before the half trace")
    w.app(b"2026-12-01 21:00:06.000 INFO [main] pay.App - before the half trace\n",
          b"2026-12-01 21:00:06.000 INFO [main] pay.App - before the half trace")
    # A trace half written when the shipper dies.
    half = 3
    w.stderr_trace(traces["python"], half, expect=False)
    py_lines = traces["python"].split(b"\n")
    w.app(b"\n".join(py_lines[:half]) + b"\n")

    logs = f"{pipeline.name}-stdout-*,{pipeline.name}-app-*"  # the log documents (not the trace stores)
    es = AsyncElasticsearch(es_url)
    try:
        pipeline.start_consumer()
        shipper = pipeline.start_shipper()
        done_cri, done_app = len(w.cri_events), len(w.app_events)
        await wait_count(es, logs, done_cri + done_app, pipeline)
        shipper.kill()  # SIGKILL: no flush, no registry write
        shipper.wait(10)
        pipeline.procs.remove(shipper)

        # The rest of the trace, then ordinary lines (they end the trace event).
        append(w.cri_path, b"".join(cri("stderr", ln) for ln in py_lines[half:]))
        w.cri_events.append(traces["python"])
        w.app(b"\n".join(py_lines[half:]) + b"\n", traces["python"])
        w.stdout(b"after the restart")
        w.app(b"2026-12-01 21:00:07.000 INFO [main] pay.App - after the restart\n",
              b"2026-12-01 21:00:07.000 INFO [main] pay.App - after the restart")
        pipeline.start_shipper()

        total = len(w.cri_events) + len(w.app_events)
        await wait_count(es, logs, total, pipeline, timeout=120)
        await asyncio.sleep(float(FLUSH[:-1]) + 2)  # the last events were sent after the flush timeout
        count = await wait_count(es, logs, total, pipeline)
        got_cri = await messages(es, f"{pipeline.name}-stdout-*")
        got_app = await messages(es, f"{pipeline.name}-app-*")
    finally:
        await es.close()
    assert [m for _, m in got_cri] == [e.decode() for e in w.cri_events]
    assert [m for _, m in got_app] == [e.decode() for e in w.app_events]
    assert count == total  # no partial copies

    # logpipe search prints a joined event with its whole stack; -C counts events, not lines.
    common = ("--es-url", es_url, "--index-prefix", pipeline.name, "--since", "1d", "--type", "app")
    hit = await asyncio.to_thread(logpipe, "search", '"checkout failed"', *common)
    assert hit.returncode == 0, hit.stderr
    assert thrown.decode() in hit.stdout
    ctx = await asyncio.to_thread(logpipe, "search", '"checkout failed"', "-C", "1", *common)
    assert ctx.returncode == 0, ctx.stderr
    assert "request 3 ok" in ctx.stdout and "before the half trace" in ctx.stdout  # one event either side
    assert "request 2 ok" not in ctx.stdout and traces["node"].decode() not in ctx.stdout
    # Each document's offset is its first line's (the trace's first record in the CRI file).
    cri_bytes = w.cri_path.read_bytes()
    for offset, message in got_cri:
        first = message.encode().split(b"\n", 1)[0]
        record_end = cri_bytes.index(b"\n", offset)
        assert cri_bytes[offset:record_end].endswith(first) or b" P " in cri_bytes[offset:record_end]
