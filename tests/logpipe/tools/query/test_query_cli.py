"""`logpipe query` end to end: answers equal plain-Python answers on generated mixed-dialect logs."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from typer.testing import CliRunner

from logpipe.cli.main import app
from logpipe.core.fields import FieldMappingConfig
from tests.logpipe.tools.query.reference import (
    START,
    close,
    group,
    matches,
    percentile,
    read,
    vals,
)
from tests.logpipe.tools.query.reference import generate_lines as gen


def run(*args: str, input: bytes | str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["query", *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def jsonl(out: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return gen(3000, seed=11, malformed_every=97, blank_every=131)


@pytest.fixture
def log(tmp_path: Path, lines: list[str]) -> Path:
    return write(tmp_path / "access.log", lines)


# ------------------------------------------------------------------------------- the core contract


def test_filter_group_and_p99_equal_the_plain_python_answer(log: Path, lines: list[str]) -> None:
    code, out, err = run(
        str(log), "--where", 'status>=500 or path~"^/api/pay"', "--by", "component",
        "--agg", "count,p99(request_time),avg(request_time)", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    recs, bad, first = read(lines)
    groups = group(recs, lambda r: r.component, lambda r: (r.status or 0) >= 500 or matches("^/api/pay", r.path))
    got = {row["component"]: row for row in jsonl(out)}
    assert set(got) == set(groups)
    for comp, rs in groups.items():
        rts = vals(rs, "request_time")
        assert got[comp]["count"] == len(rs)
        assert close(got[comp]["p99(request_time)"], percentile(rts, 0.99))
        assert close(got[comp]["avg(request_time)"], sum(rts) / len(rts))
    assert list(got[next(iter(got))]) == ["component", "count", "p99(request_time)", "avg(request_time)"]
    assert f"{bad} malformed lines skipped, first at {log}:{first}" in err


def test_every_aggregate_and_any_percentile(log: Path, lines: list[str]) -> None:
    aggs = (
        "count,sum(bytes),avg(request_time),min(request_time),max(status),distinct(path),"
        "p50(request_time),p99.9(request_time)"
    )
    code, out, err = run(str(log), "--by", "status", "--agg", aggs, "--format", "json")
    assert code == 0, err
    recs, _, _ = read(lines)
    got = {row["status"]: row for row in jsonl(out)}
    for status, rs in group(recs, lambda r: r.status).items():
        row = got[None if status is None else int(status)]
        rts = vals(rs, "request_time")
        assert row["count"] == len(rs)
        assert close(row["sum(bytes)"], sum(vals(rs, "bytes")) if vals(rs, "bytes") else None)
        assert close(row["avg(request_time)"], sum(rts) / len(rts) if rts else None)
        assert close(row["min(request_time)"], min(rts) if rts else None)
        assert close(row["max(status)"], max(vals(rs, "status")) if status is not None else None)
        assert row["distinct(path)"] == len({r.path for r in rs if r.path is not None})
        assert close(row["p50(request_time)"], percentile(rts, 0.5))
        assert close(row["p99.9(request_time)"], percentile(rts, 0.999))


def test_default_aggregate_is_count_and_no_by_gives_one_row(log: Path, lines: list[str]) -> None:
    code, out, _ = run(str(log), "--where", "status=404")
    recs, _, _ = read(lines)
    assert code == 0
    assert jsonl(out) == [{"count": sum(1 for r in recs if r.status == 404)}]
    assert jsonl(run(str(log), "--where", "status=999")[1]) == [{"count": 0}]


def test_top_keeps_the_largest_first_aggregate_in_order(log: Path, lines: list[str]) -> None:
    code, out, _ = run(str(log), "--by", "path,component", "--agg", "count", "--top", "3")
    recs, _, _ = read(lines)
    counts = Counter((r.path, r.component) for r in recs)
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0] or "\uffff", kv[0][1] or "\uffff"))[:3]
    assert code == 0
    assert [((row["path"], row["component"]), row["count"]) for row in jsonl(out)] == expected


def test_every_buckets_on_the_logs_own_timestamps_across_time_notations(log: Path, lines: list[str]) -> None:
    code, out, _ = run(str(log), "--every", "1m")
    recs, _, _ = read(lines)
    minutes = Counter(r.time.replace(second=0, microsecond=0) for r in recs if r.time is not None)
    assert code == 0
    rows = jsonl(out)
    assert [r["time"] for r in rows] == [m.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for m in sorted(minutes)] + (
        [None] if any(r.time is None for r in recs) else []
    )
    assert [r["count"] for r in rows if r["time"]] == [minutes[m] for m in sorted(minutes)]


def test_every_with_top_keeps_n_groups_per_bucket(log: Path) -> None:
    code, out, _ = run(str(log), "--every", "5m", "--by", "status", "--top", "2", "--from", "2026-11-27T10:00:00Z")
    rows = jsonl(out)
    assert code == 0
    per_bucket = Counter(r["time"] for r in rows)
    assert set(per_bucket.values()) == {2} and len(per_bucket) == 2
    for b in per_bucket:
        counts = [r["count"] for r in rows if r["time"] == b]
        assert counts == sorted(counts, reverse=True)


def test_from_to_select_on_the_log_time_with_offsets_converted_to_utc(log: Path, lines: list[str]) -> None:
    # 18:02+08:00 is 10:02Z: the bound is converted, and so are the lines written with +08:00.
    code, out, _ = run(
        str(log), "--from", "2026-11-27T18:02:00+08:00", "--to", "2026-11-27T10:05:00", "--by", "component"
    )
    recs, _, _ = read(lines)
    lo, hi = START + timedelta(minutes=2), START + timedelta(minutes=5)
    expected = Counter(r.component for r in recs if r.time is not None and lo <= r.time < hi)
    assert code == 0
    assert {r["component"]: r["count"] for r in jsonl(out)} == dict(expected)


def test_to_is_exclusive_so_adjacent_ranges_split_the_lines(tmp_path: Path) -> None:
    """The same [--from, --to) as `logpipe search` (logpipe/tools/timerange.py)."""
    docs = [{"time": f"2026-11-27T10:0{m}:00Z", "status": 200} for m in (0, 1, 2)]
    log = write(tmp_path / "edges.log", [orjson.dumps(d).decode() for d in docs])
    first = jsonl(run(str(log), "--from", "2026-11-27T10:00:00Z", "--to", "2026-11-27T10:02:00Z")[1])
    second = jsonl(run(str(log), "--from", "2026-11-27T10:02:00Z", "--to", "2026-11-27T10:03:00Z")[1])
    assert (first, second) == ([{"count": 2}], [{"count": 1}])


def test_since_is_relative_to_now(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    docs = [{"time": (now - timedelta(minutes=m)).isoformat(), "status": 200} for m in (1, 5, 30, 90, 200)]
    log = write(tmp_path / "now.log", [orjson.dumps(d).decode() for d in docs])
    assert jsonl(run(str(log), "--since", "1h")[1]) == [{"count": 3}]
    assert jsonl(run(str(log), "--since", "10m")[1]) == [{"count": 2}]


def test_where_on_the_time_field_compares_iso_text_in_utc(log: Path, lines: list[str]) -> None:
    code, out, _ = run(str(log), "--where", '@timestamp>="2026-11-27T10:09" and status>=200')
    recs, _, _ = read(lines)
    expected = sum(1 for r in recs if r.time and r.time >= START + timedelta(minutes=9) and r.status)
    assert code == 0
    assert jsonl(out) == [{"count": expected}]


# -------------------------------------------------------------------------------------------- inputs


def test_gz_zst_and_a_rotated_set_read_as_one_stream_oldest_first(tmp_path: Path) -> None:
    parts = [gen(400, seed=s, malformed_every=0) for s in (1, 2, 3)]
    parts[1][10] = "garbage in the middle file"
    parts[2][5] = "{broken"
    (tmp_path / "access.log.2.gz").write_bytes(gzip.compress(("\n".join(parts[0]) + "\n").encode()))
    (tmp_path / "access.log.1.zst").write_bytes(
        zstandard.ZstdCompressor().compress(("\n".join(parts[1]) + "\n").encode())
    )
    write(tmp_path / "access.log", parts[2])
    code, out, err = run(str(tmp_path / "access.log*"), "--by", "component", "--agg", "count,max(request_time)")
    recs, bad, _ = read(parts[0] + parts[1] + parts[2])
    assert code == 0, err
    expected = {c: len(rs) for c, rs in group(recs, lambda r: r.component).items()}
    assert {r["component"]: r["count"] for r in jsonl(out)} == expected
    assert bad == 2
    assert f"2 malformed lines skipped, first at {tmp_path / 'access.log.1.zst'}:11" in err


def test_stdin_with_dash_and_with_no_file(lines: list[str]) -> None:
    data = "\n".join(lines) + "\n"
    recs, bad, first = read(lines)
    for args in (["-"], []):
        code, out, err = run(*args, "--by", "status", "--agg", "count", input=data)
        assert code == 0, err
        assert sum(r["count"] for r in jsonl(out)) == len(recs)
        assert f"{bad} malformed lines skipped, first at -:{first}" in err


def test_gzipped_stdin_through_a_real_pipe(lines: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "logpipe.cli.main", "query", "--where", "status>=500", "--format", "csv"],
        input=gzip.compress(("\n".join(lines) + "\n").encode()),
        capture_output=True,
        check=False,
    )
    recs, bad, _ = read(lines)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == ["count", str(sum(1 for r in recs if (r.status or 0) >= 500))]
    assert f"{bad} malformed lines skipped".encode() in proc.stderr


def test_no_malformed_lines_means_nothing_on_stderr(tmp_path: Path) -> None:
    log = write(tmp_path / "clean.log", gen(200, seed=3))
    code, _, err = run(str(log))
    assert code == 0 and err == ""


def test_valid_lines_without_any_queried_key_still_count(tmp_path: Path) -> None:
    # Lines with none of the keys look like malformed ones to the fast reader; the result must not care.
    docs = ['{"status": 200, "time": "2026-11-27T10:00:00Z"}', '{"other": 1}', '{"other": 2}', "oops", '{"x"']
    log = write(tmp_path / "sparse.log", docs)
    code, out, err = run(str(log), "--where", "not status=200")
    assert code == 0
    assert jsonl(out) == [{"count": 2}]
    assert "2 malformed lines skipped, first at" in err and "sparse.log:4" in err


def test_keys_differing_only_in_case_are_all_read(tmp_path: Path) -> None:
    docs = ['{"traceId": "A", "status": 500}', '{"traceid": "B", "status": 500}', '{"trace_id": "C", "status": 200}']
    log = write(tmp_path / "case.log", docs)
    code, out, _ = run(str(log), "--by", "trace_id", "--where", "status=500")
    assert code == 0
    assert sorted(r["trace_id"] for r in jsonl(out)) == ["A", "B"]


# ------------------------------------------------------------------------------------ names, formats


def test_short_ecs_and_raw_names_and_units(tmp_path: Path) -> None:
    docs = [{"latency": 250, "uri": "/a?x=1", "status": 200}, {"request_time": "0.5", "path": "/a", "status": 201}]
    log = write(tmp_path / "units.log", [orjson.dumps(d).decode() for d in docs])
    out = jsonl(run(str(log), "--by", "url.path", "--agg", "sum(request_time),sum(event.duration),sum(latency)")[1])
    assert out == [
        {"url.path": "/a", "sum(request_time)": 0.75, "sum(event.duration)": 750_000_000, "sum(latency)": 250}
    ]
    by_raw = jsonl(run(str(log), "--by", "uri")[1])
    assert sorted(by_raw, key=lambda r: str(r["uri"])) == [{"uri": "/a?x=1", "count": 1}, {"uri": None, "count": 1}]


def test_upstream_lists_are_summed_into_the_duration_as_the_consumer_indexes_them(tmp_path: Path) -> None:
    from parsers import LineParser, Parsed

    times = ["0.004, 0.002", "0.010 : 0.003", "0.1, , 0.2", "-, 0.25", "0.5", "-", "- : -", "0.1, abc", "-0.1, 0.2"]
    docs = [{"uri": f"/u{i}", "status": 502, "upstream_response_time": t} for i, t in enumerate(times)]
    docs.append({"uri": "/r", "status": 200, "request_time": "0.020", "upstream_response_time": "0.004, 0.002"})
    log = write(tmp_path / "up.log", [orjson.dumps(d).decode() for d in docs])
    out = jsonl(run(str(log), "--dialect", "nginx", "--by", "path", "--agg", "sum(event.duration)")[1])
    got = {r["path"]: r["sum(event.duration)"] for r in out}
    parser = LineParser(FieldMappingConfig(dialect="nginx"))
    want: dict[str, Any] = {}
    for d in docs:
        parsed = parser.parse(orjson.dumps(d), {"lp.type": "access", "lp.component": "web"})
        assert isinstance(parsed, Parsed)
        want[d["uri"]] = parsed.doc.get("event", {}).get("duration")
    assert want["/u0"] == 6_000_000 and want["/u1"] == 13_000_000 and want["/r"] == 20_000_000  # the sum, not the last
    assert {p: None if v is None else round(v) for p, v in got.items()} == want


def test_unknown_keys_of_the_data_can_be_used(tmp_path: Path) -> None:
    docs = [{"status": 200, "upstream": "10.0.0.1"}, {"status": 502, "upstream": "10.0.0.2"}]
    log = write(tmp_path / "u.log", [orjson.dumps(d).decode() for d in docs])
    assert jsonl(run(str(log), "--where", 'upstream~"\\.2$"', "--by", "upstream")[1]) == [
        {"upstream": "10.0.0.2", "count": 1}
    ]


def test_dialect_and_config_override_the_field_mapping(tmp_path: Path) -> None:
    docs = [{"req_path": "/x", "status": 200}, {"req_path": "/y", "path": "/z", "status": 200}]
    log = write(tmp_path / "c.log", [orjson.dumps(d).decode() for d in docs])
    cfg = tmp_path / "logpipe.yaml"
    cfg.write_text("fields:\n  keys:\n    path: [req_path]\n")
    got = jsonl(run(str(log), "--by", "path", "--config", str(cfg))[1])
    assert sorted(r["path"] for r in got) == ["/x", "/y"]
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("fields:\n  dialekt: nginx\n")
    code, _, err = run(str(log), "--config", str(bad_cfg))
    assert code == 2 and "dialekt" in err
    # nginx reads `uri` before `path`; auto reads `path` first.
    docs2 = [{"uri": "/u", "path": "/p"}]
    log2 = write(tmp_path / "n.log", [orjson.dumps(d).decode() for d in docs2])
    assert jsonl(run(str(log2), "--by", "path", "--dialect", "nginx")[1]) == [{"path": "/u", "count": 1}]
    assert jsonl(run(str(log2), "--by", "path")[1]) == [{"path": "/p", "count": 1}]


def test_csv_and_table_formats(log: Path, lines: list[str]) -> None:
    recs, _, _ = read(lines)
    code, out, _ = run(str(log), "--by", "component", "--agg", "count,p99(request_time)", "--format", "csv")
    assert code == 0
    rows = out.splitlines()
    assert rows[0] == "component,count,p99(request_time)"
    counts = {line.split(",")[0]: int(line.split(",")[1]) for line in rows[1:]}
    assert counts == {k: len(v) for k, v in group(recs, lambda r: r.component).items()}
    code, out, _ = run(str(log), "--by", "component", "--format", "table")
    header, *body = out.splitlines()
    assert header.split() == ["component", "count"] and len(body) == len(counts)
    assert len({len(line.rstrip()) for line in body}) == 1  # counts right-aligned under their header


def test_piped_output_defaults_to_json_lines(log: Path) -> None:
    code, out, _ = run(str(log), "--by", "component")
    assert code == 0 and all(isinstance(r, dict) for r in jsonl(out))


def test_sql_escape_hatch_over_logs(log: Path, lines: list[str]) -> None:
    recs, bad, _ = read(lines)
    sql = "SELECT component, count(*) AS n, max(status) AS top FROM logs WHERE status >= 500 GROUP BY 1 ORDER BY 1"
    code, out, err = run(str(log), "--sql", sql)
    assert code == 0, err
    expected = group(recs, lambda r: r.component, lambda r: (r.status or 0) >= 500)
    assert jsonl(out) == [{"component": c, "n": len(rs), "top": 503} for c, rs in sorted(expected.items())]
    assert f"{bad} malformed lines skipped" in err


def test_report_sections_equal_the_plain_python_answer(log: Path, lines: list[str]) -> None:
    code, out, err = run(str(log), "--report", "--format", "json")
    assert code == 0, err
    report = orjson.loads(out)
    recs, bad, _ = read(lines)
    assert report["summary"]["requests"] == len(recs)
    assert report["summary"]["malformed"] == bad
    by_comp = group(recs, lambda r: r.component)
    for row in report["components"]:
        rs = by_comp[row["component"]]
        assert row["requests"] == len(rs)
        assert row["errors_5xx"] == sum(1 for r in rs if (r.status or 0) >= 500)
        assert close(row["p99"], percentile(vals(rs, "request_time"), 0.99))
    statuses = Counter(r.status for r in recs)
    assert {r["status"]: r["requests"] for r in report["status"]} == {
        (None if s is None else int(s)): n for s, n in statuses.items()
    }
    assert [p["path"] for p in report["top_paths"]][:1] == [Counter(r.path for r in recs).most_common(1)[0][0]]
    minutes = Counter(r.time.replace(second=0, microsecond=0) for r in recs if r.time)
    assert [m["requests"] for m in report["per_minute"]] == [minutes[m] for m in sorted(minutes)]


def test_report_renders_one_screen(log: Path) -> None:
    code, out, _ = run(str(log), "--report")
    assert code == 0
    assert "Components" in out and "Slowest paths" in out and "Requests per minute" in out
    assert len(out.splitlines()) < 60


# -------------------------------------------------------------------------------------------- errors


def test_a_bad_expression_points_at_the_column(log: Path) -> None:
    code, out, err = run(str(log), "--where", "status>=500 and")
    assert code == 2 and out == ""
    assert "column 16" in err
    assert "status>=500 and\n" in err and "\n                 ^" in err


def test_an_unknown_field_is_named(log: Path) -> None:
    code, _, err = run(str(log), "--by", "no_such_field")
    assert code == 2
    assert "unknown field 'no_such_field'" in err and "status" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agg", "p99"], "needs a field"),
        (["--agg", "median(request_time)"], "unknown function"),
        (["--agg", "p120(request_time)"], "over 100"),
        (["--every", "soon"], "--every"),
        (["--from", "yesterday-ish"], "--from"),
        (["--format", "yaml"], "--format"),
        (["--sql", "SELEC nonsense"], "DuckDB"),
    ],
)
def test_bad_options_exit_2_with_a_reason(log: Path, args: list[str], message: str) -> None:
    code, _, err = run(str(log), *args)
    assert code == 2
    assert message in err


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "nope.log"))
    assert code == 2 and "no such file" in err
    code, _, err = run(str(tmp_path / "nope*.log"))
    assert code == 2 and "no file matches" in err


def test_a_query_that_needs_no_field_reads_the_lines_exactly(tmp_path: Path) -> None:
    log = write(tmp_path / "k.log", ['{"a": 1}', '{"b": 2}', "bad"])
    code, out, err = run(str(log))
    assert code == 0
    assert jsonl(out) == [{"count": 2}]
    assert "1 malformed line skipped, first at" in err


def test_keys_that_appear_only_after_the_sampled_lines_still_count(tmp_path: Path) -> None:
    # The first lines all use `status`/`service`, so the first pass reads only those keys; later
    # lines written as `code`/`app` must still be found (and a malformed line still counted).
    head = [orjson.dumps({"status": 200, "service": "a", "request_time": 0.1}).decode() for _ in range(1200)]
    tail = [orjson.dumps({"code": 500, "app": "b", "latency": 300}).decode() for _ in range(30)]
    log = write(tmp_path / "late.log", [*head, "{cut", *tail])
    code, out, err = run(str(log), "--by", "component,status", "--agg", "count,max(request_time)")
    assert code == 0
    assert jsonl(out) == [
        {"component": "a", "status": 200, "count": 1200, "max(request_time)": 0.1},
        {"component": "b", "status": 500, "count": 30, "max(request_time)": 0.3},
    ]
    assert "1 malformed line skipped, first at" in err and "late.log:1201" in err


def test_the_progress_path_gives_the_same_answer(log: Path) -> None:
    from logpipe.core.expr import parse
    from logpipe.core.fields import AUTO
    from logpipe.tools.query.aggregates import parse_aggs
    from logpipe.tools.query.engine import Engine, QuerySpec
    from logpipe.tools.query.inputs import resolve

    spec = QuerySpec(where=parse("status>=400"), by=("component",), aggs=tuple(parse_aggs("count,p50(request_time)")))
    quiet, _ = Engine(resolve([str(log)]), AUTO).query(spec)
    with_bar, _ = Engine(resolve([str(log)]), AUTO, progress=True).query(spec)
    assert with_bar.rows == quiet.rows and quiet.rows


def test_python_dash_m_entry_point_has_the_same_options(log: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "logpipe.tools.query", str(log), "--by", "component", "--format", "csv"],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.decode().splitlines()[0] == "component,count"
    code, out, _ = run("--help")
    assert code == 0 and "--where EXPR" in out and "--report" in out
