"""The consumer's client and ``logpipe search``/``trace`` against an Elasticsearch that demands https
and credentials (the real one behind ``logpipe/dev/services/es_proxy.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

import orjson
import pytest
import yaml
from elastic_transport import TlsError
from elasticsearch import AuthenticationException

from consumer.config import ElasticsearchConfig
from consumer.es_client import ElasticsearchBulk, make_client
from consumer.ports import BulkHttpError
from logpipe.core.es_connection import es_auth_options
from logpipe.dev.services.es_proxy import ProxyThread, SecuredEs

pytestmark = pytest.mark.integration


def basic(s: SecuredEs, **over: object) -> ElasticsearchConfig:
    data: dict[str, object] = {"url": s.url, "username": s.username, "password_file": str(s.password_file),
                               "ca_file": str(s.ca_file)}
    data.update(over)
    return ElasticsearchConfig.model_validate({k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize("how", ["basic+ca", "api_key+ca", "basic+fingerprint"])
async def test_the_consumer_client_authenticates_over_https(secure_es: SecuredEs, how: str) -> None:
    cfg = {
        "basic+ca": basic(secure_es),
        "api_key+ca": basic(secure_es, username=None, password_file=None, api_key_file=str(secure_es.api_key_file)),
        "basic+fingerprint": basic(secure_es, ca_file=None, ssl_fingerprint=secure_es.fingerprint),
    }[how]
    es = make_client(cfg)
    try:
        health = await es.cluster.health()  # (the integ-test-zip answers GET / with 405)
    finally:
        await es.close()
    assert health["status"] in ("green", "yellow")


async def test_a_wrong_password_is_refused_and_an_untrusted_certificate_too(
    secure_es: SecuredEs, tmp_path: Path
) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("wrong")
    es = make_client(basic(secure_es, password_file=str(wrong)))
    try:
        with pytest.raises(AuthenticationException):
            await es.cluster.health()
    finally:
        await es.close()
    es = make_client(basic(secure_es, ca_file=None))
    try:
        with pytest.raises(TlsError):
            await es.cluster.health()
    finally:
        await es.close()


def _search(secure_es: SecuredEs, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logpipe.cli.main", *args, "--es-url", secure_es.url, "--es-ca-file",
         str(secure_es.ca_file)],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )


def test_search_and_trace_take_credentials_from_flags_and_environment(secure_es: SecuredEs) -> None:
    # No index has this prefix: exit 1 (no hits) proves the request was authenticated and answered.
    prefix = ["--index-prefix", "no-such-prefix-x", "--since", "all"]
    by_flags = _search(secure_es, "search", *prefix, "--es-user", secure_es.username,
                       "--es-password-file", str(secure_es.password_file))
    assert by_flags.returncode == 1, by_flags.stderr
    by_env = _search(secure_es, "search", *prefix, env={
        "LOGPIPE_ES_API_KEY": secure_es.api_key_file.read_text().strip()})
    assert by_env.returncode == 1, by_env.stderr
    trace = _search(secure_es, "trace", "4bf92f3577b34da6a3ce929d0e0e4736", "--index-prefix", "no-such-prefix-x",
                    env={"LOGPIPE_ES_USERNAME": secure_es.username,
                         "LOGPIPE_ES_PASSWORD_FILE": str(secure_es.password_file)})
    assert trace.returncode == 1, trace.stderr
    refused = _search(secure_es, "search", *prefix)
    assert refused.returncode == 2
    assert "refused the request (401)" in refused.stderr and "fix:" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_the_consumer_uses_a_rotated_password_file_without_a_restart(
    secure_es: SecuredEs, tmp_path: Path, es_proxy_control: ProxyThread
) -> None:
    pw_file = tmp_path / "password"
    pw_file.write_text(secure_es.password_file.read_text())
    cfg = basic(secure_es, password_file=str(pw_file))
    es = make_client(cfg)
    bulk = ElasticsearchBulk(es, partial(es_auth_options, cfg))
    body = b'{"index":{"_index":"t-es-rotation"}}\n{"msg":"one"}\n'
    try:
        assert (await bulk.bulk(body))["errors"] is False
        es_proxy_control.proxy.set_password("rotated-Pa55")  # the cluster's password changed ...
        with pytest.raises(BulkHttpError) as err:
            await bulk.bulk(body)
        assert err.value.status == 401
        new = tmp_path / "password.new"  # ... and the mounted Secret follows (a new file)
        new.write_text("rotated-Pa55")
        os.replace(new, pw_file)
        assert (await bulk.bulk(body))["errors"] is False
    finally:
        es_proxy_control.proxy.set_password(secure_es.password_file.read_text().strip())
        await es.options(basic_auth=(secure_es.username, secure_es.password_file.read_text().strip())).indices.delete(
            index="t-es-rotation", ignore_unavailable=True)
        await es.close()


@pytest.mark.parametrize(("case", "expected"), [
    ("wrong-password", "refused user 'logpipe'"),
    ("untrusted-ca", "certificate verify failed"),
])
def test_the_consumer_names_a_refused_elasticsearch_in_one_line(
    secure_es: SecuredEs, tmp_path: Path, unique_name: str, case: str, expected: str
) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("not-it")
    es: dict[str, object] = {"url": secure_es.url, "username": secure_es.username}
    es |= ({"password_file": str(wrong), "ca_file": str(secure_es.ca_file)} if case == "wrong-password"
           else {"password_file": str(secure_es.password_file)})
    cfg = {"kafka": {"group_id": unique_name, "topics": [f"{unique_name}-access"]}, "elasticsearch": es,
           "index": {"prefix": unique_name}, "http": {"host": "127.0.0.1", "port": 0}}
    path = tmp_path / "consume.yaml"
    path.write_text(yaml.safe_dump(cfg))
    stderr = tmp_path / "consume.stderr"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "logpipe.cli.main", "consume", "--config", str(path)],
                                stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        line = ""
        while time.monotonic() < deadline and not line:
            line = next((ln for ln in stderr.read_text().splitlines() if "TemplatesNotInstalled" in ln), "")
            time.sleep(0.1)
        port = next(int(orjson.loads(ln)["port"]) for ln in stderr.read_text().splitlines() if "HttpListening" in ln)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3)
            status = 200
        except urllib.error.HTTPError as e:
            status = e.code
        assert proc.poll() is None  # keeps retrying
    finally:
        proc.kill()
        proc.wait(10)
    assert expected in line and "fix:" in line and secure_es.url in line, line
    assert status == 503
    assert "Traceback" not in stderr.read_text()
