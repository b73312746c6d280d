"""The README's main job, `logpipe demo`, run as a user runs it: every line once in Elasticsearch, the alert fired."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest

from logpipe.dev.demo.prefill import prefill

pytestmark = pytest.mark.integration


def run_demo(*args: str) -> str:
    """``logpipe demo ARGS`` as a user runs it; its stdout, once it exited 0."""
    res = subprocess.run(
        [sys.executable, "-m", "logpipe.cli.main", "demo", *args], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return res.stdout


def test_demo_ships_indexes_searches_and_alerts(
    kafka_bootstrap: str, es_url: str, alertmanager_url: str, jaeger_url: str, tmp_path: Path
) -> None:
    out = run_demo("--work-dir", str(tmp_path))
    m = re.search(r"(\d+) documents from node (\S+) for (\d+) lines written", out)
    assert m and m.group(1) == m.group(3), out  # exactly once: nothing lost, nothing duplicated
    assert "connection refused (attempt" in out  # the search step found the pay-gw errors
    assert re.search(r"^/api/\S+\s+\d+\s+[\d.]+$", out, re.M)  # the query step printed a table row
    # the trace step joined spans across Components (the OpenTelemetry SDK's OTLP/JSON and py_zipkin's
    # shared server half), with the critical path and each access line under its span
    assert "3 spans, 2 services" in out and "critical path 3 spans" in out
    assert re.search(r"^ +· \S+ orders-\S+ INFO GET /api/orders 200 ", out, re.M), out
    assert re.search(r"the same trace in Jaeger's API: http://\S+/api/traces/[0-9a-f]{32}  \(3 spans\)", out)
    # `trace find --errors` finds this run's failing request as a whole trace, and not its paid one
    ids = re.search(r"traced requests: ([0-9a-f]{32}) \(paid[^)]*\), ([0-9a-f]{32}) \(failed", out)
    assert ids, out
    paid, failed = ids.groups()
    found = out[out.index("== 8. the failing requests") : out.index("== 9.")]
    row = rf"^{failed}\s+\S+ \S+\s+[\d.]+ms\s+pay-gw POST /api/pay 502\s+2\s+2\s+pay-gw$"
    assert re.search(row, found, re.M), found
    assert paid not in found
    # RED figures of pay-gw from its spans: both requests' roots, the failing one counted as an error
    stats = re.search(r"^pay-gw\s+POST /api/pay\s+(\d+)\s+(\d+)\s", out, re.M)
    assert stats and int(stats.group(1)) >= 2 and int(stats.group(2)) >= 1, out
    assert re.search(r"^pay-gw\s+POST bank-api /charge\s+\d+\s+\d+\s+100\.0\s", out, re.M), out
    assert re.search(r"demo-pay-5xx\s+critical\s+active", out)  # the alert, as Alertmanager has it
    assert (tmp_path / "registry.json").exists()


def test_demo_on_a_used_machine_reads_only_what_its_run_wrote(
    kafka_bootstrap: str, es_url: str, alertmanager_url: str, tmp_path: Path
) -> None:
    """Old records in the shared topics (as earlier runs leave them) are neither re-read nor re-indexed."""
    backlog_node = f"backlog-{uuid.uuid4().hex[:12]}"
    asyncio.run(prefill(kafka_bootstrap, 3000, backlog_node))

    out = run_demo("--work-dir", str(tmp_path))
    m = re.search(r"(\d+) documents from node (\S+) for (\d+) lines written", out)
    assert m and m.group(1) == m.group(3), out
    skipped = re.search(r"consumer group (\S+) starts at the current end of .*: (\d+) records of earlier runs", out)
    assert skipped and int(skipped.group(2)) >= 3000, out
    # The consumer's own count of what it fetched: this run's lines, not one of the 3000 before them.
    assert f"the consumer read {m.group(3)} records from Kafka" in out, out
    assert _count(es_url, backlog_node) == 0  # and so none of them was indexed by this run


def _count(es_url: str, node: str) -> int:
    body = orjson.dumps({"query": {"term": {"kubernetes.node.name": node}}})
    req = urllib.request.Request(
        f"{es_url}/logpipe-*/_count?ignore_unavailable=true", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(orjson.loads(resp.read())["count"])


def test_demo_through_sls_ships_indexes_and_alerts(
    es_url: str, alertmanager_url: str, jaeger_url: str, tmp_path: Path
) -> None:
    """`logpipe demo --sink sls`: the shipper's SLS sink and the consumer's SLS source through the local SLS."""
    out = run_demo("--sink", "sls", "--work-dir", str(tmp_path))
    m = re.search(r"(\d+) documents from node (\S+) for (\d+) lines written", out)
    assert m and m.group(1) == m.group(3), out
    assert re.search(r"the consumer read (\d+) records from SLS", out)
    assert "logpipe consume --source sls" in out
    assert re.search(r"demo-pay-5xx\s+critical\s+active", out)
