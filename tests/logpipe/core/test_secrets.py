"""Secrets: never shown, read from a file (re-read when it changes), the inline key or the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logpipe.core.config_base import StrictModel
from logpipe.core.secrets import MASK, Secret, SecretUnavailable, SecretValue, redact, secret_value

SENTINEL = "s3ntinel-Pa55-word"


class Model(StrictModel):
    password: Secret | None = None


def test_a_secret_is_masked_in_repr_str_json_and_dumps() -> None:
    m = Model(password=SENTINEL)  # type: ignore[arg-type]
    assert m.password is not None and m.password.reveal() == SENTINEL
    for shown in (repr(m), str(m), m.model_dump_json(), str(m.model_dump()), f"{m.password}", repr(m.password)):
        assert SENTINEL not in shown
    assert MASK in m.model_dump_json()


def test_a_secret_survives_a_dump_and_validate_round_trip() -> None:
    m = Model(password=SENTINEL)  # type: ignore[arg-type]
    again = Model.model_validate(m.model_dump())
    assert again.password is not None and again.password.reveal() == SENTINEL


def test_a_file_wins_and_a_rotated_file_is_read_again(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("first\n")
    v = secret_value("sls.security_token", Secret("inline"), f)
    assert v.get() == "first"  # the trailing newline of `echo x > file` is not part of it
    # Kubernetes rotates a Secret volume by swapping a symlink: a new inode, maybe the same size.
    new = tmp_path / "token.new"
    new.write_text("secnd\n")
    os.replace(new, f)
    assert v.get() == "secnd"


def test_inline_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPIPE_TEST_SECRET", "from-env")
    assert secret_value("k", Secret("inline"), None, "LOGPIPE_TEST_SECRET").get() == "inline"
    v = secret_value("k", None, None, "LOGPIPE_TEST_SECRET")
    assert v.get() == "from-env" and v.source() == "environment variable LOGPIPE_TEST_SECRET"
    monkeypatch.delenv("LOGPIPE_TEST_SECRET")
    assert v.get() is None and not v.configured


def test_a_missing_file_names_the_key_and_path_not_a_value(tmp_path: Path) -> None:
    v = SecretValue("kafka.sasl_password", file=tmp_path / "absent")
    with pytest.raises(SecretUnavailable, match=r"kafka\.sasl_password_file .*absent: cannot read it"):
        v.get()
    with pytest.raises(SecretUnavailable, match=r"kafka\.sasl_password is not set"):
        SecretValue("kafka.sasl_password").require()


def test_redact_replaces_every_occurrence() -> None:
    assert redact(f"a {SENTINEL} b {SENTINEL}", [SENTINEL, None]) == f"a {MASK} b {MASK}"


def test_credentials_in_urls_are_masked() -> None:
    from logpipe.core.secrets import redact_urls

    text = "POST https://robot.example/cgi-bin/webhook/send?key=abc-123&debug=1 failed; https://u:pw@es:9200/x?token=t"
    shown = redact_urls(text)
    assert "abc-123" not in shown and "u:pw" not in shown and "token=t" not in shown
    assert "send?key=**********&debug=1" in shown and "https://**********@es:9200" in shown
    assert redact_urls("no url here") == "no url here"


def test_the_json_log_masks_a_channel_key_in_an_exception() -> None:
    import logging

    from logpipe.core.json_log import JsonFormatter

    try:
        raise ConnectionError("cannot POST http://127.0.0.1:9/send?key=SeNtInEl-42")
    except ConnectionError:
        import sys

        record = logging.LogRecord("logpipe.x", logging.ERROR, __file__, 1, "failed %s", ("?key=SeNtInEl-42",),
                                   sys.exc_info())
    line = JsonFormatter().format(record)
    assert "SeNtInEl-42" not in line and "key=**********" in line
