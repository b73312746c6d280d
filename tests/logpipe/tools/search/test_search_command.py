"""Flag checks of `logpipe search` that fail before any request (unit: the URL is never contacted)."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from logpipe.tools.search.errors import BadArgument
from logpipe.tools.search.search_command import SearchOptions, search_main

NOWHERE = "http://127.0.0.1:9"  # never reached: each of these fails before connecting


@pytest.mark.parametrize(
    ("options", "cause"),
    [
        (SearchOptions(types=("nginx",)), "unknown --type 'nginx'"),
        (SearchOptions(statuses=("5x",)), "invalid --status '5x'"),
        (SearchOptions(since="yesterday"), "--since 'yesterday': not a time"),
        (SearchOptions(since="1h", from_="2h"), "--since and --from both set the start"),
        (SearchOptions(follow=True, to="1h"), "--to cannot be combined with --follow"),
        (SearchOptions(follow=True, context=2), "--context cannot be combined with --follow"),
        (SearchOptions(limit=-1), "--limit must be 0 or more"),
        (SearchOptions(index_prefix="Logs"), "invalid --index-prefix 'Logs'"),
    ],
)
async def test_bad_flags_name_the_flag(options: SearchOptions, cause: str) -> None:
    with pytest.raises(BadArgument) as err:
        await search_main(replace(options, es_url=NOWHERE), io.StringIO(), io.StringIO())
    assert cause in str(err.value)
