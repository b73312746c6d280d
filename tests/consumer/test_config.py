"""The consumer's config: defaults that run locally, flags that override, errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.config import DEFAULT_TOPICS, ConsumerConfig, load_consumer_config
from logpipe.core.config_base import ConfigError


def test_no_file_means_the_local_defaults() -> None:
    cfg = load_consumer_config(None)

    assert cfg.kafka.bootstrap == "127.0.0.1:9092"
    assert cfg.kafka.topics == DEFAULT_TOPICS
    assert cfg.kafka.dead_letter_topic == "logpipe-deadletter"
    assert cfg.elasticsearch.url == "http://127.0.0.1:9200"
    assert cfg.index.prefix == "logpipe"


def test_flags_override_the_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("kafka:\n  group_id: from-file\n  bootstrap: file:9092\nhttp:\n  port: 1234\n")

    cfg = load_consumer_config(f).with_overrides(
        **{"kafka.bootstrap": "flag:9092", "kafka.group_id": None, "http.port": 0}
    )

    assert cfg.kafka.bootstrap == "flag:9092"
    assert cfg.kafka.group_id == "from-file"  # no flag given: the file's value stays
    assert cfg.http.port == 0


def test_an_unknown_key_is_named_with_a_fix(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("bulk:\n  max_byte: 10\n")

    with pytest.raises(ConfigError) as exc:
        load_consumer_config(f)

    assert "bulk.max_byte" in str(exc.value)
    assert "fix" in str(exc.value)


def test_an_invalid_index_prefix_says_what_is_allowed(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("index:\n  prefix: Prod Logs\n")

    with pytest.raises(ConfigError) as exc:
        load_consumer_config(f)

    assert "index.prefix" in str(exc.value)
    assert "lowercase" in str(exc.value)


def test_durations_read_like_durations(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("bulk:\n  flush_interval: 500ms\n  retry_max: 1m\n")

    cfg = load_consumer_config(f)

    assert cfg.bulk.flush_interval == 0.5
    assert cfg.bulk.retry_max == 60.0


def test_an_invalid_flag_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        ConsumerConfig().with_overrides(**{"http.port": 70000})

    assert "http.port" in str(exc.value)


def test_an_unknown_field_mapping_key_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("fields:\n  keys:\n    nonsense: [x]\n")

    with pytest.raises(ConfigError) as exc:
        load_consumer_config(f)

    assert "nonsense" in str(exc.value)


def test_static_membership_defaults_to_the_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from consumer.config import ConsumerConfig

    monkeypatch.setenv("POD_NAME", "logpipe-consumer-7d4b9c5f6-x2x9z")
    assert ConsumerConfig().kafka.instance_id == "logpipe-consumer-7d4b9c5f6-x2x9z"
    assert ConsumerConfig().with_overrides(**{"kafka.instance_id": ""}).kafka.instance_id == ""
    monkeypatch.delenv("POD_NAME")
    assert ConsumerConfig().kafka.instance_id is None


def test_the_trace_summary_horizon_is_validated(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("trace_summaries:\n  horizon: 2h\n")
    assert load_consumer_config(f).trace_summaries.horizon == 7200.0
    assert load_consumer_config(None).trace_summaries.horizon == 3600.0

    for bad in ("0s", "soon"):
        f.write_text(f"trace_summaries:\n  horizon: {bad}\n")
        with pytest.raises(ConfigError) as exc:
            load_consumer_config(f)
        assert "trace_summaries.horizon" in str(exc.value)
        assert "fix" in str(exc.value) or "e.g." in str(exc.value)
