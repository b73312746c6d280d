"""Synthetic single-line JSON access logs for the `logpipe query` benchmark (about 330 bytes a line).

    python bench/access_log_gen.py OUT.log --lines 1000000 [--seed 1]

Deterministic for a seed, so a cached file is the same file on every machine.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

COMPONENTS = ("pay-gw", "order-svc", "user-svc", "search-api", "cart-svc", "notify-worker")
PATHS = (
    "/api/pay/create",
    "/api/pay/query",
    "/api/order/list",
    "/api/order/detail",
    "/api/user/profile",
    "/api/search",
    "/api/cart/add",
    "/healthz",
    "/static/app.js",
    "/api/notify/send",
)
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
STATUSES = (200,) * 40 + (201, 204, 301, 304, 400, 401, 403, 404, 404, 429, 499, 500, 502, 503, 504)
AGENTS = (
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120.0 Mobile",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
    "curl/8.5.0",
)
START = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


def line(rng: random.Random, i: int) -> bytes:
    """One access-log line in the in-house framework's dialect (request_time in seconds)."""
    comp = rng.choice(COMPONENTS)
    status = rng.choice(STATUSES)
    ts = START + timedelta(milliseconds=i * 3 + rng.randrange(3))
    rt = round(rng.lognormvariate(-3.5, 1.0) * (4 if status >= 500 else 1), 4)
    doc = {
        "time": ts.isoformat(timespec="milliseconds"),
        "service": comp,
        "namespace": "prod",
        "pod": f"{comp}-7d9f8c6b5-{rng.randrange(16**5):05x}",
        "level": "error" if status >= 500 else "info",
        "method": rng.choice(METHODS),
        "path": rng.choice(PATHS),
        "status": status,
        "request_time": rt,
        "bytes": rng.randrange(50, 20000),
        "client_ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "user_agent": rng.choice(AGENTS),
        "trace_id": f"{rng.getrandbits(128):032x}",
    }
    return orjson.dumps(doc)


def generate(path: Path, lines: int, seed: int = 1) -> Path:
    """Write ``lines`` lines to ``path`` (via a temp file, so a cache never holds half a file)."""
    rng = random.Random(seed)
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as f:
        batch: list[bytes] = []
        for i in range(lines):
            batch.append(line(rng, i))
            if len(batch) == 10_000:
                f.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            f.write(b"\n".join(batch) + b"\n")
    tmp.replace(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    generate(args.out, args.lines, args.seed)


if __name__ == "__main__":
    main()
