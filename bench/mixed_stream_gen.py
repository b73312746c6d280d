"""A mixed stream as one node's shipper sends it: 40 % JSON access, 40 % CRI stdout (some of it joined
stack traces), 15 % app lines, 5 % spans — for ``consumer_bench.py --mix``.

Each kind comes from its own files (5 pods), with the shipper's metadata and offsets; a stack trace
is ONE record carrying its first line's offset and the flag ``multiline``, as ``shipper/multiline.py``
sends it (a CRI ``F`` record whose content holds the trace's lines).
"""

from __future__ import annotations

import random
import time

import orjson
from access_log_gen import line as access_line

from logpipe.core.envelope import LineRecord, SourceMeta

SHARES = (("access", 40), ("stdout", 40), ("app", 15), ("trace", 5))
TRACE_EVERY = 25  # one stdout record in 25 is a joined Java stack trace (~1.6 KB)

_JAVA = (
    "java.lang.IllegalStateException: payment {i} failed\n"
    "\tat pay.Checkout.pay(Checkout.java:52)\n\tat pay.Checkout.handle(Checkout.java:31)\n"
    "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)\n"
    "\tat jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)\n"
    "\tat org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)\n"
    "Caused by: java.net.SocketTimeoutException: Read timed out\n"
    "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)\n"
    "\tat pay.Gateway.call(Gateway.java:77)\n\t... 4 more"
)
_LEVELS = ("INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR")


def _meta(kind: str, k: int, run: str) -> SourceMeta:
    name = {"access": "access.log", "stdout": "0.log", "app": "app.log", "trace": "trace.log"}[kind]
    return SourceMeta("node-1", "prod", f"pay-gw-{k}", f"uid-{k}", "app", "pay-gw", kind,
                      f"/var/log/pay-gw-{k}/{name}", f"fingerprint::{run}-{kind}-{k}")


def _stdout(rng: random.Random, i: int, now: str) -> tuple[bytes, tuple[str, ...]]:
    if i % TRACE_EVERY == 0:
        content = f"{now} ERROR [http-nio-8080-exec-{i % 8}] pay.App - checkout failed\n" + _JAVA.format(i=i)
        return f"{now} stderr F {content}".encode(), ("multiline",)
    if rng.random() < 0.5:
        msg = orjson.dumps({"level": rng.choice(_LEVELS).lower(), "msg": f"handled order {i}", "order": i,
                            "trace_id": f"{rng.getrandbits(128):032x}", "latency_ms": rng.randrange(1, 900)})
        return f"{now} stdout F ".encode() + msg, ()
    return f"{now} stdout F {now[:23]} {rng.choice(_LEVELS)} [main] pay.Worker - processed batch {i}".encode(), ()


def _app(rng: random.Random, i: int, now_ms: int) -> bytes:
    return orjson.dumps({"ts": now_ms - rng.randrange(0, 5000), "level": rng.choice(_LEVELS).lower(),
                         "logger": "pay.Ledger", "msg": f"ledger entry {i} posted", "amount": rng.randrange(1, 10**6),
                         "trace_id": f"{rng.getrandbits(128):032x}"})


def _span(rng: random.Random, i: int, now_ns: int) -> bytes:
    start = now_ns - rng.randrange(0, 5 * 10**9)
    return orjson.dumps({"traceId": f"{rng.getrandbits(128):032x}", "spanId": f"{rng.getrandbits(64):016x}",
                         "parentSpanId": f"{rng.getrandbits(64):016x}", "name": f"GET /api/pay/{i % 50}",
                         "kind": "SERVER", "service": "pay-gw", "startTimeUnixNano": start,
                         "endTimeUnixNano": start + rng.randrange(10**5, 10**9), "status": {"code": "OK"},
                         "attributes": {"http.status_code": 200, "http.method": "GET"}})


def make_mixed_records(n: int, run: str) -> list[LineRecord]:
    """``n`` records in the shares above, interleaved as a node's shipper would send them."""
    rng = random.Random(11)
    kinds = [kind for kind, share in SHARES for _ in range(share)]
    metas = {(kind, k): _meta(kind, k, run) for kind, _ in SHARES for k in range(5)}
    offsets = dict.fromkeys(metas, 0)
    now_ms = int(time.time() * 1000)
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000)) + ".123456789Z"
    out: list[LineRecord] = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        key = (kind, i % 5)
        flags: tuple[str, ...] = ()
        if kind == "access":
            value = access_line(rng, i)
        elif kind == "stdout":
            value, flags = _stdout(rng, i, now)
        elif kind == "app":
            value = _app(rng, i, now_ms)
        else:
            value = _span(rng, i, now_ms * 1_000_000)
        out.append(LineRecord(metas[key], offsets[key], value, now_ms, flags))
        offsets[key] += len(value) + 1  # a joined trace: the next event starts past its last line
    return out
