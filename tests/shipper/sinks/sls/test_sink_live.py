"""The SLS sink against the local SLS server: the SDK's real requests, signatures and lz4 bodies."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from logpipe.core.delivery import BatchStatus
from logpipe.dev.services.sls import SlsServer
from shipper.sinks.sls.config import SlsSinkConfig
from shipper.sinks.sls.service import SlsRequestError
from shipper.sinks.sls.sink import SlsSink
from tests.shipper.sinks.sls.stories import lines, meta, pull_all, sdk_client

pytestmark = pytest.mark.integration

KEY_ID, SECRET = "test-ak", "test-secret-0123456789"


@pytest.fixture
async def sls() -> AsyncIterator[SlsServer]:
    server = SlsServer({KEY_ID: SECRET})
    await server.start()
    yield server
    await server.stop()


def config(server: SlsServer, **over: object) -> SlsSinkConfig:
    values: dict[str, object] = {
        "endpoint": server.endpoint,
        "project": "shop-prod",
        "access_key_id": KEY_ID,
        "access_key_secret": SECRET,
        "request_timeout": 5,
        **over,
    }
    return SlsSinkConfig.model_validate(values)


@pytest.fixture
async def sink(sls: SlsServer) -> AsyncIterator[SlsSink]:
    s = SlsSink(config(sls))
    await s.start()
    yield s
    await s.close()


async def read_back(server: SlsServer, logstore: str, secret: str = SECRET) -> list[dict[str, object]]:
    client = sdk_client(server.endpoint, KEY_ID, secret)
    return await asyncio.to_thread(pull_all, client, "shop-prod", logstore)


async def test_lines_and_tags_arrive_as_written(sls: SlsServer, sink: SlsSink) -> None:
    cart, pay = meta("cart-1"), meta("pay-7")
    batch = [*lines(cart, 6), *lines(pay, 4, start_offset=1000)]
    assert await sink.send(batch) is BatchStatus.DELIVERED
    assert sls.put_compressions == ["lz4", "lz4"]  # one LogGroup per file, lz4-compressed and verified

    got = await read_back(sls, "logpipe-access")
    assert len(got) == len(batch)
    # The two files' LogGroups are sent concurrently, so they may be stored in either order;
    # within a group the lines keep their order.
    by_file = {m.file_id: [log for log in got if log["__tag__:file_id"] == m.file_id] for m in (cart, pay)}
    got = by_file[cart.file_id] + by_file[pay.file_id]
    for record, log in zip(batch, got, strict=True):
        m = record.meta
        assert log["content"] == record.value  # the bytes as read, even invalid UTF-8
        assert log["offset"] == str(record.offset).encode()
        assert log.get("flags") == (b"truncated" if record.flags else None)
        assert log["__time__"] == record.read_ts_ms // 1000
        assert (log["__topic__"], log["__source__"]) == (m.component, m.node)
        tags = {k.removeprefix("__tag__:"): v for k, v in log.items() if str(k).startswith("__tag__:")}
        assert {k: v for k, v in tags.items() if not k.startswith("__")} == {
            "namespace": m.namespace,
            "pod": m.pod,
            "pod_uid": m.pod_uid,
            "container": m.container,
            "component": m.component,
            "node": m.node,
            "log_type": m.log_type,
            "path": m.path,
            "file_id": m.file_id,
        }


async def test_wrong_key_is_errored_and_keeps_the_lines(sls: SlsServer) -> None:
    # ERRORED, not REJECTED: a wrong key is a configuration fault that a fixed key cures; dead-lettering
    # would discard every line shipped until then, retrying keeps them behind the checkpoint.
    bad = SlsSink(config(sls, access_key_secret="wrong-secret"))
    await bad.start()  # SLS answered (401 SignatureNotMatch): started, but not connected
    assert not bad.connected
    batch = lines(meta(), 3)
    assert await bad.send(batch) is BatchStatus.ERRORED
    assert not bad.connected
    await bad.close()
    assert await read_back(sls, "logpipe-access") == []

    good = SlsSink(config(sls))
    await good.start()
    assert await good.send(batch) is BatchStatus.DELIVERED
    await good.close()
    assert len(await read_back(sls, "logpipe-access")) == 3


async def test_unavailable_server_is_errored_then_a_retry_succeeds(sls: SlsServer, sink: SlsSink) -> None:
    batch = lines(meta(), 5)
    sls.fail_next(1, 503, "ServerBusy", "try later")
    assert await sink.send(batch) is BatchStatus.ERRORED
    assert not sink.connected
    assert await sink.send(batch) is BatchStatus.DELIVERED
    assert sink.connected
    got = await read_back(sls, "logpipe-access")
    assert [log["offset"] for log in got] == [str(r.offset).encode() for r in batch]  # once each


async def test_throttling_is_errored_and_bad_data_rejected(sls: SlsServer, sink: SlsSink) -> None:
    sls.fail_next(1, 403, "WriteQuotaExceed", "shard write quota exceed")
    assert await sink.send(lines(meta(), 2)) is BatchStatus.ERRORED
    assert sink.connected  # SLS answered: throttled, not down
    sls.fail_next(1, 400, "PostBodyInvalid", "bad body")
    assert await sink.send(lines(meta(), 2)) is BatchStatus.REJECTED


async def test_start_raises_when_nothing_answers(sls: SlsServer) -> None:
    await sls.stop()
    with pytest.raises(SlsRequestError) as err:
        await SlsSink(config(sls)).start()
    assert (err.value.code, err.value.http_status) == ("LogRequestError", 0)


async def test_stopped_server_is_errored_quickly(sls: SlsServer, sink: SlsSink) -> None:
    await sls.stop()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await sink.send(lines(meta(), 2)) is BatchStatus.ERRORED
    assert loop.time() - started < 3  # one attempt, not the SDK's ten one-second retries


async def test_many_batches_in_flight(sls: SlsServer) -> None:
    sink = SlsSink(config(sls, max_in_flight=2, max_group_lines=50))
    await sink.start()
    batches = [lines(meta(f"pod-{i}"), 120, text="x" * 200) for i in range(8)]
    statuses = await asyncio.gather(*(sink.send(b) for b in batches))
    await sink.close()
    assert set(statuses) == {BatchStatus.DELIVERED}
    got = await read_back(sls, "logpipe-access")
    assert sorted((log["__tag__:file_id"], log["offset"]) for log in got) == sorted(
        (r.meta.file_id, str(r.offset).encode()) for b in batches for r in b
    )


async def test_a_rotated_sts_token_file_is_used_without_a_restart(tmp_path: Path) -> None:
    server = SlsServer({KEY_ID: SECRET}, tokens={KEY_ID: "sts-token-1"})
    await server.start()
    secret_file, token_file = tmp_path / "secret", tmp_path / "token"
    secret_file.write_text(SECRET + "\n")
    token_file.write_text("sts-token-1\n")
    cfg = config(server, access_key_secret=None, access_key_secret_file=str(secret_file),
                 security_token_file=str(token_file))
    sink = SlsSink(cfg)
    try:
        await sink.start()
        cart = meta("cart-1")
        assert await sink.send(lines(cart, 2)) is BatchStatus.DELIVERED
        server.tokens[KEY_ID] = "sts-token-2"  # STS issued a new token; the old one is refused
        assert await sink.send(lines(cart, 2, start_offset=100)) is not BatchStatus.DELIVERED
        # The Secret volume is updated (a symlink swap = a new file): the next request uses it.
        new = tmp_path / "token.new"
        new.write_text("sts-token-2\n")
        os.replace(new, token_file)
        assert await sink.send(lines(cart, 2, start_offset=200)) is BatchStatus.DELIVERED
        got = await asyncio.to_thread(pull_all, sdk_client(server.endpoint, KEY_ID, SECRET, "sts-token-2"),
                                      "shop-prod", "logpipe-access")
    finally:
        await sink.close()
        await server.stop()
    assert len(got) == 4  # the batch sent with the stale token was refused, not stored
