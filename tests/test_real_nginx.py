"""A real nginx writes its JSON access log into a pod's EmptyDir; every line becomes its document.

Real requests over loopback, including what real clients send: bytes that are not UTF-8 (a Latin-1
``User-Agent``, raw bytes in the path), quotes, backslashes, unicode, 400s with an empty ``$uri``,
redirects. ``logpipe ship`` -> Kafka -> ``logpipe consume`` -> Elasticsearch: the document count is
the line count, and every document's status and path equal an independent reading of the file
(Python's ``json`` on the line decoded with U+FFFD); ``logpipe query`` counts equal the same reading.
nginx also writes the same requests in its ``combined`` text format into a second file: those
documents' status and path equal a reading of the request line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from tests.end_to_end import Pipeline
from tests.nginx_server import Nginx, odd_requests
from tests.test_end_to_end import pipeline, wait_count  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration

REQUESTS = 360


def independent_reading(log: Path) -> dict[int, tuple[int, str, bool]]:
    """offset -> (status, path, bytes were UTF-8) of each line, read without any logpipe code."""
    out: dict[int, tuple[int, str, bool]] = {}
    offset = 0
    for line in log.read_bytes().split(b"\n")[:-1]:
        try:
            line.decode()
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        obj = json.loads(line.decode("utf-8", "replace"))
        out[offset] = (int(obj["status"]), obj["uri"], utf8)
        offset += len(line) + 1
    return out


def independent_text_reading(log: Path) -> dict[int, tuple[int, str | None]]:
    """offset -> (status, path) of each combined-format line: the request line's target up to "?",
    nginx's \\xHH escapes undone, decoded with U+FFFD; None when nginx logged no request target."""
    out: dict[int, tuple[int, str | None]] = {}
    offset = 0
    for line in log.read_bytes().split(b"\n")[:-1]:
        parts = line.split(b'"')  # nginx escapes a quote inside a value as \x22: quotes only delimit
        request, status = parts[1].split(b" "), int(parts[2].split()[0])
        path = None
        if len(request) == 3 and request[2].startswith(b"HTTP/"):
            target = re.sub(rb"\\x([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), request[1])
            path = target.split(b"?", 1)[0].decode("utf-8", "replace")
        out[offset] = (status, path)
        offset += len(line) + 1
    return out


async def all_docs(es: AsyncElasticsearch, index: str) -> list[dict[str, object]]:
    await es.indices.refresh(index=index)
    resp = await es.search(index=index, size=10_000, query={"match_all": {}})
    return [h["_source"] for h in resp["hits"]["hits"]]


async def test_real_nginx_lines_are_indexed_exactly_and_query_agrees(
    pipeline: Pipeline, es_url: str, tmp_path: Path  # noqa: F811
) -> None:
    pod = pipeline.sim.add_pod("web")
    text_log = pod.emptydir / "access_combined.log"  # nginx's combined format, the same requests
    nginx = Nginx(tmp_path / "nginx", pod.access_log, text_log)
    nginx.start()
    try:
        statuses: Counter[int] = Counter()
        requests = odd_requests(REQUESTS)
        for item in requests:
            code = nginx.request(item) if isinstance(item, bytes) else nginx.get(*item)
            statuses[code] += 1
    finally:
        nginx.stop()
    assert {200, 301, 302, 400, 404} <= set(statuses)

    want = independent_reading(pod.access_log)
    proxied = sum(1 for item in requests if not isinstance(item, bytes) and item[0] == b"/up")
    assert len(want) == REQUESTS + proxied  # a proxied request logs its backend request too
    lines_n = len(want)
    want_text = independent_text_reading(text_log)
    assert len(want_text) == lines_n
    assert sum(1 for _, _, utf8 in want.values() if not utf8) >= REQUESTS // 6  # the case under test
    assert any(path == "" for _, path, _ in want.values())

    pipeline.start_consumer()
    pipeline.start_shipper()
    es = AsyncElasticsearch(es_url)
    try:
        index = f"{pipeline.name}-access-*"
        assert await wait_count(es, index, 2 * lines_n, pipeline) == 2 * lines_n
        await asyncio.sleep(1.0)
        assert await wait_count(es, index, 2 * lines_n, pipeline) == 2 * lines_n  # and no more
        docs = await all_docs(es, index)
        text_docs = [d for d in docs if d["log"]["file"]["path"].endswith("access_combined.log")]  # type: ignore[index]
        got_text = {d["log"]["offset"]: d for d in text_docs}  # type: ignore[index]
        assert set(got_text) == set(want_text)
        for offset, (status, path) in want_text.items():
            doc = got_text[offset]
            assert doc["http"]["response"]["status_code"] == status, doc  # type: ignore[index]
            assert doc.get("url", {}).get("path") == path, doc  # type: ignore[attr-defined]
            assert "unknown_format" not in doc["logpipe"].get("flags", [])  # type: ignore[attr-defined]
        docs = [d for d in docs if d not in text_docs]
        got = {d["log"]["offset"]: d for d in docs}  # type: ignore[index]
        assert set(got) == set(want)
        lines = pod.access_log.read_bytes().split(b"\n")
        by_offset = dict(zip(want, lines, strict=False))
        for offset, (status, path, utf8) in want.items():
            doc = got[offset]
            assert doc["http"]["response"]["status_code"] == status, doc  # type: ignore[index]
            assert doc["url"]["path"] == path, doc  # type: ignore[index]
            flags = doc["logpipe"].get("flags", [])  # type: ignore[attr-defined]
            assert ("invalid_utf8" in flags) == (not utf8), doc
            if not utf8:
                assert base64.b64decode(doc["logpipe"]["original_base64"]) == by_offset[offset]  # type: ignore[index]
    finally:
        await es.close()

    # logpipe query over the same file: the same counts per status and path.
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "logpipe.cli.main", "query", str(pod.access_log), "--dialect", "nginx",
         "--by", "status,path", "--format", "json"],
        capture_output=True, check=True,
    )
    counts = Counter({(r["status"], r["path"]): r["count"] for r in map(orjson.loads, proc.stdout.splitlines())})
    assert counts == Counter((status, path) for status, path, _ in want.values())
    bad = sum(1 for _, _, utf8 in want.values() if not utf8)
    assert f"{bad} lines not UTF-8 decoded with replacement".encode() in proc.stderr
    assert b"malformed" not in proc.stderr

    # and over the combined text log of the same requests
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "logpipe.cli.main", "query", str(text_log), "--by", "status,path", "--format", "json"],
        capture_output=True, check=True,
    )
    counts = Counter({(r["status"], r["path"]): r["count"] for r in map(orjson.loads, proc.stdout.splitlines())})
    assert counts == Counter(want_text.values())
    assert b"malformed" not in proc.stderr
