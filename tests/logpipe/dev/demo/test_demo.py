"""The README's main job, `logpipe demo`, run as a user runs it: every line once in Elasticsearch, the alert fired."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_ships_indexes_searches_and_alerts(
    kafka_bootstrap: str, es_url: str, alertmanager_url: str, tmp_path: Path
) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "logpipe.cli.main", "demo", "--work-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = res.stdout
    assert res.returncode == 0, out[-3000:] + res.stderr[-2000:]
    m = re.search(r"(\d+) documents from node (\S+) for (\d+) lines written", out)
    assert m and m.group(1) == m.group(3), out  # exactly once: nothing lost, nothing duplicated
    assert "connection refused (attempt" in out  # the search step found the pay-gw errors
    assert re.search(r"^/api/\S+\s+\d+\s+[\d.]+$", out, re.M)  # the query step printed a table row
    assert "2 spans, 2 services" in out  # the trace step joined spans across Components
    assert re.search(r"demo-pay-5xx\s+critical\s+active", out)  # the alert, as Alertmanager has it
    assert (tmp_path / "registry.json").exists()
