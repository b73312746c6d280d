"""The wire format of a line: topic, key, headers and value, as the consumer reads them back."""

from __future__ import annotations

from logpipe.core import envelope as ev
from logpipe.core.envelope import LineRecord, LineRun, SourceMeta, decode_headers
from shipper.sinks.kafka.config import KafkaSinkConfig
from shipper.sinks.kafka.wire import WireFormat


def meta(component: str = "web", log_type: str = "access") -> SourceMeta:
    return SourceMeta("node-1", "default", f"{component}-7d4b9c-x2x9z", "uid-1", "web", component, log_type,
                      "/pods/uid-1/volumes/kubernetes.io~empty-dir/logs/ü.log", "fingerprint::00ff")


def run_of(values: list[bytes], offset: int = 1000, flags: tuple[str, ...] = (), topic: str = "",
           m: SourceMeta | None = None) -> LineRun:
    return LineRun(m or meta(), offset, values, 1700000000123, sum(map(len, values)), flags, topic)


def test_each_line_of_a_run_has_exactly_the_headers_of_its_line_record() -> None:
    run = run_of([b"first", b"", b"\xff\xfe not utf-8", b"last"])
    wire = WireFormat(KafkaSinkConfig())
    got = list(wire.records(run))
    assert [v for v, _ in got] == run.values
    assert [h for _, h in got] == [r.headers() for r in run.records()]
    offsets = [int(dict(h)[ev.H_OFFSET]) for _, h in got]
    assert offsets == [1000, 1006, 1007, 1020]


def test_the_consumer_decodes_the_headers_back_to_the_source() -> None:
    run = run_of([b"x"], offset=42, flags=("truncated",))
    ((value, headers),) = WireFormat(KafkaSinkConfig()).records(run)
    h = decode_headers(headers)
    m = run.meta
    assert value == b"x"
    assert h == {
        "lp.v": str(ev.ENVELOPE_VERSION),
        "lp.node": m.node, "lp.namespace": m.namespace, "lp.pod": m.pod, "lp.pod_uid": m.pod_uid,
        "lp.container": m.container, "lp.component": m.component, "lp.type": m.log_type, "lp.path": m.path,
        "lp.offset": "42", "lp.file_id": m.file_id, "lp.read_ts": "1700000000123", "lp.flags": "truncated",
    }
    assert ev.envelope_version(h) == ev.ENVELOPE_VERSION
    assert [k for k, _ in headers] == [ev.H_META, ev.H_OFFSET]  # envelope version 2: two headers a line


def test_the_lines_of_a_run_share_one_meta_value() -> None:
    """The per-run part is built once per run, not once per line (that is the point of version 2)."""
    got = list(WireFormat(KafkaSinkConfig()).records(run_of([b"a", b"b", b"c"])))
    metas = [h[0][1] for _, h in got]
    assert all(m is metas[0] for m in metas)


def test_key_is_the_component() -> None:
    assert WireFormat(KafkaSinkConfig()).key_of(run_of([b"x"], m=meta("api"))) == b"api"
    assert LineRecord(meta("api"), 0, b"", 0).key == b"api"


def test_dead_letters_go_to_the_dead_letter_topic_and_others_by_rule_or_type() -> None:
    wire = WireFormat(KafkaSinkConfig(topics={"app": "apps"}))
    assert wire.topic_of(run_of([b""], topic="custom")) == "custom"
    assert wire.topic_of(run_of([b""], m=meta(log_type="app"))) == "apps"
    assert wire.topic_of(run_of([b""])) == "logpipe-access"
    assert wire.topic_of(run_of([b""], flags=("deadletter", "reason:rejected"), topic="custom")) == "logpipe-deadletter"


def test_the_per_file_headers_follow_the_file_not_a_reused_object_id() -> None:
    wire = WireFormat(KafkaSinkConfig(), cache_limit=2)
    for i in range(5):  # new metas (ids may be reused after the old ones are freed), a small cache
        m = meta(f"svc-{i}")
        ((_, h),) = wire.records(run_of([b"x"], m=m))
        assert decode_headers(h)["lp.component"] == f"svc-{i}"
