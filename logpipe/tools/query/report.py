"""``--report``: a GoAccess-style summary on one screen.

Requests and error rate per Component, the status mix, top paths, the slowest paths by p99, and
requests per minute. The lines are read once into a small table (the fields the report needs);
every section is then a quick query on it. ``--where`` and the time range apply. With
``--format json`` the same sections are printed as one JSON object.
"""

from __future__ import annotations

from typing import Any, TextIO

import orjson

from logpipe.tools.query.engine import Engine, Malformed, QuerySpec
from logpipe.tools.query.output import cell_text

TOP = 10
SLOW_MIN_REQUESTS = 5
"""A path needs this many requests before its p99 means anything."""
_SPARK = "▁▂▃▄▅▆▇█"

_COLUMNS = {
    "component": "{component}",
    "status": "{status}",
    "path": "{path}",
    "rt": "{request_time}",
    "minute": "time_bucket(INTERVAL 1 minute, {time})",
}


def _rows(engine: Engine, sql: str) -> list[dict[str, Any]]:
    cur = engine.con.execute(sql)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def build_report(engine: Engine, spec: QuerySpec) -> tuple[dict[str, Any], Malformed]:
    """The report's sections as plain data (what ``--format json`` prints)."""
    bad = engine.materialize("r", spec, _COLUMNS)
    err = "count(*) FILTER (WHERE status >= 500)"
    summary = _rows(
        engine,
        f"SELECT count(*) AS requests, {err} AS errors_5xx,"
        " count(*) FILTER (WHERE status >= 400 AND status < 500) AS errors_4xx,"
        " quantile_cont(rt, 0.5) AS p50, quantile_cont(rt, 0.99) AS p99,"
        " strftime(min(minute), '%Y-%m-%dT%H:%M:%SZ') AS first_minute,"
        " strftime(max(minute), '%Y-%m-%dT%H:%M:%SZ') AS last_minute FROM r",
    )[0]
    total = summary["requests"] or 0
    summary["error_rate"] = (summary["errors_5xx"] / total) if total else None
    summary["malformed"] = bad.count
    components = _rows(
        engine,
        f"SELECT component, count(*) AS requests, {err} AS errors_5xx, {err} / count(*) AS error_rate,"
        " quantile_cont(rt, 0.99) AS p99 FROM r GROUP BY 1 ORDER BY requests DESC, component"
        f" LIMIT {TOP}",
    )
    status = _rows(
        engine,
        "SELECT CAST(status AS BIGINT) AS status, count(*) AS requests, count(*) / sum(count(*)) OVER () AS share"
        " FROM r GROUP BY 1 ORDER BY requests DESC, status LIMIT 12",
    )
    classes = _rows(
        engine,
        "SELECT CASE WHEN status IS NULL THEN '-' ELSE CAST(CAST(floor(status / 100) AS BIGINT) AS VARCHAR) || 'xx'"
        " END AS class, count(*) AS requests FROM r GROUP BY 1 ORDER BY 1",
    )
    top_paths = _rows(
        engine,
        f"SELECT path, count(*) AS requests, {err} / count(*) AS error_rate, quantile_cont(rt, 0.99) AS p99"
        f" FROM r GROUP BY 1 ORDER BY requests DESC, path LIMIT {TOP}",
    )
    slowest = _rows(
        engine,
        "SELECT path, count(*) AS requests, quantile_cont(rt, 0.5) AS p50, quantile_cont(rt, 0.99) AS p99"
        f" FROM r WHERE rt IS NOT NULL GROUP BY 1 HAVING count(*) >= {SLOW_MIN_REQUESTS}"
        f" ORDER BY p99 DESC, path LIMIT {TOP}",
    )
    per_minute = _rows(
        engine,
        f"SELECT strftime(minute, '%Y-%m-%dT%H:%M:%SZ') AS minute, count(*) AS requests, {err} AS errors_5xx"
        " FROM r WHERE minute IS NOT NULL GROUP BY minute ORDER BY minute",
    )
    report = {
        "summary": summary,
        "components": components,
        "status": status,
        "status_classes": {c["class"]: c["requests"] for c in classes},
        "top_paths": top_paths,
        "slowest_paths": slowest,
        "per_minute": per_minute,
    }
    return report, bad


def sparkline(values: list[int], width: int = 60) -> str:
    """Values squeezed into ``width`` buckets (max per bucket), drawn with block characters."""
    if not values:
        return ""
    step = max(1, -(-len(values) // width))
    buckets = [max(values[i : i + step]) for i in range(0, len(values), step)]
    top = max(buckets) or 1
    return "".join(_SPARK[min(len(_SPARK) - 1, v * len(_SPARK) // (top + 1))] for v in buckets)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"


def render(report: dict[str, Any], out: TextIO, *, color: bool) -> None:
    """Print the report as aligned tables (coloured when ``color``)."""
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, force_terminal=color, no_color=not color, width=None if color else 120)
    s = report["summary"]
    head = Text.assemble(
        ("requests ", "bold"),
        f"{s['requests']:,}   ",
        ("5xx ", "bold"),
        (_pct(s["error_rate"]), "red" if (s["error_rate"] or 0) > 0.01 else "green"),
        ("   4xx ", "bold"),
        f"{s['errors_4xx']:,}   ",
        ("p50 ", "bold"),
        _secs(s["p50"]),
        ("   p99 ", "bold"),
        _secs(s["p99"]),
        ("   malformed ", "bold"),
        f"{s['malformed']:,}",
        ("\nspan ", "bold"),
        f"{s['first_minute'] or '-'} .. {s['last_minute'] or '-'}",
    )

    def table(title: str, cols: list[str]) -> Table:
        t = Table(title=title, title_justify="left", box=None, header_style="bold" if color else "", pad_edge=False)
        for i, c in enumerate(cols):
            t.add_column(c, justify="left" if i == 0 else "right", no_wrap=True, max_width=48 if i == 0 else None)
        return t

    comp = table("Components", ["component", "requests", "5xx", "error rate", "p99"])
    for r in report["components"]:
        rate = _pct(r["error_rate"])
        style = "red" if (r["error_rate"] or 0) > 0.05 else ""
        comp.add_row(cell_text(r["component"]), cell_text(r["requests"]), cell_text(r["errors_5xx"]),
                     Text(rate, style=style), _secs(r["p99"]))  # fmt: skip
    mix = table("Status", ["status", "requests", "share"])
    for r in report["status"]:
        st = r["status"]
        style = "red" if st is not None and st >= 500 else "yellow" if st is not None and st >= 400 else ""
        mix.add_row(Text(cell_text(st), style=style), cell_text(r["requests"]), _pct(r["share"]))
    classes = "  ".join(f"{k}: {v:,}" for k, v in report["status_classes"].items())
    paths = table("Top paths", ["path", "requests", "5xx rate", "p99"])
    for r in report["top_paths"]:
        paths.add_row(cell_text(r["path"]), cell_text(r["requests"]), _pct(r["error_rate"]), _secs(r["p99"]))
    slow = table(f"Slowest paths by p99 (>= {SLOW_MIN_REQUESTS} requests)", ["path", "requests", "p50", "p99"])
    for r in report["slowest_paths"]:
        slow.add_row(cell_text(r["path"]), cell_text(r["requests"]), _secs(r["p50"]), _secs(r["p99"]))
    minutes = report["per_minute"]
    counts = [m["requests"] for m in minutes]
    if counts:
        stats = (
            f"min {min(counts):,}  max {max(counts):,}  avg {sum(counts) / len(counts):,.0f}  ({len(counts)} minutes)"
        )
        rpm = Text.assemble(("Requests per minute ", "bold"), stats + "\n", (sparkline(counts), "cyan"))
    else:
        rpm = Text("Requests per minute: no timestamps")
    grid = Table.grid(padding=(0, 4))
    grid.add_row(comp, mix)
    grid.add_row(paths, slow)
    console.print(Group(head, Text(classes), Text(""), grid, Text(""), rpm))


def run_report(engine: Engine, spec: QuerySpec, out: TextIO, *, color: bool, as_json: bool = False) -> Malformed:
    """Build and print the report; returns the malformed-line count for the caller to report."""
    report, bad = build_report(engine, spec)
    if as_json:
        out.write(orjson.dumps(report, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    else:
        render(report, out, color=color)
    return bad
