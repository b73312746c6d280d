"""A real nginx writes its JSON access log into a pod's EmptyDir; every line becomes its document.

Real requests over loopback, including what real clients send: bytes that are not UTF-8 (a Latin-1
``User-Agent``, raw bytes in the path), quotes, backslashes, unicode, 400s with an empty ``$uri``,
redirects. ``logpipe ship`` -> Kafka -> ``logpipe consume`` -> Elasticsearch: the document count is
the line count, and every document's status and path equal an independent reading of the file
(Python's ``json`` on the line decoded with U+FFFD); ``logpipe query`` counts equal the same reading.
"""

from __future__ import annotations

import asyncio
import base64
import json
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


async def all_docs(es: AsyncElasticsearch, index: str) -> list[dict[str, object]]:
    await es.indices.refresh(index=index)
    resp = await es.search(index=index, size=10_000, query={"match_all": {}})
    return [h["_source"] for h in resp["hits"]["hits"]]


async def test_real_nginx_lines_are_indexed_exactly_and_query_agrees(
    pipeline: Pipeline, es_url: str, tmp_path: Path  # noqa: F811
) -> None:
    pod = pipeline.sim.add_pod("web")
    nginx = Nginx(tmp_path / "nginx", pod.access_log)
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
    assert sum(1 for _, _, utf8 in want.values() if not utf8) >= REQUESTS // 6  # the case under test
    assert any(path == "" for _, path, _ in want.values())

    pipeline.start_consumer()
    pipeline.start_shipper()
    es = AsyncElasticsearch(es_url)
    try:
        index = f"{pipeline.name}-access-*"
        assert await wait_count(es, index, lines_n, pipeline) == lines_n
        await asyncio.sleep(1.0)
        assert await wait_count(es, index, lines_n, pipeline) == lines_n  # and no more
        docs = await all_docs(es, index)
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
