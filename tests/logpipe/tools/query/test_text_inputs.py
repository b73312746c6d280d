"""`logpipe query` over nginx combined and ingress-nginx upstreaminfo text logs: the consumer's fields."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
from typer.testing import CliRunner

from logpipe.cli.main import app
from tests.parsers.test_access_text import COMBINED, REDIRECTED, UPSTREAMINFO


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["query", *args])
    return result.exit_code, result.stdout, result.stderr


def test_text_logs_by_status_and_path(tmp_path: Path) -> None:
    log = tmp_path / "ingress.log"
    log.write_bytes(b"\n".join([COMBINED, UPSTREAMINFO, UPSTREAMINFO, REDIRECTED, b"custom line"]) + b"\n")
    code, out, err = run(str(log), "--by", "status,path", "--agg", "count,sum(request_time)", "--format", "json")
    assert code == 0, err
    got = map(orjson.loads, out.split("\n")[:-1])
    rows = {(r["status"], r["path"]): (r["count"], r["sum(request_time)"]) for r in got}
    assert rows == {(502, "/api/pay"): (2, 0.03), (404, "/caf\ufffd/\ufffd"): (1, None), (200, "/old"): (1, 0.02)}
    assert "1 malformed line skipped, first at" in err and ":5" in err  # a line of no known format


def test_json_files_are_not_touched(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b'{"status":200,"uri":"/a"}\n' * 4)
    code, out, err = run(str(log), "--by", "status", "--format", "json")
    assert code == 0 and err == ""
    assert Counter({r["status"]: r["count"] for r in map(orjson.loads, out.split("\n")[:-1])}) == {200: 4}
