"""`logpipe trace ID` as a user runs it."""

from __future__ import annotations

import pytest

from tests.logpipe.cli.test_search import logpipe
from tests.logpipe.tools.search.stories import LogStore, minutes_ago

pytestmark = pytest.mark.integration


async def test_trace_prints_waterfall_and_exits_0_or_1_when_unknown(store: LogStore) -> None:
    spans = store.pod_file("pay", "pay-1", "trace")
    logs = store.pod_file("pay", "pay-1")
    at = minutes_ago(1)
    await store.index([
        store.span(spans, "tr-cli", "s1", None, "GET /api/pay", at, 2_000),
        store.app(logs, at, "paying", trace_id="tr-cli"),
    ])
    common = ("--es-url", store.url, "--index-prefix", store.prefix)

    r = logpipe("trace", "tr-cli", *common)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("trace tr-cli  1 span, 1 service, 2.0ms")
    assert lines[2].split("|")[0].split() == ["◆", "pay", "GET", "/api/pay", "2.0ms", "2.0ms"]
    assert lines[-1].endswith("pay-1 INFO paying")

    missing = logpipe("trace", "tr-none", *common)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert "no span or log line carries trace id 'tr-none'" in missing.stderr

    # `trace ID`, `trace show ID` and options before the id are the same command
    for argv in (("show", "tr-cli", *common), ("--json", "tr-cli", *common)):
        again = logpipe("trace", *argv)
        assert again.returncode == 0, (argv, again.stderr)
    assert '"tr-cli"' in again.stdout
