"""Stack traces printed by real programs: Java (compiled with javac), Python, Go and Node.js.

Each program fails the way a service does (a nested cause, a chained exception, an index out of
range, an uncaught throw) and its stderr is returned exactly as the runtime wrote it. Built once per
directory; Go uses its build cache and never the network (``GOPROXY=off``, ``GOTOOLCHAIN=local``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

JAVA_SRC = """
public class Checkout {
    static void gateway() throws java.io.IOException { throw new java.io.IOException("connection reset"); }
    static void pay() {
        try { gateway(); } catch (java.io.IOException e) { throw new IllegalStateException("payment failed", e); }
    }
    public static void main(String[] args) { pay(); }
}
"""

PYTHON_SRC = """
def parse(value):
    return int(value)

def handle(value):
    try:
        parse(value)
    except ValueError as exc:
        raise RuntimeError("bad input " + repr(value)) from exc

handle("x")
"""

GO_SRC = """package main

import "fmt"

func lookup(xs []int, i int) int { return xs[i] }

func main() {
\tfmt.Println("starting")
\txs := []int{1, 2, 3}
\tfmt.Println(lookup(xs, len(xs)+2))
}
"""

NODE_SRC = """
function connect() { throw new Error("upstream timeout after 30000 ms"); }
function handler() { connect(); }
handler();
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=300, env={**os.environ, **(env or {})})


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/local/go/bin/{name}" if name == "go" else None)
    if path is None or not Path(path).exists():
        raise AssertionError(f"{name} is not installed — the multi-line tests run a real {name} program")
    return path


def java_trace(work: Path) -> bytes:
    (work / "Checkout.java").write_text(JAVA_SRC)
    compiled = _run([_tool("javac"), "Checkout.java"], work)
    assert compiled.returncode == 0, compiled.stderr
    return _stderr(_run([_tool("java"), "-cp", str(work), "Checkout"], work))


def python_trace(work: Path) -> bytes:
    (work / "worker.py").write_text(PYTHON_SRC)
    return _stderr(_run([_tool("python3"), "worker.py"], work))


def go_trace(work: Path) -> bytes:
    (work / "main.go").write_text(GO_SRC)
    env = {"GOPROXY": "off", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GO111MODULE": "off"}
    built = _run([_tool("go"), "build", "-o", "panics", "main.go"], work, env)
    assert built.returncode == 0, built.stderr
    return _stderr(_run([str(work / "panics")], work))


def node_trace(work: Path) -> bytes:
    (work / "server.js").write_text(NODE_SRC)
    return _stderr(_run([_tool("node"), "server.js"], work))


def _stderr(proc: subprocess.CompletedProcess[bytes]) -> bytes:
    assert proc.returncode != 0, "the program was meant to fail"
    return proc.stderr.rstrip(b"\n")


def real_traces(work: Path) -> dict[str, bytes]:
    """name -> the stderr of each failing program (no trailing newline)."""
    out: dict[str, bytes] = {}
    for name, make in (("java", java_trace), ("python", python_trace), ("go", go_trace), ("node", node_trace)):
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        out[name] = make(d)
    return out
