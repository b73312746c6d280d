"""Benchmark `logpipe query` against DuckDB, jq, Miller and a plain orjson loop on 1M lines.

    python bench/query_bench.py [--lines 1000000] [--repeat 3] [--slow-repeat 1] [--no-write]

The same filter + group-by + p99 query (``status >= 500``, group by Component, count and p99 of
request_time) runs in a separate process per tool and repetition, round-robin so that load drift
on a shared machine hits every tool alike. Every tool's answer is checked against DuckDB's. The
table (best and median wall time, ratio of the best times to DuckDB's) goes to stdout and into the
"query" section of docs/BENCHMARKS.md, with the machine's load average before and after.

The input (about 330 MB) is generated once and cached under ~/.cache/logpipe/bench.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from access_log_gen import generate

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LOGPIPE_BENCH_CACHE", Path.home() / ".cache" / "logpipe" / "bench"))
DOC = ROOT / "docs" / "BENCHMARKS.md"
START, END = "<!-- query-bench:start -->", "<!-- query-bench:end -->"

WHERE = "status>=500"
LOGPIPE_ARGS = ["--where", WHERE, "--by", "component", "--agg", "count,p99(request_time)", "--format", "json"]

DUCKDB_CODE = """
import sys, json, duckdb
rows = duckdb.sql(
    "SELECT service, count(*), quantile_cont(request_time, 0.99) FROM read_json(?)"
    " WHERE status >= 500 GROUP BY service".replace("?", "'" + sys.argv[1] + "'")
).fetchall()
for s, n, p in rows:
    print(json.dumps({"service": s, "count": n, "p99": p}))
"""

ORJSON_CODE = """
import sys, json, math, orjson
groups = {}
with open(sys.argv[1], "rb") as f:
    for line in f:
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        st = d.get("status")
        if isinstance(st, (int, float)) and st >= 500:
            groups.setdefault(d.get("service"), []).append(d.get("request_time"))
for s, v in groups.items():
    n = len(v)
    v = sorted(x for x in v if x is not None)
    pos = 0.99 * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    print(json.dumps({"service": s, "count": n, "p99": v[lo] + (v[hi] - v[lo]) * (pos - lo)}))
"""

JQ_PROGRAM = r"""
def p99: sort as $s | ($s|length) as $n | (0.99 * ($n - 1)) as $pos | ($pos|floor) as $lo
  | ([$lo + 1, $n - 1] | min) as $hi | $s[$lo] + ($s[$hi] - $s[$lo]) * ($pos - $lo);
reduce (inputs | select(.status >= 500)) as $r ({}; .[$r.service] += [$r.request_time])
| to_entries[] | {service: .key, count: (.value | length), p99: (.value | p99)}
"""


@dataclass
class Tool:
    """One contender: its display name, the command for an input file, and how it says which engine."""

    name: str
    command: Callable[[Path], list[str]]
    note: str
    slow: bool = False
    times: list[float] = field(default_factory=list)
    answer: dict[str, tuple[int, float]] = field(default_factory=dict)


def tools() -> list[Tool]:
    py = sys.executable
    logpipe = shutil.which("logpipe") or ""
    found = [
        Tool("logpipe query", lambda f: [logpipe, "query", str(f), *LOGPIPE_ARGS],
             f"`logpipe query FILE {' '.join(LOGPIPE_ARGS)}` (the installed console script)"),
        Tool("python -m logpipe.tools.query", lambda f: [py, "-m", "logpipe.tools.query", str(f), *LOGPIPE_ARGS],
             "the same command without the full CLI's start-up (no other verbs imported, no typer)"),
        Tool("duckdb", lambda f: [py, "-c", DUCKDB_CODE, str(f)],
             "`python -c` with the duckdb package: `read_json` + `quantile_cont`, types auto-detected"),
        Tool("orjson loop", lambda f: [py, "-c", ORJSON_CODE, str(f)], "plain Python: orjson per line, dict of lists"),
    ]  # fmt: skip
    if shutil.which("jq"):
        found.append(Tool("jq", lambda f: ["jq", "-c", "-n", JQ_PROGRAM, str(f)], "jq 1.6, reduce + sort", slow=True))
    if shutil.which("mlr"):
        found.append(
            Tool(
                "miller",
                lambda f: [
                    "mlr",
                    "--ijsonl",
                    "--ojsonl",
                    "filter",
                    "$status >= 500",
                    "then",
                    "stats1",
                    "-i",
                    "-a",
                    "count,p99",
                    "-f",
                    "request_time",
                    "-g",
                    "service",
                    str(f),
                ],
                "Miller 6 `filter then stats1 -i -a count,p99` (interpolated)",
                slow=True,
            )
        )
    return found


def parse_answer(tool: str, stdout: str) -> dict[str, tuple[int, float]]:
    """``{component: (count, p99)}`` from a tool's JSON lines."""
    out: dict[str, tuple[int, float]] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        d: dict[str, Any] = orjson.loads(line)
        if tool.startswith(("logpipe", "python -m logpipe")):
            out[d["component"]] = (d["count"], d["p99(request_time)"])
        elif tool == "miller":
            out[d["service"]] = (d["request_time_count"], d["request_time_p99"])
        else:
            out[d["service"]] = (d["count"], d["p99"])
    return out


def same(a: dict[str, tuple[int, float]], b: dict[str, tuple[int, float]]) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and abs(a[k][1] - b[k][1]) <= 1e-9 * max(1.0, abs(b[k][1])) for k in a
    )


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def ensure_input(lines: int) -> Path:
    path = CACHE / f"access-{lines}.log"
    if not path.exists():
        print(f"generating {lines:,} lines into {path} (once) ...", file=sys.stderr)
        generate(path, lines)
    return path


def run(tool: Tool, path: Path) -> None:
    t0 = time.perf_counter()
    proc = subprocess.run(tool.command(path), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{tool.name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    tool.times.append(elapsed)
    tool.answer = parse_answer(tool.name, proc.stdout)


def startup(command: list[str], runs: int = 5) -> float:
    """Best wall time of a command that does no work (what a process pays before its query)."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        best = min(best, time.perf_counter() - t0)
    return best


def table(found: list[Tool], duck: Tool) -> list[str]:
    base_best, base_med = min(duck.times), statistics.median(duck.times)
    rows = [
        "| tool | best (s) | median (s) | runs | best / DuckDB's | median / DuckDB's | how |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for t in found:
        best, med = min(t.times), statistics.median(t.times)
        rows.append(
            f"| {t.name} | {best:.2f} | {med:.2f} | {len(t.times)} | {best / base_best:.2f}x"
            f" | {med / base_med:.2f}x | {t.note} |"
        )
    return rows


def write_doc(section: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{START}\n{section}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=9, help="runs of logpipe, DuckDB and the orjson loop")
    ap.add_argument("--slow-repeat", type=int, default=1, help="runs of jq and Miller")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/BENCHMARKS.md")
    ap.add_argument("--skip-slow", action="store_true", help="leave out jq and Miller (a quick look)")
    args = ap.parse_args()

    path = ensure_input(args.lines)
    size_mb = path.stat().st_size / 1e6
    found = [t for t in tools() if not (args.skip_slow and t.slow)]
    load_before = load()
    for i in range(max(args.repeat, args.slow_repeat)):
        for tool in found:
            if i < (args.slow_repeat if tool.slow else args.repeat):
                run(tool, path)
                print(f"  {tool.name:14} run {i + 1}: {tool.times[-1]:.2f} s", file=sys.stderr)
    load_after = load()
    py = sys.executable
    starts = {
        "`logpipe query --help`": startup([shutil.which("logpipe") or "logpipe", "query", "--help"]),
        "`python -m logpipe.tools.query --help`": startup([py, "-m", "logpipe.tools.query", "--help"]),
        "`python -c 'import duckdb'`": startup([py, "-c", "import duckdb"]),
    }

    duck = next(t for t in found if t.name == "duckdb")
    wrong = [t.name for t in found if not same(t.answer, duck.answer)]
    if wrong:
        raise SystemExit(f"answers differ from DuckDB's: {wrong}")
    rows = table(found, duck)
    cpu = os.cpu_count()
    section = "\n".join(
        [
            "## query: filter + group-by + p99 on 1M access-log lines",
            "",
            f"Input: {args.lines:,} generated JSON lines, {size_mb:.0f} MB (`bench/access_log_gen.py`), page-cached.",
            "Query: `status >= 500`, group by Component, count and p99(request_time); every answer checked "
            "against DuckDB's. Each run is a separate process; tools run round-robin.",
            f"Machine: {cpu} CPUs, shared; load average (1/5/15 min) before: {load_before}, after: {load_after}.",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with: "
            f"`python bench/query_bench.py --repeat {args.repeat} --slow-repeat {args.slow_repeat}`",
            "",
            *rows,
            "",
            "Start-up alone (best of 5, no query): " + ", ".join(f"{k} {v:.2f} s" for k, v in starts.items()) + ".",
            "The two logpipe rows run the same code (logpipe/tools/query/command.py); the console script dispatches",
            "`query` before it builds the typer app of every verb (logpipe/cli/entry.py).",
            "",
            "Target (issue 6): logpipe at most 1.2x DuckDB.",
        ]
    )
    print(section)
    if not args.no_write:
        write_doc(section)
        print(f"\nwritten to {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
