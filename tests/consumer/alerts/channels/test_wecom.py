"""WeCom group robot: the markdown message the robot receives, and its errcode handling."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from consumer.alerts.engine import AlertEngine
from tests.consumer.alerts.conftest import Recorder
from tests.consumer.alerts.docs import ecs, rule_file


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_matching_line_reaches_the_robot_as_markdown(recorder: Recorder) -> None:
    rf = rule_file(
        {
            "name": "pay-panic",
            "severity": "critical",
            "match": {"components": ["pay-gw"], "keywords": ["panic"]},
            "group_by": ["service.name", "url.path"],
            "annotations": {"summary": "{{count}} panics on {{url.path}} in {{service.name}}"},
            "channels": ["robot"],
        },
        channels={
            "robot": {
                "type": "wecom",
                "webhook": recorder.url + "/cgi-bin/webhook/send?key=k1",
                "mention": ["zhangsan"],
            }
        },
    )
    engine = AlertEngine(rf)
    await engine.start()
    try:
        engine.observe(ecs("panic: nil map `write`", path="/pay/confirm"))
        (req,) = await recorder.wait_for(1)
    finally:
        await engine.stop()
    assert req.path == "/cgi-bin/webhook/send?key=k1"
    assert req.body["msgtype"] == "markdown"
    content = req.body["markdown"]["content"]
    assert '<font color="warning">[FIRING] pay-panic</font> critical' in content
    assert "> 1 panics on /pay/confirm in pay-gw" in content
    assert "url_path" in content and "/pay/confirm" in content
    assert "`panic: nil map 'write'`" in content  # a sample line, backticks neutralised
    assert "logpipe search panic --component pay-gw" in content
    assert "<@zhangsan>" in content


async def test_an_errcode_answer_is_a_counted_failure(recorder: Recorder) -> None:
    name = f"robot-{uuid.uuid4().hex[:8]}"
    recorder.answer = {"errcode": 93000, "errmsg": "invalid webhook url"}
    rf = rule_file(
        {"name": "p", "match": {"keywords": ["panic"]}, "channels": [name]},
        channels={name: {"type": "wecom", "webhook": recorder.url + "/send", "retries": 3, "backoff": "10ms"}},
    )
    engine = AlertEngine(rf)
    await engine.start()
    engine.observe(ecs())
    await recorder.wait_for(1)
    await engine.stop()
    assert len(recorder.requests) == 1  # not retried: the key is wrong, retrying cannot help
    assert metric("logpipe_alerts_channel_failures_total", channel=name) == 1
    assert metric("logpipe_alerts_notifications_dropped_total", channel=name, reason="retries_exhausted") == 1
