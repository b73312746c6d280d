"""The local SLS server on its own: what it refuses, and the cursors of PullLogs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import lz4.block
import pytest
from aliyun.log import LogException, LogItem, PutLogsRequest
from aliyun.log.auth import AuthV1
from aliyun.log.credentials import StaticCredentialsProvider
from aliyun.log.proto import LogGroupRaw

from logpipe.dev.services.sls import SlsServer
from logpipe.dev.services.sls.auth import verify
from tests.shipper.sinks.sls.stories import sdk_client

KEY_ID, SECRET = "ak-1", "secret-1"


def signed(resource: str, body: bytes, **extra: str) -> dict[str, str]:
    """Headers of a PutLogs request signed by the SDK's own signer."""
    headers = {
        "x-log-bodyrawsize": extra.pop("raw_size", str(len(body))),
        "Content-Type": "application/x-protobuf",
        "x-log-apiversion": "0.6.0",
        "Host": "proj.127.0.0.1",
        **extra,
    }
    AuthV1(StaticCredentialsProvider(KEY_ID, SECRET, "")).sign_request("POST", resource, {}, headers, body)
    return headers


def log_group(*values: bytes) -> bytes:
    group = LogGroupRaw()
    for v in values:
        log = group.Logs.add()
        log.Time = 1795780800
        c = log.Contents.add()
        c.Key, c.Value = "content", v
    return bytes(group.SerializeToString())


def test_signature_of_the_sdk_verifies_and_tampering_does_not() -> None:
    headers = {k.lower(): v for k, v in signed("/logstores/a/shards/lb", b"body").items()}
    assert verify("POST", "/logstores/a/shards/lb", {}, headers, {KEY_ID: SECRET}) is None
    assert verify("POST", "/logstores/b/shards/lb", {}, headers, {KEY_ID: SECRET}).code == "SignatureNotMatch"  # type: ignore[union-attr]
    changed = {**headers, "x-log-bodyrawsize": "5"}
    assert verify("POST", "/logstores/a/shards/lb", {}, changed, {KEY_ID: SECRET}).code == "SignatureNotMatch"  # type: ignore[union-attr]
    unknown = verify("POST", "/logstores/a/shards/lb", {}, headers, {"other": SECRET})
    assert unknown is not None and (unknown.status, unknown.code) == (401, "Unauthorized")
    late = datetime.now(UTC) + timedelta(hours=1)
    skew = verify("POST", "/logstores/a/shards/lb", {}, headers, {KEY_ID: SECRET}, now=late)
    assert skew is not None and skew.code == "RequestTimeTooSkewed"


@pytest.fixture
async def server() -> AsyncIterator[SlsServer]:
    s = SlsServer({KEY_ID: SECRET}, auto_create=False)
    s.store.create("proj", "app")
    await s.start()
    yield s
    await s.stop()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("ok", 200, None),
        ("md5", 400, "InvalidContentMD5"),
        ("raw_size", 400, "PostBodyInvalid"),
        ("not_lz4", 400, "PostBodyInvalid"),
        ("not_a_log_group", 400, "PostBodyInvalid"),
        ("unknown_logstore", 404, "LogStoreNotExist"),
        ("unsigned", 401, "Unauthorized"),
    ],
)
async def test_put_logs_checks_the_body(server: SlsServer, case: str, status: int, code: str | None) -> None:
    raw = b"\x00\x01garbage" if case == "not_a_log_group" else log_group(b"hello")
    body = b"\xffnot lz4" if case == "not_lz4" else lz4.block.compress(raw, store_size=False)
    logstore = "missing" if case == "unknown_logstore" else "app"
    resource = f"/logstores/{logstore}/shards/lb"
    extra = {"x-log-compresstype": "lz4", "raw_size": str(len(raw) + (case == "raw_size"))}
    # "md5": a correctly signed request whose body was changed on the way.
    headers = signed(resource, body + b"x" if case == "md5" else body, **extra)
    if case == "unsigned":
        del headers["Authorization"]
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.endpoint + resource, data=body, headers=headers) as resp,
    ):
        assert resp.status == status
        if code is not None:
            assert (await resp.json())["errorCode"] == code
    assert len(server.logs("proj", "app")) == (1 if case == "ok" else 0)


@pytest.mark.integration
async def test_pull_logs_pages_with_cursors(server: SlsServer) -> None:
    client = sdk_client(server.endpoint, KEY_ID, SECRET)

    def work() -> list[int]:
        for i in range(5):
            client.put_logs(PutLogsRequest("proj", "app", "", "", [LogItem(1795780800, [("n", str(i))])]))
        cursor = client.get_cursor("proj", "app", 0, "begin").get_cursor()
        end = client.get_cursor("proj", "app", 0, "end").get_cursor()
        pages = []
        while cursor != end:
            resp = client.pull_logs("proj", "app", 0, cursor, count=2)
            pages.append(resp.get_loggroup_count())
            cursor = resp.get_next_cursor()
        return pages

    assert await asyncio.to_thread(work) == [2, 2, 1]
    assert [log.contents["n"] for log in server.logs("proj", "app")] == [b"0", b"1", b"2", b"3", b"4"]


@pytest.mark.integration
async def test_the_sdk_sees_the_service_error_json(server: SlsServer) -> None:
    client = sdk_client(server.endpoint, KEY_ID, "not-the-secret")
    with pytest.raises(LogException) as err:
        await asyncio.to_thread(client.list_logstore, "proj")
    assert (err.value.get_error_code(), err.value.get_resp_status()) == ("SignatureNotMatch", 401)
