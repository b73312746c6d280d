from __future__ import annotations

from dataclasses import replace

import pytest

from logpipe.core.config_base import ConfigError, validate_mapping
from logpipe.core.delivery import BatchStatus
from shipper.sinks.base import Sink
from shipper.sinks.sls.config import SlsSinkConfig
from shipper.sinks.sls.service import SlsRequestError
from shipper.sinks.sls.sink import SlsSink, status_of
from tests.shipper.sinks.sls.stories import lines, meta


@pytest.mark.parametrize(
    ("code", "http", "status"),
    [
        ("WriteQuotaExceed", 403, BatchStatus.ERRORED),  # SLS throttles with 403
        ("ShardWriteQuotaExceed", 403, BatchStatus.ERRORED),
        ("ServerBusy", 503, BatchStatus.ERRORED),
        ("InternalServerError", 500, BatchStatus.ERRORED),
        ("SomethingNew", 502, BatchStatus.ERRORED),
        ("LogRequestError", 0, BatchStatus.ERRORED),  # no answer at all
        ("ExceedQPSLimit", 429, BatchStatus.ERRORED),
        ("SignatureNotMatch", 401, BatchStatus.ERRORED),  # a key fix cures it: keep the lines
        ("Unauthorized", 401, BatchStatus.ERRORED),
        ("LogStoreNotExist", 404, BatchStatus.ERRORED),
        ("PostBodyInvalid", 400, BatchStatus.REJECTED),
        ("PostBodyTooLarge", 413, BatchStatus.REJECTED),
        ("InvalidLogSize", 0, BatchStatus.REJECTED),  # refused by the SDK before sending
        ("ParameterInvalid", 400, BatchStatus.REJECTED),
    ],
)
def test_status_of_sls_errors(code: str, http: int, status: BatchStatus) -> None:
    assert status_of(SlsRequestError(code, "x", http)) is status


def test_batch_is_grouped_per_file_and_split_at_the_bounds() -> None:
    sink = SlsSink(SlsSinkConfig(max_group_lines=3, topic="log_type"))
    a, b = meta("cart-1"), meta("pay-1", log_type="app")
    batch = [*lines(a, 5), *lines(b, 2)]
    reqs = sink.requests_for(batch)
    assert [(r.logstore, r.topic, len(r.logs)) for r in reqs] == [
        ("logpipe-access", "access", 3),
        ("logpipe-access", "access", 2),
        ("logpipe-app", "app", 2),
    ]
    assert dict(reqs[2].tags)["pod"] == "pay-1" and reqs[2].source == "node-1"
    first = reqs[0].logs[0]
    assert (first.time_s, first.time_ns) == (1795780800, 123_000_000)
    assert dict(reqs[1].logs[0].contents)["flags"] == b"truncated"  # the 4th line of file a


def test_dead_letters_go_to_their_own_logstore_with_the_files_tags() -> None:
    sink = SlsSink(SlsSinkConfig(dead_letter_logstore="dlq"))
    a = meta("cart-1")
    ok, bad = lines(a, 3), lines(a, 1, start_offset=500)[0]
    dead = replace(bad, flags=("deadletter", "reason:rejected"))
    reqs = sink.requests_for([*ok, dead])
    assert [(r.logstore, len(r.logs)) for r in reqs] == [("logpipe-access", 3), ("dlq", 1)]
    assert dict(reqs[1].tags)["pod"] == "cart-1"
    contents = dict(reqs[1].logs[0].contents)
    assert contents["flags"] == b"deadletter,reason:rejected" and contents["offset"] == b"500"


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        validate_mapping(SlsSinkConfig, {"logstore": "{pod}-logs", "max_in_flight": 0}, "sink.yaml")
    text = err.value.render()
    assert "logstore" in text and "{log_type}" in text
    assert "max_in_flight" in text


def test_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SLS_SECRET", "s3cret")
    assert SlsSinkConfig(access_key_secret_env="MY_SLS_SECRET").secret() == "s3cret"
    assert SlsSinkConfig.model_validate({"access_key_secret": "inline"}).secret() == "inline"


def test_sls_sink_is_a_sink() -> None:
    sink: Sink = SlsSink(SlsSinkConfig())  # checked by mypy against the protocol
    assert sink.name == "sls" and not sink.connected
