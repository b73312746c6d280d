"""The consumer's hook: from_file, observe (never blocks or raises), routing, staleness, ownership."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from consumer.alerts.engine import AlertEngine
from logpipe.core.config_base import ConfigError
from tests.consumer.alerts.conftest import Recorder
from tests.consumer.alerts.docs import ecs, rule_file


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens: connection refused


def test_from_file_names_rule_key_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: pay-5xx\n    condition: {count: 3}\n")
    with pytest.raises(ConfigError) as exc:
        AlertEngine.from_file(str(path), "http://127.0.0.1:9093")
    assert exc.value.errors == ["rule 'pay-5xx' (rules[0]) condition.within: Field required — fix: add this key"]


def test_from_file_alertmanager_url_flag_adds_the_channel(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: any-panic\n    match: {keywords: [panic]}\n")
    engine = AlertEngine.from_file(str(path), "http://10.1.2.3:9093")
    assert list(engine.workers) == ["alertmanager"]


async def test_start_does_not_wait_for_an_unreachable_alertmanager() -> None:
    rf = rule_file(
        {"name": "p", "match": {"keywords": ["panic"]}},
        channels={"alertmanager": {"type": "alertmanager", "url": closed_port_url(), "retries": 0}},
    )
    engine = AlertEngine(rf)
    t = time.monotonic()
    await engine.start()
    await engine.stop(flush_timeout=0.1)
    assert time.monotonic() - t < 3


class Exploding(Mapping[str, Any]):
    """A document whose every read raises (a bug anywhere below observe)."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_observe_never_raises_and_counts_the_error() -> None:
    engine = AlertEngine(rule_file({"name": "p", "match": {"keywords": ["panic"]}}))
    before = REGISTRY.get_sample_value("logpipe_alerts_observe_errors_total") or 0
    engine.observe(Exploding())
    engine.observe({"message": 42, "service": "not-an-object", "url": None})  # odd shapes: no match, no error
    assert REGISTRY.get_sample_value("logpipe_alerts_observe_errors_total") == before + 1


def test_documents_older_than_max_event_age_are_not_evaluated() -> None:
    clock = Clock(1_800_000_000.0)
    engine = AlertEngine(
        rule_file({"name": "p", "match": {"keywords": ["panic"]}}, engine={"max_event_age": "10m"}), clock=clock
    )
    engine.observe(ecs(at=clock.t - 601))  # a replayed backlog
    assert engine.firing() == []
    engine.observe(ecs(at=clock.t - 5))
    assert engine.firing() == [("p", ())]


async def test_reassertions_go_to_alertmanager_only(recorder: Recorder) -> None:
    clock = Clock(time.time())
    rf = rule_file(
        {"name": "p", "match": {"keywords": ["panic"]}, "resolve": "1h"},
        channels={
            "alertmanager": {"type": "alertmanager", "url": recorder.url},
            "hook": {"type": "webhook", "url": recorder.url + "/hook"},
        },
        engine={"reassert": "1m", "tick_interval": "1h", "restore_from_alertmanager": False},
    )
    engine = AlertEngine(rf, clock=clock)
    await engine.start()
    try:
        engine.observe(ecs(at=clock.t))
        await recorder.wait_for(2)
        clock.t += 61
        engine.tick_now()
        reqs = await recorder.wait_for(3)
    finally:
        await engine.stop()
    paths = sorted(r.path for r in reqs)
    assert paths == ["/api/v2/alerts", "/api/v2/alerts", "/hook"]
    assert reqs[2].path == "/api/v2/alerts"  # the re-assertion
    assert reqs[2].body[0]["annotations"]["summary"].startswith("p on pay-gw: a line matched")


def test_labels_come_from_the_group_so_every_post_has_the_same_identity() -> None:
    rf = rule_file(
        {
            "name": "p",
            "severity": "critical",
            "match": {"keywords": ["panic"]},
            "group_by": ["path"],
            "labels": {"team": "pay"},
        }
    )
    engine = AlertEngine(rf)
    rule = engine.rules[0]
    assert engine.labels(rule, (("path", "/a"),)) == {
        "alertname": "p",
        "severity": "critical",
        "path": "/a",
        "team": "pay",
    }
    single = AlertEngine(rule_file({"name": "q", "match": {"components": ["pay-gw"]}}))
    assert single.labels(single.rules[0], ())["component"] == "pay-gw"


def test_groups_of_components_another_replica_owns_are_dropped_quietly() -> None:
    clock = Clock(time.time())
    engine = AlertEngine(
        rule_file(
            {"name": "p", "match": {"keywords": ["panic"]}, "group_by": ["service.name"]},
            engine={"restore_from_alertmanager": False},
        ),
        clock=clock,
    )
    engine.observe(ecs(component="pay-gw", at=clock.t))
    engine.observe(ecs(component="cart", at=clock.t))
    assert len(engine.firing()) == 2
    engine.set_owner(lambda component: component == "cart")
    engine.tick_now()
    assert engine.firing() == [("p", (("service_name", "cart"),))]


def test_a_redelivered_document_is_not_counted_twice() -> None:
    clock = Clock(time.time())
    engine = AlertEngine(
        rule_file(
            {"name": "c", "match": {"keywords": ["panic"]}, "condition": {"count": 3, "within": "1m"}},
            engine={"restore_from_alertmanager": False},
        ),
        clock=clock,
    )
    lines = [
        ecs(at=clock.t, logpipe={"type": "access", "file_id": "fingerprint::ab"}, log={"offset": o}) for o in (0, 90)
    ]
    for doc in lines + lines:  # a rebalance re-reads both records
        engine.observe(doc)
    assert engine.firing() == []  # 2 distinct lines, not 4
    engine.observe(ecs(at=clock.t, logpipe={"type": "access", "file_id": "fingerprint::ab"}, log={"offset": 180}))
    assert engine.firing() == [("c", ())]
