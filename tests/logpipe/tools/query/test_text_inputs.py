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


def test_access_format_chooses_the_format_as_a_shipper_rule_does(tmp_path: Path) -> None:
    from parsers import LineParser
    from tests.parsers.stories import headers

    # Mostly lines of no known format: sniffing says "not text", so only a chosen format reads the rest.
    lines = [COMBINED, b"custom 1", UPSTREAMINFO, b"custom 2", b"custom 3", REDIRECTED]
    log = tmp_path / "ingress.log"
    log.write_bytes(b"\n".join(lines) + b"\n")
    code, out, err = run(str(log), "--by", "status", "--format", "json")
    assert code == 0 and out == "" and "6 malformed lines skipped" in err
    for fmt in ("combined", "upstreaminfo"):
        code, out, err = run(str(log), "--access-format", fmt, "--by", "status", "--format", "json")
        assert code == 0, err
        got = {r["status"]: r["count"] for r in map(orjson.loads, out.split("\n")[:-1])}
        parser = LineParser()  # what the consumer indexes for a rule with this format
        docs = [parser.parse(line, headers("access", lp_format=fmt)).doc for line in lines]  # type: ignore[union-attr]
        want = Counter(d["http"]["response"]["status_code"] for d in docs if "http" in d)
        assert got == dict(want) and sum(want.values()) == (1 if fmt == "combined" else 2)
        assert f"{6 - sum(want.values())} malformed lines skipped" in err
    code, _, err = run(str(log), "--access-format", "apache")
    assert code == 2 and "--access-format" in err
