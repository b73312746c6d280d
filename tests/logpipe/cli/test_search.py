"""`logpipe search` as a user runs it: a subprocess, its output, its exit code (0 hits, 1 none, 2 error)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import orjson
import pytest

from tests.logpipe.tools.search.stories import LogStore, minutes_ago

pytestmark = pytest.mark.integration


def logpipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logpipe.cli.main", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_exit_codes_like_grep_and_plain_text_when_piped(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-7d9f-a")
    await store.index([store.app(f, minutes_ago(1), "card declined", "WARN")])
    common = ("--es-url", store.url, "--index-prefix", store.prefix)

    hit = logpipe("search", "declined", "--component", "pay", *common)
    assert (hit.returncode, hit.stderr) == (0, "")
    assert hit.stdout.endswith(" pay-7d9f-a WARN card declined\n")
    assert "\x1b[" not in hit.stdout

    none = logpipe("search", "approved", "--component", "pay", *common)
    assert (none.returncode, none.stdout) == (1, "")

    coloured = logpipe("search", "declined", "--color", "always", *common)
    assert "\x1b[" in coloured.stdout


async def test_es_url_from_the_environment_and_json_output(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-1")
    line = store.app(f, minutes_ago(1), "hello")
    await store.index([line])

    r = logpipe("search", "--json", env={"LOGPIPE_ES_URL": store.url, "LOGPIPE_INDEX_PREFIX": store.prefix})

    assert r.returncode == 0, r.stderr
    doc = orjson.loads(r.stdout)
    assert (doc["_id"], doc["message"], doc["service"]["name"]) == (line.doc_id, "hello", "pay")


def test_unreachable_elasticsearch_names_the_url_and_exits_2() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    r = logpipe("search", "x", "--es-url", url)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == (
        f"logpipe search: Elasticsearch unreachable at {url}: connection refused — check --es-url or LOGPIPE_ES_URL\n"
    )
    t = logpipe("trace", "abc", "--es-url", url)
    assert t.returncode == 2 and f"unreachable at {url}" in t.stderr


async def test_errors_name_their_cause(store: LogStore) -> None:
    common = ("--es-url", store.url, "--index-prefix", store.prefix)
    f = store.pod_file("pay", "pay-1", "access")
    await store.index([store.access(f, minutes_ago(1), "/api/pay", 200)])

    unknown = logpipe("search", "--where", 'colour="red"', *common)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("logpipe search: unknown field 'colour'")

    bad = logpipe("search", "--where", "status>=", *common)
    assert bad.returncode == 2 and "column 9" in bad.stderr

    rejected = logpipe("search", "--where", 'status="abc"', *common)
    assert rejected.returncode == 2 and "Elasticsearch rejected the query" in rejected.stderr

    flags = logpipe("search", "--type", "nginx", *common)
    assert flags.returncode == 2 and "unknown --type 'nginx'" in flags.stderr


async def test_follow_subprocess_streams_new_lines_and_ends_on_ctrl_c(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-1")
    await store.index([store.app(f, minutes_ago(1), "backlog")])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "logpipe.cli.main", "search", "-f", "--json", "--poll-interval", "0.2",
        "--es-url", store.url, "--index-prefix", store.prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        first = orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert first["message"] == "backlog"
        await store.index([store.app(f, minutes_ago(0), f"live {i}") for i in range(3)])
        live = [orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 10))["message"] for _ in range(3)]
        assert live == ["live 0", "live 1", "live 2"]
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 10)
    assert code == 0
