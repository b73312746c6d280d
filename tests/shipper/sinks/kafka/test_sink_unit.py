"""The Kafka sink's ack path on an in-memory client: a batch is DELIVERED only when every record batch is."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRecord, LineRun, SourceMeta, decode_headers
from shipper.sinks.kafka.config import KafkaSinkConfig
from shipper.sinks.kafka.service import partition_of, status_of
from shipper.sinks.kafka.sink import KafkaSink


class MemoryBatch:
    """A record batch with room for ``room`` records (aiokafka's ``BatchBuilder`` contract)."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []

    def append(self, *, key: bytes, value: bytes, timestamp: int | None, headers: list[tuple[str, bytes]]) -> Any:
        if len(self.records) >= self.room or len(value) > 1000:
            return None
        self.records.append((key, value, headers))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class MemoryClient:
    """Holds every handed-over batch and its future until the test settles it."""

    def __init__(self, room: int = 100, partitions: int = 3) -> None:
        self.room = room
        self.parts = list(range(partitions))
        self.sent: list[tuple[str, int, MemoryBatch, asyncio.Future[Any]]] = []
        self.connected = False
        self.refuse: Exception | None = None

    def mark(self, connected: bool) -> None:
        self.connected = connected

    status_of = staticmethod(status_of)

    async def start(self) -> None:
        self.connected = True

    def create_batch(self) -> MemoryBatch:
        return MemoryBatch(self.room)

    async def send_batch(self, batch: MemoryBatch, topic: str, partition: int) -> asyncio.Future[Any]:
        if self.refuse is not None:
            raise self.refuse
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, batch, fut))
        await asyncio.sleep(0)  # a hand-over may wait for room in the client
        return fut

    async def partitions(self, topic: str) -> list[int]:
        return self.parts

    async def close(self) -> None:
        self.connected = False

    def settle(self, i: int, exc: BaseException | None = None) -> None:
        fut = self.sent[i][3]
        if exc is None:
            fut.set_result(object())
        else:
            fut.set_exception(exc)

    def values(self) -> list[bytes]:
        return [v for _t, _p, b, _f in self.sent for _k, v, _h in b.records]


def run_of(n: int, component: str = "web", flags: tuple[str, ...] = (), size: int = 0) -> LineRun:
    m = SourceMeta("node-1", "ns", "pod", "uid", "c", component, "access", "/a.log", "fingerprint::1")
    values = [(b"%s line %d " % (component.encode(), i)).ljust(size, b"x") for i in range(n)]
    return LineRun(m, 0, values, 1700000000000, sum(map(len, values)), flags)


async def started(client: MemoryClient) -> KafkaSink:
    sink = KafkaSink(KafkaSinkConfig(), client)
    await sink.start()
    return sink


async def test_a_batch_is_delivered_only_when_its_last_record_batch_is_acknowledged() -> None:
    client = MemoryClient(room=4)
    sink = await started(client)
    send = asyncio.create_task(sink.send_runs([run_of(6), run_of(3, "api")]))
    await asyncio.sleep(0.01)
    assert len(client.sent) == 3  # 9 records, batches of 4 per partition, cut when full
    assert all(b.record_count() <= 4 for _t, _p, b, _f in client.sent)
    assert sorted(client.values()) == sorted(run_of(6).values + run_of(3, "api").values)
    web = [v for v in client.values() if v.startswith(b"web")]
    assert web == run_of(6).values  # a file's lines in file order
    client.settle(0)
    client.settle(2)
    await asyncio.sleep(0.01)
    assert not send.done()  # one record batch still unacknowledged: nothing may be checkpointed
    client.settle(1)
    assert await asyncio.wait_for(send, 1) is BatchStatus.DELIVERED
    assert sink.connected


async def test_a_component_goes_to_its_murmur2_partition() -> None:
    client = MemoryClient(partitions=4)
    sink = await started(client)
    send = asyncio.create_task(sink.send_runs([run_of(1, c) for c in ("web", "api", "db", "cache")]))
    await asyncio.sleep(0.01)
    for i in range(len(client.sent)):
        client.settle(i)
    assert await send is BatchStatus.DELIVERED
    for _t, partition, batch, _f in client.sent:
        assert {partition_of(k, client.parts) for k, _v, _h in batch.records} == {partition}


async def test_one_failed_record_batch_fails_the_batch_and_a_timeout_is_transient() -> None:
    client = MemoryClient(room=2)
    sink = await started(client)
    send = asyncio.create_task(sink.send_runs([run_of(5)]))
    await asyncio.sleep(0.01)
    client.settle(0)
    client.settle(1, KafkaTimeoutError())
    client.settle(2)
    assert await asyncio.wait_for(send, 1) is BatchStatus.ERRORED
    assert not sink.connected  # /readyz tells the truth until a delivery succeeds again


async def test_a_record_the_broker_refuses_for_good_rejects_the_batch() -> None:
    client = MemoryClient()
    sink = await started(client)
    send = asyncio.create_task(sink.send_runs([run_of(2)]))
    await asyncio.sleep(0.01)
    client.settle(0, MessageSizeTooLargeError())
    assert await asyncio.wait_for(send, 1) is BatchStatus.REJECTED


async def test_a_record_larger_than_a_batch_is_rejected_before_it_is_sent() -> None:
    client = MemoryClient()
    sink = await started(client)
    assert await sink.send([LineRecord(run_of(1).meta, 0, b"y" * 5000, 0)]) is BatchStatus.REJECTED
    assert not client.sent


async def test_a_hand_over_that_fails_is_errored_and_marks_the_sink_disconnected() -> None:
    client = MemoryClient()
    sink = await started(client)
    client.refuse = KafkaTimeoutError()
    assert await sink.send_runs([run_of(1)]) is BatchStatus.ERRORED
    assert not sink.connected


async def test_not_started_is_errored_and_nothing_is_sent() -> None:
    client = MemoryClient()
    sink = KafkaSink(KafkaSinkConfig(), client)
    assert await sink.send_runs([run_of(1)]) is BatchStatus.ERRORED
    assert not client.sent and not sink.connected


async def test_dead_letters_go_to_the_dead_letter_topic_with_their_flags() -> None:
    client = MemoryClient()
    sink = await started(client)
    send = asyncio.create_task(sink.send_runs([run_of(1, flags=("deadletter", "reason:line_too_long"))]))
    await asyncio.sleep(0.01)
    client.settle(0)
    assert await asyncio.wait_for(send, 1) is BatchStatus.DELIVERED
    ((topic, _p, batch, _f),) = client.sent
    ((_k, _v, headers),) = batch.records
    assert topic == "logpipe-deadletter" and decode_headers(headers)["lp.flags"] == "deadletter,reason:line_too_long"


async def test_cancelling_a_send_leaves_it_unacknowledged() -> None:
    client = MemoryClient()
    sink = await started(client)
    send = asyncio.create_task(sink.send_runs([run_of(2)]))
    await asyncio.sleep(0.01)
    send.cancel()
    await asyncio.gather(send, return_exceptions=True)
    assert send.cancelled()
    client.settle(0)  # the batch may still arrive: it is resent, and the consumer's ids dedupe it


async def test_concurrent_batches_are_handed_over_in_call_order() -> None:
    client = MemoryClient(room=1)  # every record is its own batch: each hand-over yields to the loop
    sink = await started(client)
    first = asyncio.create_task(sink.send_runs([run_of(3)]))
    second = asyncio.create_task(sink.send_runs([run_of(3, "api")]))
    await asyncio.sleep(0.05)
    assert client.values() == run_of(3).values + run_of(3, "api").values
    for i in range(len(client.sent)):
        client.settle(i)
    assert await asyncio.wait_for(asyncio.gather(first, second), 1) == [BatchStatus.DELIVERED] * 2
