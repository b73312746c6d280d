"""`logpipe query` reads lines that are not UTF-8 as the consumer indexes them (decoded with U+FFFD)."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import orjson
from typer.testing import CliRunner

from logpipe.cli.main import app

LINES = [
    b'{"status":200,"uri":"/a","http_user_agent":"curl"}',
    b'{"status":404,"uri":"/caf\xe9","http_user_agent":"Mozilla (\xe9t\xe9)"}',
    b'{"status":400,"uri":"","http_user_agent":""}',
    b"not json \xff",
    b'{"status":404,"uri":"/caf\xe9","args":"q=\xff"}',
    b'{"status":"502","uri":"/\xc3"}',
    b'{"broken":',
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["query", *args])
    return result.exit_code, result.stdout, result.stderr


def reading(lines: list[bytes]) -> Counter[tuple[int, str]]:
    """(status, path) per line as the consumer decodes it: UTF-8 with replacement."""
    out: Counter[tuple[int, str]] = Counter()
    for line in lines:
        try:
            obj = orjson.loads(line.decode("utf-8", "replace"))
        except orjson.JSONDecodeError:
            continue
        out[(int(obj["status"]), obj["uri"])] += 1
    return out


def test_lines_not_utf8_are_counted_and_reported_not_malformed(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"\n".join(LINES) + b"\n")
    code, out, err = run(str(log), "--dialect", "nginx", "--by", "status,path", "--format", "json")
    assert code == 0, err
    got = Counter({(r["status"], r["path"]): r["count"] for r in map(orjson.loads, out.splitlines())})
    assert got == reading(LINES)
    assert got[(400, "")] == 1  # an empty $uri is the path "", as indexed
    assert "3 lines not UTF-8 decoded with replacement (U+FFFD) and counted" in err
    assert f"2 malformed lines skipped, first at {log}:4" in err


def test_compressed_and_report_and_sql(tmp_path: Path) -> None:
    log = tmp_path / "access.log.1.gz"
    log.write_bytes(gzip.compress(b"\n".join(LINES) + b"\n"))
    code, out, err = run(str(log), "--report", "--format", "json")
    assert code == 0, err
    assert orjson.loads(out)["summary"]["requests"] == 5
    assert "3 lines not UTF-8 decoded" in err
    code, out, err = run(str(log), "--sql", "SELECT count(*) AS n FROM logs")
    assert code == 0, err
    assert orjson.loads(out.splitlines()[0])["n"] == 5
    assert "2 malformed lines skipped" in err


def test_a_file_without_bad_lines_is_not_copied(tmp_path: Path) -> None:
    log = tmp_path / "ok.log"
    log.write_bytes(b'{"status":200,"uri":"/\xc3\xa9"}\n' * 3)
    code, out, err = run(str(log), "--format", "json")
    assert code == 0 and orjson.loads(out)["count"] == 3 and err == ""
