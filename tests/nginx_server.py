"""A real nginx (Debian's package) on a loopback port with its own config, and raw HTTP requests to it.

The tests start it with a JSON ``escape=json`` log format (the fields people log) and nginx's
``combined`` text format, writing into a pod's EmptyDir; requests are sent over plain sockets so a
test can put any bytes on the wire (a Latin-1 ``User-Agent``, raw bytes in the path, a request line
nginx answers 400). ``scripts/test.sh`` installs the package when it is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

JSON_FORMAT = (
    '{"time_iso8601":"$time_iso8601","msec":"$msec","remote_addr":"$remote_addr",'
    '"request_method":"$request_method","uri":"$uri","args":"$args","status":"$status",'
    '"body_bytes_sent":"$body_bytes_sent","request_time":"$request_time",'
    '"upstream_response_time":"$upstream_response_time","upstream_status":"$upstream_status",'
    '"http_user_agent":"$http_user_agent","request":"$request"}'
)
COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent'
            ' "$http_referer" "$http_user_agent"')


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        raise AssertionError("nginx is not installed — fix: run scripts/test.sh (it installs Debian's nginx)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """nginx in the foreground, logging ``json_log`` (and ``text_log`` when given) as it serves."""

    def __init__(self, workdir: Path, json_log: Path, text_log: Path | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.json_log = json_log
        self.text_log = text_log
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        w = self.workdir
        logs = f"access_log {self.json_log} lpjson;"
        if self.text_log is not None:
            logs += f" access_log {self.text_log} lpcombined;"
        temp = " ".join(f"{k}_temp_path {w}/tmp/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return f"""
worker_processes 1;
daemon off;
pid {w}/nginx.pid;
error_log {w}/error.log warn;
user root;
events {{ worker_connections 64; }}
http {{
  access_log off;
  {temp}
  log_format lpjson escape=json '{JSON_FORMAT}';
  log_format lpcombined '{COMBINED}';
  server {{
    listen 127.0.0.1:{self.port};
    {logs}
    location / {{ return 200 "ok\\n"; }}
    location = /redirect {{ return 301 /target; }}
    location = /moved {{ return 302 /target; }}
    location /missing {{ return 404; }}
    location /up {{ proxy_pass http://127.0.0.1:{self.port}/backend; }}
    location /backend {{ return 200 "backend\\n"; }}
  }}
}}
"""

    def start(self) -> None:
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        err = (self.workdir / "nginx.stderr").open("ab")
        self.proc = subprocess.Popen([nginx_binary(), "-c", str(conf), "-p", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {(self.workdir / 'nginx.stderr').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not listen within 10 s")

    def request(self, raw: bytes) -> int:
        """Send ``raw`` (a whole HTTP request, any bytes) and return the response's status code."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(raw)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return int(data.split(b" ", 2)[1])

    def get(self, target: bytes, headers: dict[bytes, bytes] | None = None) -> int:
        lines = [b"GET " + target + b" HTTP/1.1", b"Host: shop.example", b"Connection: close"]
        lines += [k + b": " + v for k, v in (headers or {}).items()]
        return self.request(b"\r\n".join(lines) + b"\r\n\r\n")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def odd_requests(n: int) -> list[tuple[bytes, dict[bytes, bytes]] | bytes]:
    """``n`` requests cycling through what real clients send: plain, Latin-1 and raw bytes, quotes,
    backslashes, unicode, 400s, redirects, 404s, a proxied request. A bytes item is a raw request."""
    shapes: list[tuple[bytes, dict[bytes, bytes]] | bytes] = [
        (b"/api/orders?id=42", {b"User-Agent": b"okhttp/4.12"}),
        (b"/caf\xe9/\xff", {b"User-Agent": b"Mozilla/5.0 (Windows; \xe9t\xe9)"}),  # raw bytes >= 0x80
        (b"/x%ff%fe", {}),  # percent-decoded into bytes that are not UTF-8
        (b"/q%22uote%5Cslash", {b"User-Agent": b'say "hi" \\ back'}),
        (b"/%E5%81%A5%E5%BA%B7", {b"User-Agent": "curl/8 ☃".encode()}),  # unicode, valid UTF-8
        b"GARBAGE\r\n\r\n",  # 400, empty $uri
        (b"/../../etc/passwd", {}),  # 400, empty $uri
        (b"/redirect", {}),
        (b"/moved?from=a", {}),
        (b"/missing/thing", {b"User-Agent": b"\xc3"}),  # a truncated UTF-8 sequence
        (b"/up", {}),
        (b"/", {b"Referer": b"https://shop.example/"}),
    ]
    return [shapes[i % len(shapes)] for i in range(n)]
