"""Choosing the sink in the shipper config: Kafka stays the default, ``sink: {type: sls}`` selects SLS."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from logpipe.cli.ship import apply_overrides
from logpipe.core.config_base import ConfigError, format_validation_error, load_model
from shipper.agent import Agent
from shipper.config import KafkaSinkChoice, ShipperConfig
from shipper.sinks.kafka.sink import KafkaSink
from shipper.sinks.sls.config import SlsSinkConfig
from shipper.sinks.sls.sink import SlsSink

ROOT = Path(__file__).resolve().parents[2]


def errors(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        ShipperConfig.model_validate(data)
    return "\n".join(format_validation_error(info.value))


def test_kafka_is_the_default_and_the_flag_still_overrides_it() -> None:
    cfg = ShipperConfig.model_validate({"kafka": {"bootstrap": "kafka-0:9092"}})
    assert isinstance(cfg.sink, KafkaSinkChoice)
    assert isinstance(Agent(cfg).sink, KafkaSink)
    assert apply_overrides(cfg, kafka_bootstrap="other:9093").kafka.bootstrap == "other:9093"
    assert ShipperConfig.model_validate({"sink": {"type": "kafka"}}).sink.type == "kafka"


def test_sls_is_selected_and_survives_the_cli_overrides() -> None:
    cfg = ShipperConfig.model_validate(
        {"sink": {"type": "sls", "endpoint": "http://127.0.0.1:17011", "project": "p", "access_key_secret": "s"}}
    )
    assert isinstance(cfg.sink, SlsSinkConfig)
    sink = Agent(cfg).sink
    assert isinstance(sink, SlsSink) and sink.cfg.endpoint == "http://127.0.0.1:17011"
    again = apply_overrides(cfg, registry="/tmp/elsewhere.json", http_port=0)
    assert isinstance(again.sink, SlsSinkConfig)
    assert again.sink.project == "p" and again.sink.secret() == "s"


def test_sls_on_an_install_without_the_sls_extra_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Kafka-only install ('.[shipper]') has no SLS SDK: start-up fails naming the extra to add."""
    monkeypatch.setitem(sys.modules, "shipper.sinks.sls.sink", None)  # as if aliyun were not installed
    cfg = ShipperConfig.model_validate({"sink": {"type": "sls", "endpoint": "http://127.0.0.1:1", "project": "p"}})
    with pytest.raises(ConfigError, match=r"sink.type: sls needs the SLS SDK.*logpipe\[shipper,sls\]"):
        Agent(cfg)


def test_mistakes_name_the_key_and_the_fix() -> None:
    assert "sink.type is missing — fix:" in errors({"sink": {"endpoint": "http://x"}})
    assert "sink.type is 'kinesis' — fix:" in errors({"sink": {"type": "kinesis"}})
    assert "fix: move them to the kafka: section" in errors({"sink": {"type": "kafka", "bootstrap": "k:1"}})
    text = errors({"sink": {"type": "sls"}, "kafka": {"bootstrap": "k:1"}})
    assert "kafka: is set" in text and "fix: remove the kafka: section" in text
    text = errors({"sink": {"type": "sls", "max_group_bytes": 64 * 1024}, "tail": {"max_line_bytes": 64 * 1024}})
    assert "tail.max_line_bytes (65536)" in text and "sink.max_group_bytes 65536" in text
    text = errors({"kafka": {"max_request_bytes": 64 * 1024}, "tail": {"max_line_bytes": 64 * 1024}})
    assert "kafka.max_request_bytes 65536" in text
    cfg = ShipperConfig.model_validate({"sink": {"type": "sls"}})
    with pytest.raises(ValidationError, match="--kafka-bootstrap"):
        apply_overrides(cfg, kafka_bootstrap="k:1")


def test_the_sls_example_is_valid() -> None:
    cfg = load_model(ShipperConfig, ROOT / "examples" / "shipper-sls.yaml")
    assert isinstance(cfg.sink, SlsSinkConfig)
