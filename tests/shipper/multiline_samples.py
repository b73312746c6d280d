"""Stack traces as the runtimes print them (unit-test fixtures; the integration test runs the real programs)."""

from __future__ import annotations

JAVA = b"""Exception in thread "main" java.lang.IllegalStateException: checkout failed
\tat shop.Checkout.pay(Checkout.java:12)
\tat shop.Checkout.main(Checkout.java:5)
Caused by: java.io.IOException: connection reset
\tat shop.Gateway.call(Gateway.java:40)
\tat shop.Checkout.pay(Checkout.java:10)
\t... 1 more"""

LOGBACK = b"""2026-12-01 21:00:00.123 ERROR [main] shop.App - payment failed
java.lang.RuntimeException: card declined
\tat shop.App.run(App.java:21)
\tat shop.App.main(App.java:9)"""

PYTHON = b"""Traceback (most recent call last):
  File "/app/worker.py", line 8, in handle
    int(value)
ValueError: invalid literal for int() with base 10: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/worker.py", line 12, in <module>
    handle("x")
  File "/app/worker.py", line 10, in handle
    raise RuntimeError("bad input") from None
RuntimeError: bad input"""

GO = b"""panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.lookup(...)
\t/app/main.go:9
main.main()
\t/app/main.go:14 +0x1d

goroutine 6 [chan receive]:
main.worker(0xc000012345)
\t/app/main.go:20 +0x45
created by main.main in goroutine 1
\t/app/main.go:13 +0x25"""

NODE = b"""/app/server.js:3
  throw new Error("upstream timeout");
  ^

Error: upstream timeout
    at Object.<anonymous> (/app/server.js:3:9)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)
    at node:internal/main/run_main_module:23:47

Node.js v18.19.0"""

TRACES = {"java": JAVA, "logback": LOGBACK, "python": PYTHON, "go": GO, "node": NODE}
