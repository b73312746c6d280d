"""A TLS-terminating proxy in front of the local Elasticsearch that demands credentials.

The Elasticsearch distribution served here (the integ-test-zip) has no security module, so https,
basic auth and API keys cannot be switched on in Elasticsearch itself. This proxy stands in for
that part only: it terminates TLS with a certificate from the dev CA, answers a request without
valid credentials the way Elasticsearch's security does (401, ``security_exception``,
``WWW-Authenticate``), and forwards every other request unchanged to the real Elasticsearch. Ours
(aiohttp, already a dependency) rather than nginx: it runs inside the test process with no package
to install, and it checks an ``ApiKey`` header against a key, which nginx cannot without scripting.

``python -m logpipe.dev.services.es_proxy --upstream http://127.0.0.1:9200 --port 9243 --dir DIR``
runs it by hand (credentials and certificates are written to DIR).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import secrets
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from logpipe.dev.services.tls import CertFiles, ensure_ca, fingerprint_sha256, issue

USER = "logpipe"
_HOP = {"host", "authorization", "connection", "keep-alive", "transfer-encoding", "content-length",
        "accept-encoding", "content-encoding"}


@dataclass(frozen=True)
class SecuredEs:
    """How to reach Elasticsearch through the proxy (secrets only as files)."""

    url: str
    ca_file: Path
    fingerprint: str
    username: str
    password_file: Path
    api_key_file: Path


def _credentials(folder: Path) -> tuple[str, str]:
    """The password and the encoded API key (``base64(id:key)``, as Elasticsearch returns it)."""
    folder.mkdir(parents=True, exist_ok=True)
    pw, key = folder / "es-password", folder / "es-api-key"
    if not pw.exists():
        pw.write_text(secrets.token_urlsafe(16))
    if not key.exists():
        key.write_text(base64.b64encode(f"logpipe-key:{secrets.token_urlsafe(20)}".encode()).decode())
    return pw.read_text().strip(), key.read_text().strip()


class EsAuthProxy:
    """The aiohttp application: check credentials, forward to ``upstream``."""

    def __init__(self, upstream: str, password: str, api_key: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.set_password(password)
        self._api_key = "ApiKey " + api_key
        self._session: aiohttp.ClientSession | None = None
        self.refused = 0

    def set_password(self, password: str) -> None:
        """Change the user's password (a rotation: the old one is refused from now on)."""
        self._basic = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()

    def _authorised(self, header: str) -> bool:
        return any(hmac.compare_digest(header.encode(), ok.encode()) for ok in (self._basic, self._api_key))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request.headers.get("Authorization", "")):
            self.refused += 1
            body = {"error": {"type": "security_exception", "reason": f"unable to authenticate for REST request "
                              f"[{request.path}]"}, "status": 401}
            return web.json_response(body, status=401,
                                     headers={"WWW-Authenticate": 'Basic realm="security", charset="UTF-8"'})
        if self._session is None:
            self._session = aiohttp.ClientSession()  # decompresses; the reply goes out plain
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        data = await request.read()
        async with self._session.request(request.method, self.upstream + request.rel_url.path_qs,
                                         headers=headers, data=data or None) as up:
            payload = await up.read()
            out = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
            return web.Response(status=up.status, body=payload, headers=out)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _tls(folder: Path) -> tuple[ssl.SSLContext, CertFiles]:
    ca = ensure_ca(folder / "tls", "logpipe dev Elasticsearch CA")
    cert = issue(folder / "tls", "es-proxy", ["localhost"], ca)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert.cert, cert.key)
    return ctx, cert


class ProxyThread:
    """The proxy on its own event loop in a daemon thread (a test fixture's lifetime)."""

    def __init__(self, upstream: str, folder: Path, port: int = 0) -> None:
        self.folder = folder
        password, api_key = _credentials(folder / "secrets")
        self.proxy = EsAuthProxy(upstream, password, api_key)
        self._ctx, self._cert = _tls(folder)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="es-auth-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self.started: SecuredEs | None = None  # what start() returned

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.proxy.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))  # bound here, so port 0 tells which port it got
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=self._ctx).start()

    def start(self) -> SecuredEs:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Elasticsearch auth proxy did not start")
        s = self.folder / "secrets"
        self.started = SecuredEs(
            url=f"https://localhost:{self._port}",
            ca_file=self._cert.ca,
            fingerprint=fingerprint_sha256(self._cert.cert),
            username=USER,
            password_file=s / "es-password",
            api_key_file=s / "es-api-key",
        )
        return self.started

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            await self.proxy.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", default="http://127.0.0.1:9200")
    ap.add_argument("--port", type=int, default=9243)
    ap.add_argument("--dir", type=Path, required=True, help="where certificates and credential files go")
    args = ap.parse_args()
    proxy = ProxyThread(args.upstream, args.dir, args.port)
    info = proxy.start()
    print(f"url={info.url} ca_file={info.ca_file} fingerprint={info.fingerprint} username={info.username} "
          f"password_file={info.password_file} api_key_file={info.api_key_file}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
