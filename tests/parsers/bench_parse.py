"""Parse throughput on one core: ``python -m tests.parsers.bench_parse`` (not collected by pytest)."""

from __future__ import annotations

import time

from logpipe.core.fields import FieldMappingConfig
from parsers import LineParser
from tests.parsers.stories import headers
from tests.parsers.test_access import FRAMEWORK_LINE, NGINX_LINE

CRI_JSON = b'2026-11-27T10:00:00.123456789Z stdout F {"level":"info","msg":"order created","trace_id":"abc","order":42}'
CRI_TEXT = b"2026-11-27T10:00:00.123456789Z stderr F ERROR could not reach upstream 10.0.0.7:8080 after 3 retries"
SPAN = (
    b'{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /cart","kind":2,'
    b'"startTimeUnixNano":"1795780800000000000","endTimeUnixNano":"1795780800250000000",'
    b'"attributes":[{"key":"http.method","value":{"stringValue":"GET"}}],"status":{"code":1}}'
)


def measure(name: str, parser: LineParser, line: bytes, log_type: str, n: int = 5_000, repeat: int = 15) -> None:
    """Best of ``repeat`` runs of ``n`` lines: the machine is shared, the best run is the parser's cost."""
    hdrs = headers(log_type, offset=1)
    parse = parser.parse
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            parse(line, hdrs)
        best = min(best, time.perf_counter() - start)
    print(f"{name:<22} {len(line):>4} B  {n / best:>10,.0f} lines/s  {best / n * 1e6:6.2f} us/line")


def main() -> None:
    measure("access nginx", LineParser(FieldMappingConfig(dialect="nginx")), NGINX_LINE, "access")
    measure("access framework", LineParser(FieldMappingConfig(dialect="framework")), FRAMEWORK_LINE, "access")
    measure("stdout cri json", LineParser(), CRI_JSON, "stdout")
    measure("stdout cri text", LineParser(), CRI_TEXT, "stdout")
    measure("trace otel span", LineParser(), SPAN, "trace")


if __name__ == "__main__":
    main()
