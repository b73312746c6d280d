"""Generic JSON webhook: the body, headers, and resolved notifications."""

from __future__ import annotations

from consumer.alerts.engine import AlertEngine
from tests.consumer.alerts.conftest import Recorder
from tests.consumer.alerts.docs import ecs, rule_file


class Clock:
    """A settable clock for the engine."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def test_firing_then_resolved_bodies(recorder: Recorder) -> None:
    rf = rule_file(
        {
            "name": "refused",
            "match": {"keywords": ["connection refused"]},
            "condition": {"count": 2, "within": "10s"},
            "resolve": "5s",
            "labels": {"team": "pay"},
            "channels": ["hook"],
        },
        channels={"hook": {"type": "webhook", "url": recorder.url + "/alerts", "headers": {"X-Token": "s3cret"}}},
    )
    clock = Clock(1_800_000_000.0)
    engine = AlertEngine(rf, clock=clock)
    await engine.start()
    try:
        engine.observe(ecs("dial: connection refused", status=None, at=clock.t))
        engine.observe(ecs("dial: connection refused again", status=None, at=clock.t))
        (fired,) = await recorder.wait_for(1)
        clock.t += 16  # window drained (10 s) and clear for the resolve delay (5 s)
        engine.tick_now()
        clock.t += 1
        engine.tick_now()
        _, resolved = await recorder.wait_for(2)
    finally:
        await engine.stop()
    assert fired.headers["X-Token"] == "s3cret"
    body = fired.body
    assert body["version"] == "1" and body["status"] == "firing" and body["reason"] == "new"
    assert body["rule"] == "refused"
    assert body["labels"] == {"alertname": "refused", "severity": "warning", "team": "pay"}
    assert body["why"] == "2 matching lines within 10s (threshold 2)"
    assert body["samples"] == ["dial: connection refused", "dial: connection refused again"]
    assert body["startsAt"] == "2027-01-15T08:00:00.000Z" and body["endsAt"] is None
    assert "logpipe search 'connection refused'" in body["annotations"]["search"]
    assert resolved.body["status"] == "resolved" and resolved.body["endsAt"] is not None
    assert resolved.body["labels"] == body["labels"]
