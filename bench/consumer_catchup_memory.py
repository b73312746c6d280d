"""The consumer's memory across catch-ups: is it a leak or the high-water mark of a backlog?

    python bench/consumer_catchup_memory.py [--lines 300000] [--rounds 3] [--files 400]

A real ``logpipe consume`` (child process, its defaults) on the shared Kafka and Elasticsearch. Each
round writes a backlog of ``--lines`` records (half JSON access lines, half JSON app lines, over
``--files`` files that no earlier round used, as rotation makes) and waits until every one is
searchable, sampling the process's RSS every second. The first backlog is written before the
consumer starts; the later ones while it runs (it reads them as fast as they come, so its buffer
fills as far as the writer gets ahead). A leak grows with every round; a high-water
mark (the buffer filled while catching up, kept by the allocator afterwards) stops growing after the
first large backlog. Prints the peak and the RSS after each round, then removes its indices.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logpipe.core.envelope import LineRecord
from tests.consumer.story import ConsumerStory


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def backlog(story: ConsumerStory, round_no: int, lines: int, files: int) -> list[LineRecord]:
    per_file = lines // files
    records: list[LineRecord] = []
    for f in range(files):
        file_no = round_no * files + f
        if f % 2:
            records += story.access_lines(per_file, file_no=file_no)
            continue
        meta = story.meta("app", file_no=file_no)
        offset = 0
        for i in range(per_file):
            line = orjson.dumps({
                "time": "2026-11-27T10:00:00.123+08:00", "level": "INFO",
                "msg": f"order {i} placed for customer {i * 7} with a longer message body",
                "trace_id": f"t{file_no}-{i}",
            })
            records.append(LineRecord(meta, offset, line, int(time.time() * 1000)))
            offset += len(line) + 1
    return records


async def run(lines: int, rounds: int, files: int, kafka: str, es: str) -> None:
    story = ConsumerStory(kafka, es, f"catchup-{uuid.uuid4().hex[:6]}")
    story.topics["app"] = f"{story.name}-app"
    await story.create_topics(partitions=6)
    expected = 0
    with tempfile.TemporaryDirectory(prefix="logpipe-catchup-") as tmp:
        proc = None
        try:
            for r in range(rounds):
                records = backlog(story, r, lines, files)
                await story.produce(records)
                story.produced.clear()  # only the count is checked: keep the bench's own memory flat
                expected += len(records)
                del records
                if proc is None:  # the first backlog is written before the consumer starts
                    proc = story.spawn_cli(story.config(), Path(tmp))
                began, peak = time.monotonic(), 0.0
                while True:
                    peak = max(peak, rss_mb(proc.pid))
                    try:
                        if await story.count() >= expected:
                            break
                    except Exception:  # the new indices not searchable yet
                        pass
                    assert proc.poll() is None, f"the consumer exited with {proc.returncode}"
                    await asyncio.sleep(1)
                await asyncio.sleep(5)
                print(f"round {r}: {expected} documents, caught up in {time.monotonic() - began:.0f} s; "
                      f"consumer RSS peak {peak:.0f} MB, 5 s after {rss_mb(proc.pid):.0f} MB", flush=True)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(60)
            await story.es.options(ignore_status=404).indices.delete(index=f"{story.prefix}-*")
            await story.es.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=300_000, help="records per backlog")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--files", type=int, default=400, help="distinct files per backlog")
    ap.add_argument("--kafka", default="127.0.0.1:9092")
    ap.add_argument("--es", default="http://127.0.0.1:9200")
    a = ap.parse_args()
    asyncio.run(run(a.lines, a.rounds, a.files, a.kafka, a.es))


if __name__ == "__main__":
    main()
