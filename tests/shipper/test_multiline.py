"""Stories of multi-line events: stack traces joined in the shipper, exact across restarts (memory sink)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shipper.multiline import AUTO, FLAG_MULTILINE, FLAG_OVERFLOW, MultilineConfig, MultilineSpec
from shipper.rules import Rules, RulesConfig
from tests.shipper.multiline_samples import GO, JAVA, LOGBACK, NODE, PYTHON, TRACES
from tests.shipper.stories import ShipperEnv

LOG = "app.log"


def by_offset(env: ShipperEnv) -> dict[int, bytes]:
    """What Elasticsearch would hold: one document per (file, first offset); a resend overwrites."""
    return {r.offset: r.value for r in env.sink.delivered}


def interleaved() -> tuple[bytes, list[bytes]]:
    """Ordinary lines around each trace, and the events a reader expects."""
    events: list[bytes] = []
    for i, trace in enumerate(TRACES.values()):
        events += [f"2026-12-01 21:00:0{i} INFO request {i} ok".encode(), trace]
    events.append(b"2026-12-01 21:00:09 INFO done")
    return b"\n".join(events) + b"\n", events


@pytest.mark.parametrize("name", list(TRACES))
def test_each_builtin_trace_is_one_event(tmp_path: Path, name: str) -> None:
    import asyncio

    async def story() -> list[bytes]:
        env = ShipperEnv(tmp_path)
        env.write(LOG, b"before\n" + TRACES[name] + b"\nafter\n")
        env.add(LOG, multiline=AUTO)
        await env.ship(advance=3)  # "after" is the open event: sent after the flush timeout
        return env.sink.values()

    assert asyncio.run(story()) == [b"before", TRACES[name], b"after"]


async def test_interleaved_traces_and_lines_carry_the_first_lines_offset(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    data, events = interleaved()
    env.write(LOG, data)
    env.add(LOG, multiline=AUTO)
    await env.ship()
    # The last line is still an open event: held back, and the checkpoint stops at its first byte.
    assert env.sink.values() == events[:-1]
    last_start = len(data) - len(events[-1]) - 1
    env.write_registry()
    env.expect_offset(LOG, last_start)
    offsets = [r.offset for r in env.sink.delivered]
    assert offsets == [data.index(e) for e in events[:-1]]
    joined = [r for r in env.sink.delivered if b"\n" in r.value]
    assert len(joined) == 5 and all(r.flags == (FLAG_MULTILINE,) for r in joined)
    await env.ship(advance=3)
    assert env.sink.values() == events
    env.write_registry()
    env.expect_offset(LOG, len(data))


async def test_a_trace_written_slowly_is_one_event(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    lines = JAVA.split(b"\n")
    for i, line in enumerate(lines):
        env.write(LOG, line + b"\n")
        if i == 0:
            env.add(LOG, multiline=AUTO)
        await env.ship(rounds=1, advance=0.4)  # each pause under the 1 s flush timeout
    env.write(LOG, b"next\n")
    await env.ship(rounds=2, advance=0.4)
    assert env.sink.values() == [JAVA]


@pytest.mark.parametrize("cut", [1, 3, 5])
async def test_a_crash_in_the_middle_of_a_trace_loses_nothing_and_leaves_no_partial_copy(tmp_path: Path,
                                                                                        cut: int) -> None:
    env = ShipperEnv(tmp_path)
    lines = PYTHON.split(b"\n")
    head = b"line one\n" + b"\n".join(lines[:cut]) + b"\n"
    env.write(LOG, head)
    env.add(LOG, multiline=AUTO)
    await env.ship()
    env.write_registry()
    await env.restart(crash=True)  # kill -9: the open trace was never sent
    env.add(LOG, multiline=AUTO)
    env.write(LOG, b"\n".join(lines[cut:]) + b"\nline two\n")
    await env.ship(advance=3)
    assert by_offset(env) == {0: b"line one", 9: PYTHON, 10 + len(PYTHON): b"line two"}


async def test_a_crash_after_sending_before_the_checkpoint_resends_the_same_event(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write(LOG, GO + b"\nnext line\n")
    env.add(LOG, multiline=AUTO)
    await env.ship()
    assert env.sink.values() == [GO]
    await env.restart(crash=True)  # no registry write: everything is read again
    env.add(LOG, multiline=AUTO)
    await env.ship(advance=3)
    assert env.sink.values() == [GO, GO, b"next line"]  # the same record twice: one _id, one document
    assert by_offset(env) == {0: GO, len(GO) + 1: b"next line"}


async def test_bounds_split_an_event_and_flag_the_first_part(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    frames = b"\n".join(b"\tat shop.Deep.call(Deep.java:%d)" % i for i in range(12))
    env.write(LOG, b"java.lang.StackOverflowError\n" + frames + b"\nnext\n")
    env.add(LOG, multiline=MultilineSpec("auto", max_lines=5))
    await env.ship(advance=3)
    got = env.sink.delivered
    assert [len(r.value.split(b"\n")) for r in got] == [5, 5, 3, 1]
    assert got[0].flags == (FLAG_MULTILINE, FLAG_OVERFLOW) and got[2].flags == (FLAG_MULTILINE,)
    assert b"\n".join(r.value for r in got[:3]) == b"java.lang.StackOverflowError\n" + frames


async def test_custom_start_pattern(tmp_path: Path) -> None:
    spec = MultilineConfig.model_validate({"mode": "custom", "start": r"^\d{4}-\d\d-\d\d "}).build()
    env = ShipperEnv(tmp_path)
    env.write(LOG, b"2026-12-01 a\n  detail\nno indent but not a start\n2026-12-01 b\n")
    env.add(LOG, multiline=spec)
    await env.ship(advance=3)
    assert env.sink.values() == [b"2026-12-01 a\n  detail\nno indent but not a start", b"2026-12-01 b"]


def cri(stream: str, tag: str, content: bytes, i: int = 0) -> bytes:
    return f"2026-12-01T21:00:{i:02d}.000000001Z {stream} {tag} ".encode() + content


async def test_cri_fragments_are_reassembled_and_joined_per_stream(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    java = JAVA.split(b"\n")
    records = [
        cri("stdout", "F", b"serving"),
        cri("stderr", "F", java[0][:20], 1)[:-len(java[0][:20])] + java[0][:20],
    ]
    records[1] = cri("stderr", "P", java[0][:20], 1)
    records.append(cri("stderr", "F", java[0][20:], 1))
    records += [cri("stderr", "F", line, 2) for line in java[1:]]
    records.append(cri("stdout", "F", b"next request", 3))
    env.write("0.log", b"\n".join(records) + b"\n")
    env.add("0.log", log_type="stdout", multiline=AUTO)
    await env.ship(advance=3)
    got = env.sink.values()
    assert got[0] == records[0]
    assert got[1] == b"2026-12-01T21:00:01.000000001Z stderr F " + JAVA
    assert got[2] == records[-1]
    assert env.sink.delivered[1].offset == len(records[0]) + 1


async def test_cri_a_line_of_the_other_stream_ends_the_event(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    node = NODE.split(b"\n")
    records = [cri("stderr", "F", line) for line in node[:6]] + [cri("stdout", "F", b"hello")]
    records += [cri("stderr", "F", line) for line in node[6:8]]  # two more "at" lines
    env.write("0.log", b"\n".join(records) + b"\n")
    env.add("0.log", log_type="stdout", multiline=AUTO)
    await env.ship(advance=3)
    got = env.sink.values()
    assert len(got) == 3 and got[1] == records[6]
    assert got[0] == cri("stderr", "F", b"\n".join(node[:6]))
    assert got[2] == cri("stderr", "F", b"\n".join(node[6:8]))


def test_rule_defaults_and_component_overrides() -> None:
    rules = Rules.from_config(RulesConfig.model_validate(
        {"multiline_components": {"pay": {"mode": "custom", "continue": "^\\s"}, "batch": {"mode": "off"}}}))
    app = rules.for_emptydir("logs", "app.log")
    access = rules.for_emptydir("logs", "access.log")
    assert app is not None and access is not None
    assert app.multiline_for("cart") == AUTO
    assert access.multiline_for("pay") is None  # access lines are one line each, whatever the Component
    assert app.multiline_for("batch") is None
    spec = app.multiline_for("pay")
    assert spec is not None and spec.cont is not None and spec.cont.pattern == b"^\\s"


@pytest.mark.parametrize(("cfg", "message"), [
    ({"mode": "custom"}, "mode custom needs a pattern"),
    ({"mode": "custom", "start": "(["}, "start: invalid regex"),
    ({"start": "^x"}, "used by mode custom only"),
])
def test_invalid_multiline_config_says_what_to_fix(cfg: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match="fix") as err:
        MultilineConfig.model_validate(cfg)
    assert message in str(err.value)


def test_logback_line_and_its_exception_are_one_event_even_without_a_thread_header() -> None:
    from shipper.multiline import PLAIN, classify, start_state

    lines = LOGBACK.split(b"\n")
    state = start_state(lines[0])
    assert state == PLAIN
    for n, line in enumerate(lines[1:], 1):
        nxt = classify(line, state, n)
        assert nxt is not None, line
        state = nxt
    assert classify(b"2026-12-01 21:00:01.000 INFO [main] shop.App - next", state, 9) is None
